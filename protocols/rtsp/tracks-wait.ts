/**
 * Waiting for a just-started stream to know its tracks: a DESCRIBE that comes a moment
 * before the publisher's first frame is answered as soon as the tracks are announced on the
 * stream's bus, not after a polling interval, and with 404 when none come in time.
 */
import type { MediaBus } from '../../src/media/bus.js';
import type { Tracks } from '../../src/media/types.js';

export interface TracksWait {
  /** The first tracks `accept` takes; undefined after the time-out or `cancel`. */
  readonly tracks: Promise<Tracks | undefined>;
  /** Stops waiting (the client went away); idempotent. */
  cancel(): void;
}

export function waitForTracks(bus: MediaBus, accept: (t: Tracks) => boolean, timeoutMs: number): TracksWait {
  const now = bus.tracks;
  if (now && accept(now)) return { tracks: Promise.resolve(now), cancel: () => undefined };
  let settle: (tracks: Tracks | undefined) => void = () => undefined;
  const tracks = new Promise<Tracks | undefined>((resolve) => {
    let done = false;
    let unsubscribe: (() => void) | undefined;
    settle = (t) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      unsubscribe?.();
      resolve(t);
    };
    const timer = setTimeout(() => settle(undefined), timeoutMs);
    // The bus tells a listener of every track change; its frames are of no use here.
    const off = bus.subscribe({
      onTracks: (t) => {
        if (accept(t)) settle(t);
      },
      onFrame: () => undefined,
      backlog: () => 0,
    });
    if (done) off();
    else unsubscribe = off;
  });
  return { tracks, cancel: () => settle(undefined) };
}
