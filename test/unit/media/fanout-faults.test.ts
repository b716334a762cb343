/**
 * Error boundaries in the fan-out: a viewer (or a whole output format) that throws is dropped
 * with a reason while the publisher's push and every other viewer go on; a viewer whose send
 * queue stays over viewer_send_queue_bytes for viewer_stall_timeout is closed.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DEFAULT_LIMITS, limitHits, type LimitName, type Limits } from '../../../src/core/limits.js';
import type { ViewerDropReason } from '../../../src/core/reasons.js';
import { MediaBus, type Drop } from '../../../src/media/bus.js';
import { Egress, type EgressViewer } from '../../../src/media/egress.js';
import { FanOut } from '../../../src/media/fanout.js';
import type { Frame, Tracks } from '../../../src/media/types.js';

const tracks: Tracks = { video: { kind: 'video', codec: 'h264', config: Buffer.from([1, 2]) } };
const video = (dts: number, keyframe = false): Frame => ({
  kind: 'video',
  dts,
  pts: dts,
  keyframe,
  data: Buffer.alloc(10),
});

interface Item {
  readonly start: boolean;
  readonly dts: number;
}

/** The smallest push egress: one item per frame. */
class FrameEgress extends Egress<Item> {
  protected onTracks(): void {}
  protected onFrame(frame: Frame): void {
    this.fanout.publish({ start: frame.keyframe, dts: frame.dts });
  }
}

/** An egress whose muxer has a bug: it throws on the frame with dts 666. */
class BuggyEgress extends FrameEgress {
  protected override onFrame(frame: Frame): void {
    if (frame.dts === 666) throw new Error('muxer bug');
    super.onFrame(frame);
  }
}

function viewer(
  over: Partial<EgressViewer<Item>> = {},
): EgressViewer<Item> & { got: number[]; closed: ViewerDropReason[] } {
  const got: number[] = [];
  const closed: ViewerDropReason[] = [];
  return {
    got,
    closed,
    deliver: (i) => got.push(i.dts),
    backlog: () => 0,
    close: (r) => closed.push(r),
    ...over,
  };
}

function busWith(limits: Partial<Limits> = {}): { bus: MediaBus; drops: Drop[] } {
  const drops: Drop[] = [];
  const bus = new MediaBus({
    limits: () => ({ ...DEFAULT_LIMITS, ...limits }),
    onDrop: (d) => drops.push(d),
  });
  return { bus, drops };
}

const hits = (name: LimitName): number => limitHits().get(name) ?? 0;
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

test('fanout: a subscriber that throws is removed and told; the others and the publisher go on', () => {
  const fan = new FanOut<{ key: boolean; n: number }>((i) => i.key);
  const good: number[] = [];
  const failures: unknown[] = [];
  fan.subscribe({ deliver: (i) => good.push(i.n), backlog: () => 0 });
  fan.subscribe({
    deliver: (i) => {
      if (i.n === 2) throw new Error('write after end');
    },
    backlog: () => 0,
    failed: (err) => failures.push(err),
  });
  fan.subscribe({
    deliver: () => undefined,
    backlog: () => {
      throw new Error('backlog bug');
    },
    failed: () => {
      throw new Error('and the failure handler throws too');
    },
  });
  assert.equal(fan.size, 3);
  fan.publish({ key: true, n: 1 });
  assert.doesNotThrow(() => fan.publish({ key: false, n: 2 }));
  fan.publish({ key: false, n: 3 });
  assert.deepEqual(good, [1, 2, 3]);
  assert.equal(failures.length, 1);
  assert.match(String(failures[0]), /write after end/);
  assert.equal(fan.size, 1);
  assert.equal(fan.failures, 2);

  // Failing during the replay of the cache: never added.
  let told = 0;
  const off = fan.subscribe({
    deliver: () => {
      throw new Error('replay');
    },
    backlog: () => 0,
    failed: () => told++,
  });
  assert.equal(told, 1);
  assert.equal(fan.size, 1);
  off();
});

test('bus: an output format that throws is dropped and reported; the publisher and the other formats go on', () => {
  const { bus, drops } = busWith();
  const fine = bus.egress('fine', (b) => new FrameEgress(b));
  const buggy = bus.egress('buggy', (b) => new BuggyEgress(b));
  const a = viewer();
  const b = viewer();
  fine.subscribe(a);
  buggy.subscribe(b);
  bus.startSource(tracks);
  bus.push(video(0, true));
  assert.doesNotThrow(() => bus.push(video(666)));
  bus.push(video(900));
  assert.deepEqual(a.got, [0, 666, 900]);
  assert.deepEqual(b.got, [0], 'the broken format sends nothing more');
  assert.deepEqual(b.closed, ['viewer_fault'], 'and lets its viewers go');
  assert.equal(buggy.viewers, 0);
  assert.equal(bus.listenerCount, 1);
  assert.deepEqual(
    drops.map((d) => [d.reason, String(d.err)]),
    [['egress_fault', 'Error: muxer bug']],
  );

  // The next viewer of that format starts it afresh, from the next keyframe on.
  bus.push(video(1000, true));
  const c = viewer();
  buggy.subscribe(c);
  bus.push(video(1001));
  assert.deepEqual(c.got, [1000, 1001]);
  assert.equal(bus.listenerCount, 2);
});

test('bus: a listener throwing on new tracks is dropped too', () => {
  const { bus, drops } = busWith();
  const seen: Tracks[] = [];
  bus.subscribe({ onTracks: (t) => seen.push(t), onFrame: () => undefined, backlog: () => 0 });
  let failed = 0;
  bus.subscribe({
    onTracks: () => {
      throw new Error('tracks bug');
    },
    onFrame: () => undefined,
    backlog: () => 0,
    failed: () => failed++,
  });
  assert.doesNotThrow(() => bus.startSource(tracks));
  assert.deepEqual(seen, [tracks]);
  assert.equal(failed, 1);
  assert.equal(bus.listenerCount, 1);
  assert.equal(drops.length, 1);
});

test('egress: a viewer whose deliver throws is dropped with a reason; another viewer and the publisher continue', () => {
  const { bus, drops } = busWith();
  const egress = bus.egress('frames', (b) => new FrameEgress(b));
  const good = viewer();
  const bad = viewer({
    deliver: (i) => {
      if (i.dts === 3) throw new Error('EPIPE');
    },
  });
  egress.subscribe(good);
  const unsubscribeBad = egress.subscribe(bad);
  assert.equal(bus.viewers, 2);
  bus.startSource(tracks);
  for (const dts of [0, 1, 2, 3, 4, 5]) assert.doesNotThrow(() => bus.push(video(dts, dts === 0)));
  assert.deepEqual(good.got, [0, 1, 2, 3, 4, 5]);
  assert.deepEqual(bad.closed, ['viewer_fault'], 'asked to close, once');
  assert.equal(bus.viewers, 1);
  assert.deepEqual(
    drops.map((d) => [d.reason, String(d.err)]),
    [['viewer_fault', 'Error: EPIPE']],
  );
  unsubscribeBad(); // the adapter's teardown after close: harmless
  assert.equal(bus.viewers, 1);
  assert.equal(bus.listenerCount, 1);
});

test('egress: a viewer failing on its first items (the cached GOP) is dropped at subscribe', () => {
  const { bus } = busWith();
  const egress = bus.egress('frames', (b) => new FrameEgress(b));
  bus.startSource(tracks);
  bus.push(video(0, true));
  const first = viewer();
  egress.subscribe(first);
  bus.push(video(1));
  const bad = viewer({
    deliver: () => {
      throw new Error('broken from the start');
    },
  });
  assert.doesNotThrow(() => egress.subscribe(bad));
  assert.deepEqual(bad.closed, ['viewer_fault']);
  assert.equal(egress.viewers, 1);
  bus.push(video(2));
  assert.deepEqual(first.got, [0, 1, 2]);
});

test('egress: a viewer over viewer_send_queue_bytes for viewer_stall_timeout is closed; one that drains is not', async () => {
  const { bus, drops } = busWith({ viewer_send_queue_bytes: 1000, viewer_stall_timeout: 0.15 });
  const egress = bus.egress('frames', (b) => new FrameEgress(b));
  let stuck = 0;
  let slow = 0;
  const reader = viewer();
  const stalled = viewer({ backlog: () => stuck });
  const recovering = viewer({ backlog: () => slow });
  egress.subscribe(reader);
  egress.subscribe(stalled);
  egress.subscribe(recovering);
  const queueHits = hits('viewer_send_queue_bytes');
  const stallHits = hits('viewer_stall_timeout');
  bus.startSource(tracks);
  bus.push(video(0, true));
  stuck = 5000; // stopped reading
  slow = 5000; // a moment of congestion
  bus.push(video(1));
  assert.equal(hits('viewer_send_queue_bytes'), queueHits + 2, 'each over-the-cap episode counts once');
  await sleep(50);
  slow = 0;
  bus.push(video(2)); // the recovering viewer is seen under the cap again
  await sleep(200);
  assert.deepEqual(stalled.closed, ['viewer_stalled']);
  assert.deepEqual(recovering.closed, []);
  assert.deepEqual(reader.closed, []);
  assert.equal(hits('viewer_stall_timeout'), stallHits + 1);
  assert.deepEqual(
    drops.map((d) => [d.reason, d.backlog]),
    [['viewer_stalled', 5000]],
  );
  assert.equal(egress.viewers, 2);
  bus.push(video(3, true));
  assert.deepEqual(reader.got, [0, 1, 2, 3]);
  assert.deepEqual(recovering.got, [0, 3], 'skipped to the next keyframe, then resumed');
});

test('egress: the stall check also fires when the publisher has gone quiet', async () => {
  const { bus } = busWith({ viewer_send_queue_bytes: 100, viewer_stall_timeout: 0.05 });
  const egress = bus.egress('frames', (b) => new FrameEgress(b));
  const stalled = viewer({ backlog: () => 1000 });
  egress.subscribe(stalled);
  bus.startSource(tracks);
  bus.push(video(0, true));
  bus.push(video(1)); // seen over the cap; nothing is pushed after this
  await sleep(150);
  assert.deepEqual(stalled.closed, ['viewer_stalled']);
  assert.equal(bus.listenerCount, 0, 'the last viewer gone: the egress let go of the bus');
});

test('egress: a viewer that unsubscribes leaves no stall timer behind', async () => {
  const { bus, drops } = busWith({ viewer_send_queue_bytes: 100, viewer_stall_timeout: 0.05 });
  const egress = bus.egress('frames', (b) => new FrameEgress(b));
  const v = viewer({ backlog: () => 1000 });
  const off = egress.subscribe(v);
  bus.startSource(tracks);
  bus.push(video(0, true));
  bus.push(video(1));
  off();
  await sleep(120);
  assert.deepEqual(v.closed, []);
  assert.deepEqual(drops, []);
});
