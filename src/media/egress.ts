/**
 * Egress: one stream's media in one output format, muxed once per stream and handed as the
 * same Buffers to every viewer of that format (ARCHITECTURE "fan-out rule", "one egress shape").
 *
 * Every egress listens to the stream's bus only while it has viewers, so an unwatched stream
 * costs nothing and an idle template stream can be removed; its viewer count is what the bus
 * reports as the stream's viewers (a bus listener is an egress, not a viewer).
 *
 * Two shapes share that rule:
 * - `BusEgress` is the rule alone, for an output whose viewers pull what it keeps (HLS).
 * - `Egress<T>` pushes items to connected viewers (RTMP, RTSP, HTTP MPEG-TS). A new viewer gets
 *   the format's preamble (if it has one), then the cached items from the last start point
 *   (FanOut), and nothing before its first start point, so its first bytes decode on their own.
 */
import type { MediaBus } from './bus.js';
import { FanOut, type FanOutOptions, type FanOutSubscriber } from './fanout.js';
import type { Frame, Tracks } from './types.js';

export abstract class BusEgress {
  private holds = 0;
  private unsubscribeBus: (() => void) | undefined;

  constructor(protected readonly bus: MediaBus) {}

  /** Viewers of this output; the bus sums them over its egresses into the stream's viewers. */
  get viewers(): number {
    return this.holds;
  }

  /**
   * One viewer more: the first makes the egress listen, and the bus replays its tracks and
   * cached GOP into it at once. Returns the release, which is idempotent.
   */
  protected hold(): () => void {
    this.holds++;
    this.unsubscribeBus ??= this.bus.subscribe({
      onTracks: (t) => this.onTracks(t),
      onFrame: (f) => this.onFrame(f),
      backlog: () => 0,
    });
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.holds--;
      if (this.holds > 0 || !this.unsubscribeBus) return;
      this.unsubscribeBus();
      this.unsubscribeBus = undefined;
      this.idle();
    };
  }

  /**
   * The last viewer left and the bus is released. Whatever was derived from the bus goes
   * stale from here on; the next viewer's hold replays the current tracks and GOP.
   */
  protected abstract idle(): void;
  protected abstract onTracks(tracks: Tracks): void;
  protected abstract onFrame(frame: Frame): void;
}

export interface EgressItem {
  /** A point where a viewer may start (a keyframe, with whatever the format puts in front). */
  readonly start: boolean;
}

export abstract class Egress<T extends EgressItem> extends BusEgress {
  protected readonly fanout: FanOut<T>;
  private readonly subscribers = new Set<FanOutSubscriber<T>>();
  private preambleItem: T | undefined;

  constructor(bus: MediaBus, options: FanOutOptions = {}) {
    super(bus);
    this.fanout = new FanOut<T>((i) => i.start, options);
  }

  get droppedForSlowViewers(): number {
    return this.fanout.dropped;
  }

  subscribe(viewer: FanOutSubscriber<T>): () => void {
    if (this.preambleItem) viewer.deliver(this.preambleItem);
    let started = false;
    const unsubscribe = this.fanout.subscribe({
      deliver: (item) => {
        if (!started && !item.start) return;
        started = true;
        viewer.deliver(item);
      },
      backlog: () => viewer.backlog(),
    });
    this.subscribers.add(viewer);
    const release = this.hold();
    return () => {
      unsubscribe();
      this.subscribers.delete(viewer);
      release();
    };
  }

  /**
   * What every viewer must have before any item, whatever it joined for (RTMP's metadata
   * and codec headers). It is sent to each current viewer at once, past the start-point gate
   * and the slow-viewer skipping (a viewer that skips ahead still needs the new parameters),
   * and to each later viewer first. It is never cached as an item; callers that change
   * codec parameters reset the cache themselves.
   */
  protected setPreamble(item: T): void {
    this.preambleItem = item;
    for (const s of this.subscribers) s.deliver(item);
  }

  protected idle(): void {
    this.fanout.reset();
    this.preambleItem = undefined;
  }
}
