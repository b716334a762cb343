import { test } from 'node:test';
import assert from 'node:assert/strict';
import { canCarry, codecRefusal, outputsFor } from '../../../src/media/codec-support.js';
import type { Tracks } from '../../../src/media/types.js';

const video = (codec: 'h264' | 'h265' | 'av1' | 'vp9'): Tracks => ({
  video: { kind: 'video', codec, config: Buffer.alloc(0) },
  audio: { kind: 'audio', codec: 'aac', config: Buffer.alloc(0), sampleRate: 48000, channels: 2 },
});

test('codec support: RTMP carries every codec on the bus; AV1/VP9 only RTMP; Opus not in HLS-TS', () => {
  for (const c of ['h264', 'h265', 'av1', 'vp9', 'aac', 'opus'] as const) assert.ok(canCarry('rtmp', c), c);
  assert.deepEqual(outputsFor('av1'), ['rtmp']);
  assert.deepEqual(outputsFor('opus'), ['rtmp', 'ts', 'rtsp', 'fmp4']);
  assert.equal(canCarry('hls', 'opus'), false);
  assert.equal(canCarry('rtsp', 'vp9'), false);
});

test('codec support: a refusal names the codec, the output and where it plays; none for playable or unknown tracks', () => {
  assert.equal(
    codecRefusal('hls', video('av1')),
    'AV1 video cannot be carried over HLS (MPEG-TS segments); it plays over RTMP',
  );
  assert.equal(
    codecRefusal('rtsp', video('vp9')),
    'VP9 video cannot be carried over RTSP; it plays over RTMP',
  );
  assert.equal(codecRefusal('hls', video('h265')), undefined);
  assert.equal(codecRefusal('ts', undefined), undefined);
  const opus: Tracks = {
    audio: { kind: 'audio', codec: 'opus', config: Buffer.alloc(0), sampleRate: 48000, channels: 2 },
  };
  assert.match(codecRefusal('hls', opus) ?? '', /^Opus audio cannot be carried over HLS/);
});
