/**
 * FanOut delivers one sequence of items to many subscribers, each starting at a
 * keyframe, without letting a slow subscriber hold back the others.
 *
 * It is the shared mechanism behind the MediaBus (frames) and every per-protocol
 * egress (pre-muxed RTMP chunks, TS packets): items are produced once and the same
 * objects are handed to every subscriber.
 *
 * Delivery runs inside the publisher's push, so it is an error boundary: a subscriber whose
 * `deliver` throws is removed and told through `failed`, and the publisher and every other
 * subscriber go on as if it had left. What to make of the failure (log it, close a socket)
 * is the owner's business; this stays bookkeeping without a clock.
 */

export interface FanOutSubscriber<T> {
  deliver(item: T): void;
  /** How much is still queued in this subscriber's transport (bytes, or items); 0 if unknown. */
  backlog(): number;
  /** `deliver` threw (the error is passed on); the subscriber is already removed. Must not throw. */
  failed?(err: unknown): void;
}

export interface FanOutOptions {
  /**
   * Backlog above which a subscriber stops receiving items until it has drained below
   * half of it and the next keyframe comes; 2 MiB by default (a few seconds of HD video).
   * A function is read at each item, so a reloaded limit applies to running streams.
   */
  maxBacklog?: number | (() => number);
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
  private readonly maxBacklog: () => number;
  private readonly maxGopItems: number;
  /** Items dropped for slow subscribers since creation; exported as a metric. */
  dropped = 0;
  /** Subscribers removed because their `deliver` threw. */
  failures = 0;

  constructor(
    private readonly isStart: StartPoint<T>,
    options: FanOutOptions = {},
  ) {
    const max = options.maxBacklog ?? 2 * 1024 * 1024;
    this.maxBacklog = typeof max === 'function' ? max : () => max;
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

  /**
   * Adds a subscriber, replays the cache to it, and returns the function that removes it.
   * A subscriber that fails during the replay is never added (and is told, as later).
   */
  subscribe(subscriber: FanOutSubscriber<T>): () => void {
    const entry: Entry<T> = { subscriber, skipping: false };
    for (const item of this.gop) {
      if (!this.send(entry, item)) return () => undefined;
    }
    this.entries.add(entry);
    return () => {
      this.entries.delete(entry);
    };
  }

  private offer(entry: Entry<T>, item: T): void {
    let backlog: number;
    try {
      backlog = entry.subscriber.backlog();
    } catch (err) {
      this.fail(entry, err);
      return;
    }
    const max = this.maxBacklog();
    if (entry.skipping) {
      if (!this.isStart(item) || backlog > max / 2) {
        this.dropped++;
        return;
      }
      entry.skipping = false;
    } else if (backlog > max) {
      entry.skipping = true;
      this.dropped++;
      return;
    }
    this.send(entry, item);
  }

  /** Delivers one item; false when the subscriber threw and is gone. */
  private send(entry: Entry<T>, item: T): boolean {
    try {
      entry.subscriber.deliver(item);
      return true;
    } catch (err) {
      this.fail(entry, err);
      return false;
    }
  }

  private fail(entry: Entry<T>, err: unknown): void {
    this.entries.delete(entry);
    this.failures++;
    try {
      entry.subscriber.failed?.(err);
    } catch {
      // The subscriber is already gone, and this runs inside the publisher's push: a
      // failing failure handler has nowhere better to go than away.
    }
  }
}
