/**
 * FanOut delivers one sequence of items to many subscribers, each starting at a
 * keyframe, without letting a slow subscriber hold back the others.
 *
 * It is the shared mechanism behind the MediaBus (frames) and every per-protocol
 * egress (pre-muxed RTMP chunks, TS packets): items are produced once and the same
 * objects are handed to every subscriber.
 */

export interface FanOutSubscriber<T> {
  deliver(item: T): void;
  /** How much is still queued in this subscriber's transport (bytes, or items); 0 if unknown. */
  backlog(): number;
}

export interface FanOutOptions {
  /**
   * Backlog above which a subscriber stops receiving items until it has drained below
   * half of it and the next keyframe comes; 2 MiB by default (a few seconds of HD video).
   */
  maxBacklog?: number;
  /** Cap on the cached group of pictures, so a source with no keyframes cannot grow memory without bound. */
  maxGopItems?: number;
}

/** Decides whether an item is a point where a new subscriber may start (a video keyframe, say). */
export type StartPoint<T> = (item: T) => boolean;

interface Entry<T> {
  subscriber: FanOutSubscriber<T>;
  skipping: boolean;
}

export class FanOut<T> {
  private gop: T[] = [];
  private readonly entries = new Set<Entry<T>>();
  private readonly maxBacklog: number;
  private readonly maxGopItems: number;
  /** Items dropped for slow subscribers since creation; exported as a metric. */
  dropped = 0;

  constructor(
    private readonly isStart: StartPoint<T>,
    options: FanOutOptions = {},
  ) {
    this.maxBacklog = options.maxBacklog ?? 2 * 1024 * 1024;
    this.maxGopItems = options.maxGopItems ?? 4096;
  }

  get size(): number {
    return this.entries.size;
  }

  /** Cached items from the last keyframe on, which a new subscriber receives first. */
  cached(): readonly T[] {
    return this.gop;
  }

  publish(item: T): void {
    if (this.isStart(item)) {
      this.gop = [item];
    } else if (this.gop.length > 0 && this.gop.length < this.maxGopItems) {
      this.gop.push(item);
    }
    for (const entry of this.entries) this.offer(entry, item);
  }

  /** Forget the cached group of pictures (the source changed, old frames no longer decode). */
  reset(): void {
    this.gop = [];
  }

  /** Adds a subscriber, replays the cache to it, and returns the function that removes it. */
  subscribe(subscriber: FanOutSubscriber<T>): () => void {
    const entry: Entry<T> = { subscriber, skipping: false };
    for (const item of this.gop) subscriber.deliver(item);
    this.entries.add(entry);
    return () => {
      this.entries.delete(entry);
    };
  }

  private offer(entry: Entry<T>, item: T): void {
    const backlog = entry.subscriber.backlog();
    if (entry.skipping) {
      if (!this.isStart(item) || backlog > this.maxBacklog / 2) {
        this.dropped++;
        return;
      }
      entry.skipping = false;
    } else if (backlog > this.maxBacklog) {
      entry.skipping = true;
      this.dropped++;
      return;
    }
    entry.subscriber.deliver(item);
  }
}
