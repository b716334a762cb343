import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, mkdtempSync, writeFileSync } from 'node:fs';
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
    const r = await stream.applyOverride({ inputs: [{ url: 'fake://fake' }] });
    assert.equal(r.changed, true);
    assert.deepEqual(stream.config.inputs, ['fake://fake']);
    assert.equal(stream.pulledInputUrl, 'fake://fake');
    const again = await stream.applyOverride({ inputs: [{ url: 'fake://fake' }] });
    assert.equal(again.changed, false, 'the same override again changes nothing (no restart per viewer)');
  } finally {
    await stream.stop();
  }
});

test('stream override: switching HLS off reports it so its sessions can be closed (item 21)', async () => {
  const stream = new Stream('movie', { ...base, inputs: ['publish://'] }, { log, ffmpeg: fakeFfmpeg() });
  const r = await stream.applyOverride({ protocols: { hls: false } });
  assert.deepEqual(r.closedProtocols, ['hls']);
  assert.equal(stream.allows('hls'), false);
  assert.equal(stream.allows('rtmp'), true);
  const back = await stream.applyOverride({ protocols: null });
  assert.equal(back.changed, true);
  assert.equal(stream.allows('hls'), true, 'null deletes the override key');
});

test('stream override: unknown keys are refused and leave the config alone', async () => {
  const stream = new Stream('movie', base, { log, ffmpeg: fakeFfmpeg() });
  await assert.rejects(stream.applyOverride({ transcoder: { vb: 1 } }), /not supported/);
  assert.deepEqual(stream.config, base);
});

test('stream: one publisher at a time, and the slot frees on release', () => {
  const stream = new Stream('live/x', { ...base, inputs: ['publish://'] }, { log, ffmpeg: fakeFfmpeg() });
  const first = stream.claimPublisher();
  assert.ok(first);
  assert.equal(stream.claimPublisher(), undefined);
  first.release();
  assert.ok(stream.claimPublisher());
});
