/**
 * HlsEgress: one stream's HLS state — a segmenter fed from the stream's MediaBus, so each
 * segment is muxed once per stream however many players fetch it (ARCHITECTURE fan-out).
 *
 * HLS players are stateless HTTP clients, so the egress feeds its segmenter only while
 * requests keep coming: after `idleMs` without one it unsubscribes from the bus (letting an
 * unwatched template stream be removed) and forgets its window; sequence numbers go on.
 */
import type { Clock, TimerHandle } from '../../src/clock.js';
import type { MediaBus } from '../../src/media/bus.js';
import { HlsSegmenter, type Segment } from './wire/segmenter.js';

export interface HlsEgressOptions {
  targetDuration: number;
  windowSize: number;
  /** No request for this long stops segmenting; default 120 s (twice the HLS session timeout). */
  idleMs?: number;
  clock: Clock;
}

export class HlsEgress {
  readonly segmenter: HlsSegmenter;
  private unsubscribe: (() => void) | undefined;
  private lastRequest = 0;
  private idleTimer: TimerHandle | undefined;
  private readonly waiters = new Set<() => void>();
  private readonly idleMs: number;
  private closed = false;

  constructor(
    private readonly bus: MediaBus,
    private readonly options: HlsEgressOptions,
  ) {
    this.idleMs = options.idleMs ?? 120_000;
    // Seeded from wall time: sequence numbers keep growing across restarts (≤ 1 segment/s in practice).
    this.segmenter = new HlsSegmenter({
      targetDuration: options.targetDuration,
      windowSize: options.windowSize,
      firstSequence: Math.floor(options.clock.now() / 1000),
    });
  }

  /** A player request arrived: make sure the segmenter is fed and postpone the idle stop. */
  touch(): void {
    if (this.closed) return;
    this.lastRequest = this.options.clock.now();
    if (this.unsubscribe) return;
    this.unsubscribe = this.bus.subscribe({
      onTracks: (t) => this.published(this.segmenter.setTracks(t)),
      onFrame: (f) => this.published(this.segmenter.push(f)),
      backlog: () => 0,
    });
    this.armIdle(this.idleMs);
  }

  segment(seq: number): Segment | undefined {
    return this.segmenter.segment(seq);
  }

  /** Resolves true once the window holds a segment, false after `ms` without one. */
  waitForSegment(ms: number): Promise<boolean> {
    if (this.segmenter.segments.length > 0) return Promise.resolve(true);
    return new Promise((resolve) => {
      const done = (): void => {
        this.options.clock.clearTimeout(timer);
        this.waiters.delete(done);
        resolve(this.segmenter.segments.length > 0);
      };
      const timer = this.options.clock.setTimeout(done, ms);
      this.waiters.add(done);
    });
  }

  /** Stops feeding and wakes every waiting request (server shutdown). */
  close(): void {
    this.closed = true;
    this.stopFeeding();
    for (const w of [...this.waiters]) w();
  }

  private published(seg: Segment | undefined): void {
    if (seg === undefined) return;
    for (const w of [...this.waiters]) w();
  }

  private armIdle(ms: number): void {
    if (this.idleTimer) this.options.clock.clearTimeout(this.idleTimer);
    this.idleTimer = this.options.clock.setTimeout(() => {
      this.idleTimer = undefined;
      const idle = this.options.clock.now() - this.lastRequest;
      if (idle >= this.idleMs) this.stopFeeding();
      else this.armIdle(this.idleMs - idle);
    }, ms);
  }

  private stopFeeding(): void {
    if (this.idleTimer) this.options.clock.clearTimeout(this.idleTimer);
    this.idleTimer = undefined;
    this.unsubscribe?.();
    this.unsubscribe = undefined;
    this.segmenter.reset();
  }
}
