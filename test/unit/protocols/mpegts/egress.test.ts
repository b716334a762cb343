/**
 * TsEgress: muxed once per stream, the same Buffer objects go to every viewer; viewers
 * start on PAT/PMT at a keyframe, and a slow viewer skips to the next keyframe.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { TsEgress, type TsItem } from '../../../../protocols/mpegts/egress.js';
import { MediaBus } from '../../../../src/media/bus.js';
import { TsMuxer } from '../../../../src/media/mpegts/index.js';
import { TRACKS, media, pidAt } from '../hls/synthetic.js';

function viewer(backlog: () => number = () => 0): {
  items: TsItem[];
  sub: { deliver(i: TsItem): void; backlog(): number };
} {
  const items: TsItem[] = [];
  return { items, sub: { deliver: (i) => items.push(i), backlog } };
}

test('mpegts egress: two viewers receive the very same Buffers, byte-exact with one TsMuxer', () => {
  const bus = new MediaBus();
  const egress = new TsEgress(bus);
  const a = viewer();
  const b = viewer();
  egress.subscribe(a.sub);
  egress.subscribe(b.sub);
  bus.startSource(TRACKS);
  const frames = media(3);
  for (const f of frames) bus.push(f);

  assert.ok(a.items.length > 100);
  assert.equal(a.items.length, b.items.length);
  a.items.forEach((item, i) =>
    assert.ok(item.bytes === b.items[i]?.bytes, `item ${i} is the same Buffer object`),
  );

  // The bytes are exactly what one muxer makes of the frames: muxed once, not per viewer.
  const reference = new TsMuxer(TRACKS);
  const expected = Buffer.concat(frames.map((f) => reference.mux(f)));
  assert.ok(Buffer.concat(a.items.map((i) => i.bytes)).equals(expected));
  assert.equal(pidAt(a.items[0]!.bytes, 0), 0, 'first packet is the PAT');
  assert.equal(pidAt(a.items[0]!.bytes, 188), 0x1000, 'then the PMT');
});

test('mpegts egress: a viewer joining mid-GOP starts at the cached keyframe with PAT/PMT', () => {
  const bus = new MediaBus();
  const egress = new TsEgress(bus);
  const first = viewer();
  egress.subscribe(first.sub);
  bus.startSource(TRACKS);
  const frames = media(2.5);
  for (const f of frames) bus.push(f);
  const late = viewer();
  egress.subscribe(late.sub);
  assert.ok(late.items[0]?.start, 'first item is a start point');
  assert.equal(pidAt(late.items[0]!.bytes, 0), 0);
  // Its bytes are a suffix of what the first viewer got: the same cached Buffers.
  const offset = first.items.indexOf(late.items[0]!);
  assert.ok(offset > 0);
  late.items.forEach((item, i) => assert.ok(item === first.items[offset + i]));

  // It starts at the last keyframe (2 s): the first viewer saw two start points before it.
  assert.equal(first.items.slice(0, offset).filter((i) => i.start).length, 2);
});

test('mpegts egress: the first viewer gets nothing until a keyframe arrives', () => {
  const bus = new MediaBus();
  bus.startSource(TRACKS);
  const egress = new TsEgress(bus);
  const v = viewer();
  egress.subscribe(v.sub);
  for (const f of media(1.5, { firstIndex: 10 })) bus.push(f); // keyframe at frame 15 = 0.6 s
  assert.ok(v.items.length > 0);
  assert.equal(v.items[0]?.start, true);
  assert.equal(pidAt(v.items[0]!.bytes, 0), 0);
});

test('mpegts egress: a slow viewer skips to the next keyframe, the others get everything', () => {
  const bus = new MediaBus();
  const egress = new TsEgress(bus, { maxBacklog: 1000 });
  let slowBacklog = 0;
  const fast = viewer();
  const slow = viewer(() => slowBacklog);
  egress.subscribe(fast.sub);
  egress.subscribe(slow.sub);
  bus.startSource(TRACKS);
  const frames = media(3);
  const half = frames.findIndex((f) => f.dts >= 0.5 * 90000);
  frames.slice(0, half).forEach((f) => bus.push(f));
  slowBacklog = 5000; // the socket backs up
  const before = slow.items.length;
  frames
    .slice(
      half,
      frames.findIndex((f) => f.dts >= 1.5 * 90000),
    )
    .forEach((f) => bus.push(f));
  assert.equal(slow.items.length, before, 'nothing is queued for a stalled viewer');
  slowBacklog = 0; // drained
  frames.slice(frames.findIndex((f) => f.dts >= 1.5 * 90000)).forEach((f) => bus.push(f));
  const resumed = slow.items[before];
  assert.equal(resumed?.start, true, 'resumes at a keyframe with PAT/PMT');
  assert.equal(slow.items.at(-1), fast.items.at(-1));
  assert.ok(egress.droppedForSlowViewers > 0);
});

test('mpegts egress: the last viewer leaving unsubscribes from the bus', () => {
  const bus = new MediaBus();
  const egress = bus.egress('mpegts', (b) => new TsEgress(b));
  const v = viewer();
  const off = egress.subscribe(v.sub);
  assert.equal(bus.listenerCount, 1);
  assert.equal(bus.viewers, 1);
  off();
  assert.equal(bus.listenerCount, 0);
  assert.equal(bus.viewers, 0);
  assert.equal(egress.viewers, 0);
});
