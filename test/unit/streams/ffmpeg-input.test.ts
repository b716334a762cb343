import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { MediaBus } from '../../../src/media/bus.js';
import { FfmpegInput, ffmpegArgs } from '../../../src/streams/ffmpeg-input.js';

const log = pino({ level: 'silent' });

function script(body: string): string {
  const file = join(mkdtempSync(join(tmpdir(), 'sg-input-')), 'fake-ffmpeg.sh');
  writeFileSync(file, `#!/bin/sh\n${body}\n`);
  chmodSync(file, 0o755);
  return file;
}

test('ffmpeg input: a child that dies is restarted with back-off', { timeout: 10_000 }, async () => {
  const input = new FfmpegInput('fake://fake', new MediaBus(), log, script('echo boom >&2; exit 1'));
  input.start();
  await new Promise((r) => setTimeout(r, 1600)); // first retry after 1 s
  assert.ok(input.restarts >= 2, `restarts ${input.restarts}`);
  assert.equal(input.state === 'backoff' || input.state === 'starting', true);
  await input.stop();
  assert.equal(input.state, 'stopped');
});

test('ffmpeg input: stop() kills a running child and waits for it', { timeout: 10_000 }, async () => {
  const input = new FfmpegInput('fake://fake', new MediaBus(), log, script('exec sleep 30'));
  input.start();
  await new Promise((r) => setTimeout(r, 200));
  const started = Date.now();
  await input.stop();
  assert.ok(Date.now() - started < 2500);
  assert.equal(input.state, 'stopped');
  assert.equal(input.restarts, 0, 'a stopped input is not restarted');
});

test('ffmpeg input: arguments per input scheme', () => {
  assert.ok(ffmpegArgs('fake://fake').includes('lavfi'));
  assert.deepEqual(ffmpegArgs('file:///v/a.mp4').slice(-9, -4), [
    '-stream_loop',
    '-1',
    '-i',
    'file:/v/a.mp4',
    '-c',
  ]);
  assert.ok(ffmpegArgs('file:///m/concat:a|b').includes('file:/m/concat:a|b'), 'never read as a protocol');
  assert.ok(ffmpegArgs('tshttp://h:9000/ch/5').includes('http://h:9000/ch/5'));
  for (const url of ['fake://fake', 'rtsp://h/x', 'udp://239.0.0.1:1234']) {
    assert.deepEqual(ffmpegArgs(url).slice(-3), ['-f', 'flv', 'pipe:1']);
  }
});

test('logs never show input credentials or tokens', async () => {
  const { redactSecrets } = await import('../../../src/log.js');
  assert.equal(
    redactSecrets('rtmp://user:pw@cdn.example/app/s?token=abc&x=1&secret=zz'),
    'rtmp://[redacted]@cdn.example/app/s?token=[redacted]&x=1&secret=[redacted]',
  );
  assert.equal(redactSecrets('fake://fake'), 'fake://fake');
});
