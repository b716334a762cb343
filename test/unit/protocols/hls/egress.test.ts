/**
 * HlsEgress lifetime: each HLS session holds the egress for a stretch after its last
 * request, only open sessions count as viewers, and when the last hold lapses the egress
 * lets go of the bus so an idle template stream can be removed.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { pino } from 'pino';
import { HlsEgress, type HlsViewer } from '../../../../protocols/hls/egress.js';
import { FakeClock } from '../../../../src/clock.js';
import { parseConfig } from '../../../../src/config/parse.js';
import { MediaBus } from '../../../../src/media/bus.js';
import { StreamRegistry } from '../../../../src/streams/registry.js';
import { TRACKS, media } from './synthetic.js';

const IDLE = 120_000;

function session(id: string): HlsViewer & { closed: boolean } {
  return { id, closed: false };
}

function setup(): { clock: FakeClock; bus: MediaBus; egress: HlsEgress; idled: () => number } {
  const clock = new FakeClock();
  const bus = new MediaBus();
  let idled = 0;
  const egress = bus.egress(
    'hls',
    (b) =>
      new HlsEgress(b, {
        targetDuration: 2,
        windowSize: 6,
        clock,
        idleMs: IDLE,
        onIdle: () => idled++,
      }),
  );
  bus.startSource(TRACKS);
  return { clock, bus, egress, idled: () => idled };
}

test('hls egress: sessions are its viewers; one bus listener feeds them all', () => {
  const { bus, egress } = setup();
  assert.equal(bus.listenerCount, 0, 'no request, no segmenting');
  const a = session('a');
  egress.touch(a);
  egress.touch(a);
  assert.equal(egress.viewers, 1, 'one session, however many requests');
  egress.touch(session('b'));
  assert.equal(egress.viewers, 2);
  assert.equal(bus.viewers, 2);
  assert.equal(bus.listenerCount, 1);
  for (const f of media(5)) bus.push(f);
  assert.equal(egress.segmenter.segments.length, 2);
});

test('hls egress: holds lapse one by one after their last request; the last lets go of the bus', async () => {
  const { clock, bus, egress, idled } = setup();
  const a = session('a');
  const b = session('b');
  egress.touch(a);
  for (const f of media(5)) bus.push(f);
  await clock.advance(60_000);
  egress.touch(b);
  await clock.advance(IDLE - 60_000);
  assert.equal(egress.viewers, 1, 'a lapsed, b still polls within its stretch');
  assert.equal(bus.listenerCount, 1);
  assert.equal(egress.segmenter.segments.length, 2, 'the window is kept');
  await clock.advance(60_000 - 1);
  assert.equal(bus.listenerCount, 1);
  await clock.advance(1);
  assert.equal(egress.viewers, 0);
  assert.equal(bus.listenerCount, 0, 'no session left: the bus is released');
  assert.equal(egress.segmenter.segments.length, 0, 'and the window forgotten');
  assert.equal(idled(), 1);

  egress.touch(session('c'));
  assert.equal(bus.listenerCount, 1, 'a new request feeds it again');
});

test('hls egress: a closed session stops counting, but its window stays for a player that comes back', async () => {
  const { clock, bus, egress } = setup();
  const a = session('a');
  egress.touch(a);
  for (const f of media(5)) bus.push(f);
  const window = [...egress.segmenter.segments];
  a.closed = true; // kicked by the manager
  assert.equal(egress.viewers, 0);
  assert.equal(bus.viewers, 0);
  assert.equal(bus.listenerCount, 1, 'still segmenting');
  await clock.advance(5_000);
  egress.touch(session('a2')); // the same player, readmitted as a new session
  assert.equal(egress.viewers, 1);
  assert.deepEqual(egress.segmenter.segments, window, 'the same segments, no restart');
});

test('hls egress: close() releases every hold and wakes waiting requests', async () => {
  const { bus, egress, idled } = setup();
  egress.touch(session('a'));
  const waiting = egress.waitForSegment(10_000);
  egress.close();
  assert.equal(await waiting, false);
  assert.equal(bus.listenerCount, 0);
  assert.equal(idled(), 1);
  egress.touch(session('b'));
  assert.equal(bus.listenerCount, 0, 'closed for good');
});

test('registry: a template stream whose HLS sessions are gone is removed by the idle sweep', async () => {
  const parsed = parseConfig('template live { prefix live; input publish://; }\n', 'test.conf');
  if (!('config' in parsed)) throw new Error(JSON.stringify(parsed.errors));
  const registry = new StreamRegistry(parsed.config, { log: pino({ level: 'silent' }), ffmpeg: 'ffmpeg' });
  const clock = new FakeClock();
  try {
    const stream = registry.resolve('live/cam1');
    assert.ok(stream);
    const egress = stream.bus.egress(
      'hls',
      (b) => new HlsEgress(b, { targetDuration: 2, windowSize: 6, clock }),
    );
    const s = session('a');
    egress.touch(s);
    const t0 = Date.now();
    registry.removeIdle(t0 + 61_000);
    assert.equal(registry.list().length, 1, 'an open HLS session keeps it');
    s.closed = true; // the manager closed it after its idle timeout
    registry.removeIdle(t0 + 61_000 + 61_000);
    assert.deepEqual(registry.list(), [], 'removed: nobody watches, whatever the window');
  } finally {
    await registry.stop();
  }
});

test('hls egress: a publisher restart on the bus is a discontinuity even with the same tracks', () => {
  const { bus, egress } = setup();
  egress.touch(session('a'));
  for (const f of media(4.5)) bus.push(f);
  bus.setTracks(TRACKS); // the same source resends its parameters: nothing changes
  for (const f of media(2, { startDts: 4.5 * 90000, firstIndex: 12 })) bus.push(f); // keyframes at 5.02 and 6.02 s
  bus.endSource();
  bus.startSource(TRACKS); // a new publisher with the same encoder settings
  for (const f of media(4.5)) bus.push(f); // the bus rebases its timestamps after 6.5 s
  assert.deepEqual(
    egress.segmenter.segments.map((s) => [Number((s.startDts / 90000).toFixed(3)), s.discontinuity]),
    [
      [0, false],
      [2, false],
      [4, false],
      [6.02, false], // closed when the new publisher starts
      [6.53, true], // after the last audio frame (6.497 s) and the bus's 1/30 s gap
      [8.53, false],
    ],
  );
});

test('hls egress: a waiting request is released by the cut; onSegment listeners see every cut', async () => {
  const { bus, egress } = setup();
  egress.touch(session('a'));
  const cuts: number[] = [];
  const off = egress.onSegment((s) => cuts.push(s.seq));
  egress.onSegment(() => {
    throw new Error('a broken recorder');
  });
  const waiting = egress.waitForSegment(60_000);
  assert.equal(egress.waiting, 1);
  const frames = media(2.5);
  for (const f of frames) bus.push(f);
  assert.equal(await waiting, true);
  assert.equal(egress.waiting, 0);
  assert.equal(cuts.length, 1);
  off();
  for (const f of media(2, { startDts: 2.5 * 90000, firstIndex: 62 })) bus.push(f);
  assert.equal(cuts.length, 1, 'unsubscribed');
  assert.equal(egress.segmenter.segments.length, 2, 'the throwing listener did not stop the window');
});
