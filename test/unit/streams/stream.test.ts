import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { Stream } from '../../../src/streams/stream.js';
import type { StreamConfig } from '../../../src/config/types.js';

const log = pino({ level: 'silent' });
const loc = { file: 't', line: 1, col: 1 };

function fakeFfmpeg(): string {
  const file = join(mkdtempSync(join(tmpdir(), 'sg-stream-')), 'ffmpeg.sh');
  writeFileSync(file, '#!/bin/sh\nexec sleep 30\n');
  chmodSync(file, 0o755);
  return file;
}

const base: StreamConfig = {
  kind: 'stream',
  name: 'movie',
  prefixes: [],
  inputs: ['file://vod/bunny.mp4'],
  loc,
};

test('stream override: a new input restarts ingest from it (AUTH-SPEC §12 item 22)', async () => {
  const stream = new Stream('movie', base, { log, ffmpeg: fakeFfmpeg() });
  stream.start();
  try {
    const r = stream.applyOverride({ inputs: [{ url: 'fake://fake' }] });
    assert.deepEqual(r, { ok: true, changed: true, restartInput: true, closedProtocols: [] });
    assert.deepEqual(
      stream.config.inputs,
      ['fake://fake'],
      'the new config holds as soon as the call returns',
    );
    assert.equal(stream.pulledInputUrl, 'fake://fake');
    const again = stream.applyOverride({ inputs: [{ url: 'fake://fake' }] });
    assert.deepEqual(
      again,
      { ok: true, changed: false, restartInput: false, closedProtocols: [] },
      'the same override again changes nothing (no restart per viewer)',
    );
  } finally {
    await stream.stop();
  }
});

test('stream override: a stream that is not running changes config but starts nothing', () => {
  const stream = new Stream('movie', base, { log, ffmpeg: fakeFfmpeg() });
  const r = stream.applyOverride({ inputs: ['fake://fake'] });
  assert.deepEqual(r, { ok: true, changed: true, restartInput: false, closedProtocols: [] });
  assert.equal(stream.inputState, 'stopped');
});

test('stream override: switching HLS off reports it so its sessions can be closed (item 21)', () => {
  const stream = new Stream('movie', { ...base, inputs: ['publish://'] }, { log, ffmpeg: fakeFfmpeg() });
  const r = stream.applyOverride({ protocols: { hls: false } });
  assert.ok(r.ok);
  assert.deepEqual(r.closedProtocols, ['hls']);
  assert.equal(stream.allows('hls'), false);
  assert.equal(stream.allows('rtmp'), true);
  const back = stream.applyOverride({ protocols: null });
  assert.ok(back.ok && back.changed);
  assert.equal(stream.allows('hls'), true, 'null deletes the override key');
});

test('stream override: unknown keys and bad values are refused and leave the config alone', () => {
  const stream = new Stream('movie', base, { log, ffmpeg: fakeFfmpeg() });
  assert.deepEqual(stream.applyOverride({ transcoder: { vb: 1 } }), {
    ok: false,
    error: "override key 'transcoder' is not supported",
  });
  const bad = stream.applyOverride({ inputs: ['fake://fake'], segment_duration: 0 });
  assert.equal(bad.ok, false);
  assert.deepEqual(stream.config, base, 'a refused override changes nothing, not even its valid keys');
});

/** An ffmpeg stand-in that records itself while alive and takes a while to exit on SIGTERM. */
function slowExitFfmpeg(): { binary: string; alive: () => string[] } {
  const dir = mkdtempSync(join(tmpdir(), 'sg-stream-'));
  const binary = join(dir, 'ffmpeg.sh');
  writeFileSync(
    binary,
    '#!/bin/sh\n' +
      // The trap goes first: a SIGTERM before it would leave a stale record behind.
      `trap 'sleep 0.3; rm -f "${dir}/alive.$$"; exit 0' TERM\n` +
      `echo "$*" > "${dir}/alive.$$"\n` +
      // Short foreground sleeps, not one in the background: a child left behind would hold
      // the stdout pipe open after the script exits, and the input would wait for it.
      'while :; do sleep 0.1; done\n',
  );
  chmodSync(binary, 0o755);
  const alive = () =>
    readdirSync(dir)
      .filter((f) => f.startsWith('alive.'))
      .map((f) => {
        try {
          return readFileSync(join(dir, f), 'utf8');
        } catch {
          return undefined; // exited between the listing and the read
        }
      })
      .filter((args) => args !== undefined);
  return { binary, alive };
}

test('stream override: overrides during a slow input stop never leave two inputs running', async () => {
  const ff = slowExitFfmpeg();
  const stream = new Stream('movie', { ...base, inputs: ['file://a.mp4'] }, { log, ffmpeg: ff.binary });
  stream.start();
  try {
    await waitFor(() => ff.alive().length === 1);
    assert.ok(stream.applyOverride({ inputs: ['file://b.mp4'] }).ok);
    await new Promise((r) => setTimeout(r, 50)); // the first replacement is now stopping a.mp4
    assert.ok(stream.applyOverride({ inputs: ['file://c.mp4'] }).ok);
    assert.ok(stream.applyOverride({ inputs: ['file://d.mp4'] }).ok);
    let most = 0;
    await waitFor(() => {
      const now = ff.alive();
      most = Math.max(most, now.length);
      return now.length === 1 && (now[0] ?? '').includes('d.mp4');
    });
    assert.equal(most, 1, 'at most one input at any time');
  } finally {
    await stream.stop();
  }
  assert.deepEqual(ff.alive(), [], 'stop() waits for the replaced inputs too');
});

async function waitFor(cond: () => boolean, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) assert.fail('timed out');
    await new Promise((r) => setTimeout(r, 10));
  }
}

test('stream: one publisher at a time, and the slot frees on release', () => {
  const stream = new Stream('live/x', { ...base, inputs: ['publish://'] }, { log, ffmpeg: fakeFfmpeg() });
  const first = stream.claimPublisher();
  assert.ok(first);
  assert.equal(stream.claimPublisher(), undefined);
  first.release();
  assert.ok(stream.claimPublisher());
});
