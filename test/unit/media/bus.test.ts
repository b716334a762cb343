import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MediaBus } from '../../../src/media/bus.js';
import { FanOut } from '../../../src/media/fanout.js';
import type { Frame, Tracks } from '../../../src/media/types.js';

const tracks: Tracks = {
  video: { kind: 'video', codec: 'h264', config: Buffer.from([1, 2]) },
  audio: { kind: 'audio', codec: 'aac', config: Buffer.from([0x12, 0x10]), sampleRate: 44100, channels: 2 },
};
const video = (dts: number, keyframe = false): Frame => ({
  kind: 'video',
  dts,
  pts: dts,
  keyframe,
  data: Buffer.alloc(10),
});
const audio = (dts: number): Frame => ({
  kind: 'audio',
  dts,
  pts: dts,
  keyframe: true,
  data: Buffer.alloc(4),
});

function recorder(backlog = () => 0): {
  frames: Frame[];
  tracks: Tracks[];
  listener: Parameters<MediaBus['subscribe']>[0];
} {
  const frames: Frame[] = [];
  const seen: Tracks[] = [];
  return {
    frames,
    tracks: seen,
    listener: { onTracks: (t) => seen.push(t), onFrame: (f) => frames.push(f), backlog },
  };
}

test('bus: a new viewer gets the tracks, then the GOP from the last keyframe, then live frames', () => {
  const bus = new MediaBus();
  bus.startSource(tracks);
  bus.push(video(0, true));
  bus.push(audio(100));
  bus.push(video(3600, false));
  bus.push(video(7200, true));
  bus.push(audio(7300));
  const r = recorder();
  bus.subscribe(r.listener);
  bus.push(video(10800));
  assert.deepEqual(r.tracks, [tracks]);
  assert.deepEqual(
    r.frames.map((f) => [f.kind, f.dts]),
    [
      ['video', 7200],
      ['audio', 7300],
      ['video', 10800],
    ],
  );
});

test('bus: audio frames do not restart the GOP when the stream has video', () => {
  const bus = new MediaBus();
  bus.startSource(tracks);
  bus.push(video(0, true));
  bus.push(audio(10));
  bus.push(audio(20));
  const r = recorder();
  bus.subscribe(r.listener);
  assert.equal(r.frames[0]?.kind, 'video');
  assert.equal(r.frames.length, 3);
});

test('bus: audio-only streams start anywhere', () => {
  const bus = new MediaBus();
  bus.startSource({ audio: tracks.audio! });
  bus.push(audio(0));
  bus.push(audio(1920));
  const r = recorder();
  bus.subscribe(r.listener);
  assert.deepEqual(
    r.frames.map((f) => f.dts),
    [1920],
  );
});

test('bus: a second source continues the timeline of the first (publisher reconnect)', () => {
  const bus = new MediaBus();
  const r = recorder();
  bus.subscribe(r.listener);
  bus.startSource(tracks);
  bus.push(video(90_000, true));
  bus.push(video(93_600));
  bus.endSource();
  bus.startSource(tracks);
  bus.push(video(0, true)); // the new publisher starts at zero again
  bus.push(video(3600));
  const dts = r.frames.map((f) => f.dts);
  assert.deepEqual(dts, [90_000, 93_600, 96_600, 100_200]);
  assert.equal(r.tracks.length, 2, 'viewer is told about the new source');
});

test('bus: ending a source drops the cache so a new viewer does not get stale frames', () => {
  const bus = new MediaBus();
  bus.startSource(tracks);
  bus.push(video(0, true));
  bus.endSource();
  const r = recorder();
  bus.subscribe(r.listener);
  assert.equal(r.frames.length, 0);
});

test('fanout: a slow subscriber skips to the next keyframe; a fast one gets everything', () => {
  const fan = new FanOut<{ key: boolean; n: number }>((i) => i.key, { maxBacklog: 100 });
  let slowBacklog = 0;
  const fast: number[] = [];
  const slow: number[] = [];
  fan.subscribe({ deliver: (i) => fast.push(i.n), backlog: () => 0 });
  fan.subscribe({ deliver: (i) => slow.push(i.n), backlog: () => slowBacklog });
  fan.publish({ key: true, n: 1 });
  slowBacklog = 500; // the slow viewer's socket is full
  fan.publish({ key: false, n: 2 });
  slowBacklog = 10; // drained, but mid-GOP: still skipping
  fan.publish({ key: false, n: 3 });
  fan.publish({ key: true, n: 4 });
  fan.publish({ key: false, n: 5 });
  assert.deepEqual(fast, [1, 2, 3, 4, 5]);
  assert.deepEqual(slow, [1, 4, 5]);
  assert.equal(fan.dropped, 2);
});

test('fanout: the GOP cache is bounded', () => {
  const fan = new FanOut<{ key: boolean }>((i) => i.key, { maxGopItems: 3 });
  fan.publish({ key: true });
  for (let i = 0; i < 10; i++) fan.publish({ key: false });
  assert.equal(fan.cached().length, 3);
});
