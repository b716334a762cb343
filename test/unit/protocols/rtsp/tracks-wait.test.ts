import assert from 'node:assert/strict';
import { test } from 'node:test';
import { MediaBus } from '../../../../src/media/bus.js';
import type { Tracks } from '../../../../src/media/types.js';
import { playable } from '../../../../protocols/rtsp/play.js';
import { waitForTracks } from '../../../../protocols/rtsp/tracks-wait.js';
import { TRACKS } from '../hls/synthetic.js';

/** A source that has started but announced no track yet. */
const NO_TRACKS: Tracks = {};

test('tracks wait: tracks the bus already has come back at once, without listening', async () => {
  const bus = new MediaBus();
  bus.startSource(TRACKS);
  const wait = waitForTracks(bus, playable, 60_000);
  assert.equal(bus.listenerCount, 0);
  assert.equal(await wait.tracks, TRACKS);
});

test('tracks wait: resolves when a source announces usable tracks, and stops listening', async () => {
  const bus = new MediaBus();
  const wait = waitForTracks(bus, playable, 60_000);
  assert.equal(bus.listenerCount, 1, 'listening to the bus, not polling');
  bus.startSource(NO_TRACKS);
  bus.setTracks(TRACKS);
  assert.equal(await wait.tracks, TRACKS);
  assert.equal(bus.listenerCount, 0);
});

test('tracks wait: undefined after the time-out, or at once when cancelled', async () => {
  const bus = new MediaBus();
  const started = Date.now();
  assert.equal(await waitForTracks(bus, playable, 30).tracks, undefined);
  assert.ok(Date.now() - started >= 25);
  assert.equal(bus.listenerCount, 0);
  const wait = waitForTracks(bus, playable, 60_000);
  wait.cancel();
  wait.cancel();
  assert.equal(await wait.tracks, undefined);
  assert.equal(bus.listenerCount, 0);
});
