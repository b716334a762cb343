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
 *
 * The push egress is also the edge where one viewer's trouble ends: a viewer whose `deliver`
 * throws, or whose send queue stays over `viewer_send_queue_bytes` for `viewer_stall_timeout`
 * (a player that stopped reading), is dropped — unsubscribed, reported to the stream's log,
 * counted, and asked to `close` — while the publisher and the other viewers go on.
 */
import { countLimitHit, limitMs } from '../core/limits.js';
import type { ViewerDropReason } from '../core/reasons.js';
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
      failed: () => {
        // The bus has let go and logged why; the next hold listens afresh.
        this.unsubscribeBus = undefined;
        this.faulted();
      },
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
   * This output threw on a frame or tracks and no longer listens to the bus. What it derived
   * is suspect, so it is dropped as on idle; a push egress also drops its viewers.
   */
  protected faulted(): void {
    this.idle();
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

/** A connected viewer as an adapter subscribes it. */
export interface EgressViewer<T> extends FanOutSubscriber<T> {
  /**
   * The egress dropped this viewer (it threw, or stopped reading) and sends it nothing more:
   * end its connection and close its session with `reason`. Without it the viewer merely
   * stops receiving. Called at most once, never after the viewer unsubscribed.
   */
  close?(reason: ViewerDropReason): void;
}

interface Subscription<T> {
  readonly viewer: EgressViewer<T>;
  gone: boolean;
  unsubscribe: (() => void) | undefined;
  release: (() => void) | undefined;
  /** Armed while the send queue is over the cap; fires the stall check. */
  stall: ReturnType<typeof setTimeout> | undefined;
}

export abstract class Egress<T extends EgressItem> extends BusEgress {
  protected readonly fanout: FanOut<T>;
  private readonly subscriptions = new Set<Subscription<T>>();
  private preambleItem: T | undefined;
  /** The send-queue cap (viewer_send_queue_bytes unless the constructor was given one). */
  private readonly maxBacklog: () => number;

  constructor(bus: MediaBus, options: FanOutOptions = {}) {
    super(bus);
    const fixed = options.maxBacklog;
    this.maxBacklog =
      fixed === undefined
        ? () => bus.limits().viewer_send_queue_bytes
        : typeof fixed === 'function'
          ? fixed
          : () => fixed;
    this.fanout = new FanOut<T>((i) => i.start, { ...options, maxBacklog: this.maxBacklog });
  }

  get droppedForSlowViewers(): number {
    return this.fanout.dropped;
  }

  subscribe(viewer: EgressViewer<T>): () => void {
    const sub: Subscription<T> = {
      viewer,
      gone: false,
      unsubscribe: undefined,
      release: undefined,
      stall: undefined,
    };
    this.subscriptions.add(sub);
    if (this.preambleItem) this.send(sub, this.preambleItem);
    if (sub.gone) return () => undefined;
    let started = false;
    sub.unsubscribe = this.fanout.subscribe({
      deliver: (item) => {
        if (!started && !item.start) return;
        started = true;
        viewer.deliver(item);
      },
      backlog: () => this.watch(sub, viewer.backlog()),
      failed: (err) => this.drop(sub, 'viewer_fault', { err }),
    });
    if (sub.gone) return () => undefined;
    // The bus replays its GOP into this egress inside hold(): the viewer may fail right there.
    sub.release = this.hold();
    if (sub.gone) {
      this.remove(sub);
      return () => undefined;
    }
    return () => this.remove(sub);
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
    for (const sub of this.subscriptions) this.send(sub, item);
  }

  protected idle(): void {
    this.fanout.reset();
    this.preambleItem = undefined;
  }

  protected override faulted(): void {
    super.faulted();
    // The bus has reported the one failure; a line per viewer would only repeat it.
    for (const sub of this.subscriptions) this.drop(sub, 'viewer_fault', { report: false });
  }

  private send(sub: Subscription<T>, item: T): void {
    try {
      sub.viewer.deliver(item);
    } catch (err) {
      this.drop(sub, 'viewer_fault', { err });
    }
  }

  /**
   * Passes the viewer's send queue on to the FanOut, watching it on the way: over the cap,
   * the viewer is skipping frames (counted once per episode) and a timer is armed; if the
   * queue is still over the cap when it fires, the player has stopped reading.
   */
  private watch(sub: Subscription<T>, backlog: number): number {
    const cap = this.maxBacklog();
    if (backlog <= cap) {
      if (sub.stall !== undefined) clearTimeout(sub.stall);
      sub.stall = undefined;
      return backlog;
    }
    if (sub.stall === undefined && !sub.gone) {
      countLimitHit('viewer_send_queue_bytes');
      sub.stall = setTimeout(
        () => {
          sub.stall = undefined;
          let now: number;
          try {
            now = sub.viewer.backlog();
          } catch (err) {
            this.drop(sub, 'viewer_fault', { err });
            return;
          }
          if (now > this.maxBacklog()) {
            countLimitHit('viewer_stall_timeout');
            this.drop(sub, 'viewer_stalled', { backlog: now });
          }
        },
        limitMs(this.bus.limits(), 'viewer_stall_timeout'),
      );
      sub.stall.unref?.();
    }
    return backlog;
  }

  private remove(sub: Subscription<T>): void {
    this.subscriptions.delete(sub);
    if (sub.stall !== undefined) clearTimeout(sub.stall);
    sub.stall = undefined;
    sub.unsubscribe?.();
    sub.release?.();
    sub.gone = true;
  }

  /** Drops one viewer: off the fan-out and the bus, into the log, then its own close. */
  private drop(
    sub: Subscription<T>,
    reason: ViewerDropReason,
    detail: { err?: unknown; backlog?: number; report?: boolean } = {},
  ): void {
    if (sub.gone) return;
    sub.gone = true;
    this.remove(sub);
    const { report = true, err, backlog } = detail;
    if (report) {
      this.bus.reportDrop({
        reason,
        ...(err !== undefined ? { err } : {}),
        ...(backlog !== undefined ? { backlog } : {}),
      });
    }
    try {
      sub.viewer.close?.(reason);
    } catch (closeErr) {
      this.bus.reportDrop({ reason: 'viewer_fault', err: closeErr });
    }
  }
}
