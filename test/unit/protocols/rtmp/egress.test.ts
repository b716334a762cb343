/**
 * RtmpEgress on the shared egress base: it listens to the bus only while it has viewers,
 * every viewer gets the codec headers first (also one that came before the publisher) and
 * then starts on a keyframe, and an idle template stream it once served is removed.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { pino } from 'pino';
import {
  AUDIO_HOLD_MS,
  OUT_CHUNK_SIZE,
  RtmpEgress,
  type RtmpItem,
} from '../../../../protocols/rtmp/egress.js';
import { TsEgress } from '../../../../protocols/mpegts/egress.js';
import { ChunkReader } from '../../../../protocols/rtmp/wire/chunk-reader.js';
import { encodeMessage } from '../../../../protocols/rtmp/wire/chunk-writer.js';
import { MessageType as MSG } from '../../../../protocols/rtmp/wire/messages.js';
import { parseConfig } from '../../../../src/config/parse.js';
import { MediaBus } from '../../../../src/media/bus.js';
import { StreamRegistry } from '../../../../src/streams/registry.js';
import type { Tracks } from '../../../../src/media/types.js';
import { TRACKS, media } from '../hls/synthetic.js';
import { DEFAULT_LIMITS } from '../../../../src/core/limits.js';
import { chunkReaderLimits } from '../../../../protocols/rtmp/session.js';

/** What the server reads with by default (src/core/limits.ts). */
const READER_LIMITS = chunkReaderLimits(DEFAULT_LIMITS);

function viewer(backlog: () => number = () => 0): {
  items: RtmpItem[];
  sub: { deliver(i: RtmpItem): void; backlog(): number };
} {
  const items: RtmpItem[] = [];
  return { items, sub: { deliver: (i) => items.push(i), backlog } };
}

interface Decoded {
  type: number;
  payload: Buffer;
}

/** What a player's chunk reader makes of one item's bytes (after the chunk size the conn announces). */
function decode(item: RtmpItem): Decoded[] {
  const reader = new ChunkReader(READER_LIMITS);
  const size = Buffer.alloc(4);
  size.writeUInt32BE(OUT_CHUNK_SIZE);
  reader.push(
    encodeMessage({ csid: 2, type: MSG.SetChunkSize, streamId: 0, timestamp: 0, payload: size }, 128),
  );
  return reader.push(item.bytes).map((m) => ({ type: m.type, payload: m.payload }));
}

/** The FLV video tag header says keyframe (0x17) and whether it is the AVC sequence header (0). */
const isVideoKeyframe = (d: Decoded | undefined): boolean =>
  d?.type === MSG.Video && d.payload[0] === 0x17 && d.payload[1] === 1;

function assertHeaders(item: RtmpItem | undefined, tracks: Tracks): void {
  assert.ok(item, 'a header item');
  assert.equal(item.start, false);
  assert.equal(item.payload, 0);
  const msgs = decode(item);
  assert.equal(msgs[0]?.type, MSG.DataAmf0, 'onMetaData first');
  const video = msgs.find((m) => m.type === MSG.Video);
  const audio = msgs.find((m) => m.type === MSG.Audio);
  assert.equal(video !== undefined, tracks.video !== undefined);
  assert.equal(audio !== undefined, tracks.audio !== undefined);
  if (video) assert.deepEqual([video.payload[0], video.payload[1]], [0x17, 0], 'AVC sequence header');
  if (video && tracks.video) assert.ok(video.payload.subarray(5).equals(tracks.video.config));
  if (audio) assert.equal(audio.payload[1], 0, 'AAC sequence header');
}

test('rtmp egress: the last viewer leaving unsubscribes from the bus; it listens again for the next', () => {
  const bus = new MediaBus();
  const egress = bus.egress('rtmp', (b) => new RtmpEgress(b));
  assert.equal(bus.listenerCount, 0, 'nothing listens before a viewer comes');
  const a = viewer();
  const b = viewer();
  const offA = egress.subscribe(a.sub);
  const offB = egress.subscribe(b.sub);
  assert.equal(bus.listenerCount, 1, 'one listener for all RTMP viewers');
  assert.equal(egress.viewers, 2);
  offA();
  offA(); // idempotent: a second call must not release b's hold
  assert.equal(bus.listenerCount, 1);
  assert.equal(egress.viewers, 1);
  offB();
  assert.equal(bus.listenerCount, 0);
  assert.equal(egress.viewers, 0);

  bus.startSource(TRACKS);
  for (const f of media(1)) bus.push(f);
  const c = viewer();
  egress.subscribe(c.sub);
  egress.flush();
  assert.equal(bus.listenerCount, 1);
  assertHeaders(c.items[0], TRACKS);
  assert.ok(isVideoKeyframe(decode(c.items[1]!)[0]), 'the cached GOP from its keyframe follows');
  assert.equal(c.items.filter((i) => i.payload === 0).length, 1, 'headers sent once, not once per replay');
});

test('rtmp egress: a viewer that came before the publisher gets the codec headers, then a keyframe first', () => {
  const bus = new MediaBus();
  const egress = bus.egress('rtmp', (b) => new RtmpEgress(b));
  const v = viewer();
  egress.subscribe(v.sub);
  assert.equal(v.items.length, 0, 'nothing to send before the publisher');

  bus.startSource(TRACKS);
  assert.equal(v.items.length, 1, 'headers as soon as the tracks are known');
  assertHeaders(v.items[0], TRACKS);

  // The publisher starts mid-GOP: audio and inter frames first, the keyframe at frame 15.
  for (const f of media(1.5, { firstIndex: 10 })) bus.push(f);
  egress.flush();
  const second = v.items[1];
  assert.ok(second?.start, 'the first media item is a start point');
  assert.ok(isVideoKeyframe(decode(second)[0]), 'and it is a video keyframe');
  assert.ok(v.items.slice(1).every((i) => i.payload > 0));
});

test('rtmp egress: changed tracks reach every viewer, even one skipping ahead for a full socket', () => {
  const bus = new MediaBus();
  const egress = bus.egress('rtmp', (b) => new RtmpEgress(b, { maxBacklog: 1000 }));
  let backlog = 0;
  const slow = viewer(() => backlog);
  const fast = viewer();
  egress.subscribe(slow.sub);
  egress.subscribe(fast.sub);
  bus.startSource(TRACKS);
  for (const f of media(1)) bus.push(f);
  egress.flush();
  backlog = 5000;
  for (const f of media(0.2, { startDts: 90000, firstIndex: 25 })) bus.push(f);
  egress.flush();

  const next: Tracks = {
    ...TRACKS,
    video: { ...TRACKS.video!, config: Buffer.from([1, 0x4d, 0, 0x1f, 0xff, 0xe0, 0]) },
  };
  const before = slow.items.length;
  bus.setTracks(next);
  assert.equal(slow.items.length, before + 1, 'the stalled viewer still gets the new headers');
  assertHeaders(slow.items.at(-1), next);
  assertHeaders(fast.items.at(-1), next);
  assert.equal(slow.items.at(-1), fast.items.at(-1), 'the same Buffer for every viewer');

  const late = viewer();
  egress.subscribe(late.sub);
  assert.equal(late.items[0], fast.items.at(-1), 'a new viewer gets the current headers first');
});

test('rtmp egress: a viewer joining mid-stream gets headers, then the GOP from the last keyframe', () => {
  const bus = new MediaBus();
  const egress = bus.egress('rtmp', (b) => new RtmpEgress(b));
  const first = viewer();
  egress.subscribe(first.sub);
  bus.startSource(TRACKS);
  for (const f of media(1.5)) bus.push(f);
  egress.flush();
  const late = viewer();
  egress.subscribe(late.sub);
  assert.equal(late.items[0], first.items[0], 'the same header Buffer');
  assert.ok(late.items[1]?.start);
  const offset = first.items.indexOf(late.items[1]!);
  assert.ok(offset > 1);
  late.items.slice(1).forEach((item, i) => assert.equal(item, first.items[offset + i]));
});

test('rtmp egress: one turn\u2019s messages reach every viewer as one shared Buffer when the turn ends', async () => {
  const bus = new MediaBus();
  const egress = bus.egress('rtmp', (b) => new RtmpEgress(b));
  const a = viewer();
  const b = viewer();
  egress.subscribe(a.sub);
  egress.subscribe(b.sub);
  bus.startSource(TRACKS);
  assert.equal(a.items.length, 1, 'the headers are not held back');
  const frames = media(0.4, { firstIndex: 20 }); // inter frames, the keyframe at 25, inter frames
  for (const f of frames) bus.push(f);
  assert.equal(a.items.length, 1, 'nothing before the turn ends');
  await new Promise((r) => setImmediate(r));
  // Before the keyframe there was nothing to start on; from it on, one item for the rest of the turn.
  assert.equal(a.items.length, 2);
  const batch = a.items[1]!;
  assert.equal(batch, b.items[1], 'the same Buffer for every viewer');
  assert.ok(batch.start);
  const msgs = decode(batch);
  assert.ok(isVideoKeyframe(msgs[0]), 'the batch begins with the keyframe');
  const fromKey = frames.slice(frames.findIndex((f) => f.kind === 'video' && f.keyframe));
  assert.equal(msgs.length, fromKey.length, 'every message after it, in order');
  assert.deepEqual(
    msgs.map((m) => m.type),
    fromKey.map((f) => (f.kind === 'video' ? MSG.Video : MSG.Audio)),
  );
  assert.equal(
    batch.payload,
    msgs.reduce((n, m) => n + m.payload.length, 0),
  );
});

test('rtmp egress: a keyframe opens a new batch, so a waiting viewer and the GOP cache see it', () => {
  const bus = new MediaBus();
  const egress = bus.egress('rtmp', (b) => new RtmpEgress(b));
  const early = viewer();
  egress.subscribe(early.sub);
  bus.startSource(TRACKS);
  for (const f of media(1.5)) bus.push(f); // keyframes at frames 0 and 25, in one turn
  egress.flush();
  const batches = early.items.slice(1);
  assert.equal(batches.length, 2, 'one batch per GOP');
  assert.ok(batches.every((i) => i.start && isVideoKeyframe(decode(i)[0])));
  const late = viewer();
  egress.subscribe(late.sub);
  assert.equal(late.items[1], batches[1], 'a new viewer starts on the batch of the last keyframe');
});

test('rtmp egress: changed tracks send the frames batched before them first; idle drops a pending batch', () => {
  const bus = new MediaBus();
  const egress = bus.egress('rtmp', (b) => new RtmpEgress(b));
  const v = viewer();
  const off = egress.subscribe(v.sub);
  bus.startSource(TRACKS);
  for (const f of media(0.2)) bus.push(f);
  bus.setTracks({ ...TRACKS, audio: undefined });
  assert.equal(v.items.length, 3, 'headers, the old frames, the new headers');
  assert.ok(v.items[1]!.payload > 0);
  assert.equal(v.items[2]!.payload, 0);
  for (const f of media(0.2, { audio: false })) bus.push(f);
  off();
  egress.flush();
  assert.equal(v.items.length, 3, 'nothing is sent after the last viewer left');
});

test('rtmp egress: audio next to video waits for the next video frame, or AUDIO_HOLD_MS', async (t) => {
  t.mock.timers.enable({ apis: ['setTimeout'] });
  const turn = (): Promise<void> => new Promise((r) => setImmediate(r));
  const bus = new MediaBus();
  const egress = bus.egress('rtmp', (b) => new RtmpEgress(b));
  const v = viewer();
  egress.subscribe(v.sub);
  bus.startSource(TRACKS);
  const frames = media(0.2);
  const audio = frames.filter((f) => f.kind === 'audio');
  const video = frames.filter((f) => f.kind === 'video');
  bus.push(video[0]!);
  await turn();
  assert.equal(v.items.length, 2, 'video leaves when the turn ends');
  bus.push(audio[0]!);
  bus.push(audio[1]!);
  await turn();
  assert.equal(v.items.length, 2, 'audio alone is held');
  bus.push(video[1]!);
  await turn();
  assert.equal(v.items.length, 3, 'and rides with the next video frame');
  assert.deepEqual(
    decode(v.items[2]!).map((m) => m.type),
    [MSG.Audio, MSG.Audio, MSG.Video],
  );
  bus.push(audio[2]!);
  await turn();
  t.mock.timers.tick(AUDIO_HOLD_MS - 1);
  assert.equal(v.items.length, 3);
  t.mock.timers.tick(1);
  assert.equal(v.items.length, 4, 'without video it leaves after AUDIO_HOLD_MS');
  assert.deepEqual(
    decode(v.items[3]!).map((m) => m.type),
    [MSG.Audio],
  );
});

test('rtmp egress: audio without video is never held', async () => {
  const bus = new MediaBus();
  const egress = bus.egress('rtmp', (b) => new RtmpEgress(b));
  const v = viewer();
  egress.subscribe(v.sub);
  const tracks: Tracks = { ...TRACKS, video: undefined };
  bus.startSource(tracks);
  for (const f of media(0.1, { video: false })) bus.push(f);
  await new Promise((r) => setImmediate(r));
  assert.equal(v.items.length, 2, 'headers, then one batch at the end of the turn');
  assert.ok(v.items[1]!.start);
});

test('viewer counts: the bus reports the sum of its egresses\u2019 viewers, not its listeners', () => {
  const bus = new MediaBus();
  const rtmp = bus.egress('rtmp', (b) => new RtmpEgress(b));
  const ts = bus.egress('mpegts', (b) => new TsEgress(b));
  const offs = [rtmp.subscribe(viewer().sub), rtmp.subscribe(viewer().sub), ts.subscribe(viewer().sub)];
  assert.equal(bus.viewers, 3);
  assert.equal(bus.listenerCount, 2);
  offs[0]!();
  assert.equal(bus.viewers, 2);
  offs[1]!();
  offs[2]!();
  assert.equal(bus.viewers, 0);
  assert.equal(bus.listenerCount, 0);
});

function templateRegistry(): StreamRegistry {
  const parsed = parseConfig('template live { prefix live; input publish://; }\n', 'test.conf');
  if (!('config' in parsed)) throw new Error(JSON.stringify(parsed.errors));
  return new StreamRegistry(parsed.config, { log: pino({ level: 'silent' }), ffmpeg: 'ffmpeg' });
}

test('registry: a template stream whose only RTMP viewer left is removed by the idle sweep', async () => {
  const registry = templateRegistry();
  try {
    const stream = registry.resolve('live/cam1');
    assert.ok(stream);
    const egress = stream.bus.egress('rtmp', (b) => new RtmpEgress(b));
    const off = egress.subscribe(viewer().sub);
    const t0 = Date.now();
    registry.removeIdle(t0 + 61_000);
    assert.deepEqual(
      registry.list().map((s) => s.name),
      ['live/cam1'],
      'a watched stream stays',
    );
    off();
    assert.equal(stream.bus.listenerCount, 0, 'the RTMP egress let go of the bus');
    assert.equal(stream.bus.viewers, 0);
    registry.removeIdle(t0 + 61_000 + 30_000);
    assert.deepEqual(
      registry.list().map((s) => s.name),
      ['live/cam1'],
      'not before a minute without viewers',
    );
    registry.removeIdle(t0 + 61_000 + 61_000);
    assert.deepEqual(registry.list(), [], 'removed once idle');
  } finally {
    await registry.stop();
  }
});

test('rtmp egress: H.265 and AV1 frames carry the Enhanced RTMP header of their sequence header (issue 10 bug 1)', () => {
  for (const [codec, fourCc] of [
    ['h265', 'hvc1'],
    ['av1', 'av01'],
  ] as const) {
    const bus = new MediaBus();
    const egress = bus.egress('rtmp', (b) => new RtmpEgress(b));
    const v = viewer();
    egress.subscribe(v.sub);
    const config = codec === 'h265' ? Buffer.from([1, 1, 0x60, 0, 0, 0, 0, 0]) : Buffer.from([0x81, 0, 0, 0]);
    bus.startSource({ video: { kind: 'video', codec, config } });
    bus.push({ kind: 'video', dts: 0, pts: 0, keyframe: true, data: Buffer.from([0, 0, 0, 1, 0x26]) });
    bus.push({ kind: 'video', dts: 3600, pts: 3600, keyframe: false, data: Buffer.from([0, 0, 0, 1, 0x02]) });
    egress.flush();
    const videos = v.items.flatMap(decode).filter((m) => m.type === MSG.Video);
    assert.equal(videos.length, 3, `${codec}: sequence header and two frames`);
    for (const [i, m] of videos.entries()) {
      assert.equal(m.payload[0]! & 0x80, 0x80, `${codec} message ${i}: IsExHeader`);
      assert.equal(m.payload.toString('latin1', 1, 5), fourCc, `${codec} message ${i}: FourCC`);
    }
    assert.equal(videos[0]!.payload[0]! & 0x0f, 0, 'SequenceStart');
    assert.equal((videos[1]!.payload[0]! >> 4) & 7, 1, 'keyframe');
    assert.equal((videos[2]!.payload[0]! >> 4) & 7, 2, 'inter frame');
  }
});
