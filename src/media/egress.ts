/**
 * Egress: one stream's media in one output format, muxed once per stream and handed as the
 * same Buffers to every viewer of that format (ARCHITECTURE "fan-out rule").
 *
 * The base listens to the stream's bus only while it has viewers, so an unwatched stream
 * costs nothing; a new viewer gets the cached items from the last start point (FanOut) and
 * nothing before its first start point, so its first bytes decode on their own. Subclasses
 * turn tracks and frames into items and publish them.
 */
import type { MediaBus } from './bus.js';
import { FanOut, type FanOutOptions, type FanOutSubscriber } from './fanout.js';
import type { Frame, Tracks } from './types.js';

export interface EgressItem {
  /** A point where a viewer may start (a keyframe, with whatever the format puts in front). */
  readonly start: boolean;
}

export abstract class Egress<T extends EgressItem> {
  protected readonly fanout: FanOut<T>;
  private unsubscribeBus: (() => void) | undefined;

  constructor(
    protected readonly bus: MediaBus,
    options: FanOutOptions = {},
  ) {
    this.fanout = new FanOut<T>((i) => i.start, options);
  }

  get viewers(): number {
    return this.fanout.size;
  }

  get droppedForSlowViewers(): number {
    return this.fanout.dropped;
  }

  subscribe(viewer: FanOutSubscriber<T>): () => void {
    let started = false;
    const unsubscribe = this.fanout.subscribe({
      deliver: (item) => {
        if (!started && !item.start) return;
        started = true;
        viewer.deliver(item);
      },
      backlog: () => viewer.backlog(),
    });
    // The bus replays its tracks and cached GOP on subscribe, which fills our cache for the
    // first viewer too.
    this.unsubscribeBus ??= this.bus.subscribe({
      onTracks: (t) => this.onTracks(t),
      onFrame: (f) => this.onFrame(f),
      backlog: () => 0,
    });
    return () => {
      unsubscribe();
      if (this.fanout.size === 0 && this.unsubscribeBus) {
        this.unsubscribeBus();
        this.unsubscribeBus = undefined;
        this.fanout.reset();
      }
    };
  }

  protected abstract onTracks(tracks: Tracks): void;
  protected abstract onFrame(frame: Frame): void;
}
