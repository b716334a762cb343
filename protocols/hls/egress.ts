/**
 * HlsEgress: one stream's HLS state — a segmenter fed from the stream's MediaBus, so each
 * segment is muxed once per stream however many players fetch it (ARCHITECTURE fan-out).
 *
 * It has the lifetime of every egress (src/media/egress.ts), but players pull instead of
 * holding a connection, so a viewer is a session, not a socket: each HLS session that
 * requests the stream holds the egress until `idleMs` has passed since its last request.
 * The window must outlive a player's polling gaps and reconnects (a kicked player that comes
 * straight back as a new session finds its window where it left it), so a session's hold
 * also outlives the session itself by the rest of that stretch; only open sessions count as
 * viewers. When the last hold lapses the egress stops listening to the bus (letting an
 * unwatched template stream be removed) and forgets its window; sequence numbers go on.
 */
import type { Clock, TimerHandle } from '../../src/clock.js';
import type { MediaBus } from '../../src/media/bus.js';
import { BusEgress } from '../../src/media/egress.js';
import type { Frame, Tracks } from '../../src/media/types.js';
import type { Container } from './wire/playlist.js';
import { HlsSegmenter, type Segment } from './wire/segmenter.js';

export interface HlsEgressOptions {
  targetDuration: number;
  windowSize: number;
  /** A session's hold on the egress lasts this long after its last request; default 120 s (twice the HLS session timeout). */
  idleMs?: number;
  clock: Clock;
  /** The last hold lapsed and the egress let go of the bus. */
  onIdle?: (egress: HlsEgress) => void;
  /** Mux fMP4 fragments from the start (the stream's `hls_container fmp4;`). */
  fmp4?: boolean;
}

/** The part of a session the egress needs: who it is, and whether it still counts. */
export interface HlsViewer {
  readonly id: string;
  readonly closed: boolean;
}

interface Hold {
  viewer: HlsViewer;
  lastRequest: number;
  release: () => void;
}

export class HlsEgress extends BusEgress {
  readonly segmenter: HlsSegmenter;
  private readonly sessions = new Map<string, Hold>();
  private expiryTimer: TimerHandle | undefined;
  private readonly waiters = new Set<() => void>();
  private readonly segmentListeners = new Set<(segment: Segment) => void>();
  /** The bus's source count when tracks last arrived: a change is a new encoding sequence. */
  private sourcesSeen = -1;
  private readonly idleMs: number;
  private closed = false;

  constructor(
    bus: MediaBus,
    private readonly options: HlsEgressOptions,
  ) {
    super(bus);
    this.idleMs = options.idleMs ?? 120_000;
    // Seeded from wall time: sequence numbers keep growing across restarts (≤ 1 segment/s in practice).
    this.segmenter = new HlsSegmenter({
      targetDuration: options.targetDuration,
      windowSize: options.windowSize,
      firstSequence: Math.floor(options.clock.now() / 1000),
      wallClock: () => options.clock.now(),
      onSegment: (seg) => this.published(seg),
    });
    if (options.fmp4) this.segmenter.enableFmp4();
  }

  /**
   * Calls `listener` with every segment the moment it is cut (bytes, duration, wall-clock
   * start in `programDateTime`): the hook for recorders. Returns the unsubscribe.
   */
  onSegment(listener: (segment: Segment) => void): () => void {
    this.segmentListeners.add(listener);
    return () => this.segmentListeners.delete(listener);
  }

  override get viewers(): number {
    let n = 0;
    for (const h of this.sessions.values()) if (!h.viewer.closed) n++;
    return n;
  }

  /** A request of this session arrived: make sure the segmenter is fed and renew the session's hold. */
  touch(viewer: HlsViewer): void {
    if (this.closed) return;
    const now = this.options.clock.now();
    const held = this.sessions.get(viewer.id);
    if (held) {
      held.viewer = viewer;
      held.lastRequest = now;
    } else {
      this.sessions.set(viewer.id, { viewer, lastRequest: now, release: this.hold() });
    }
    if (!this.expiryTimer) this.armExpiry(this.idleMs);
  }

  segment(seq: number): Segment | undefined {
    return this.segmenter.segment(seq);
  }

  /** Whether a playlist of this container has a segment to list. */
  hasSegment(container: Container = 'ts'): boolean {
    const segs = this.segmenter.segments;
    if (container === 'ts') return segs.length > 0;
    return segs.length > 0 && segs[segs.length - 1]?.fmp4 !== undefined;
  }

  /** Requests waiting in `waitForSegment` right now. */
  get waiting(): number {
    return this.waiters.size;
  }

  /**
   * Resolves true the moment the window holds a segment of this container (released by the
   * cut itself), false after `ms` without one or when the egress closes.
   */
  waitForSegment(ms: number, container: Container = 'ts'): Promise<boolean> {
    if (container === 'fmp4') this.segmenter.enableFmp4();
    if (this.hasSegment(container)) return Promise.resolve(true);
    return new Promise((resolve) => {
      const done = (): void => {
        if (!this.closed && !this.hasSegment(container) && !fired) return;
        this.options.clock.clearTimeout(timer);
        this.waiters.delete(done);
        resolve(this.hasSegment(container));
      };
      let fired = false;
      const timer = this.options.clock.setTimeout(() => {
        fired = true;
        done();
      }, ms);
      this.waiters.add(done);
    });
  }

  /** Releases every hold and wakes every waiting request (server shutdown). */
  close(): void {
    this.closed = true;
    if (this.expiryTimer) this.options.clock.clearTimeout(this.expiryTimer);
    this.expiryTimer = undefined;
    const holds = [...this.sessions.values()];
    this.sessions.clear();
    for (const h of holds) h.release();
    for (const w of [...this.waiters]) w();
  }

  protected onTracks(tracks: Tracks): void {
    const sources = this.bus.sourcesStarted;
    const newSource = this.sourcesSeen !== -1 && sources !== this.sourcesSeen;
    this.sourcesSeen = sources;
    this.segmenter.setTracks(tracks, newSource);
  }

  protected onFrame(frame: Frame): void {
    this.segmenter.push(frame);
  }

  protected idle(): void {
    this.segmenter.reset();
    this.sourcesSeen = -1;
    this.options.onIdle?.(this);
  }

  private published(seg: Segment): void {
    for (const w of [...this.waiters]) w();
    for (const l of [...this.segmentListeners]) {
      try {
        l(seg);
      } catch {
        // A recorder's failure is its own; the live window and its players go on.
      }
    }
  }

  /** One timer for all holds: it fires at the earliest lapse and re-arms for the next. */
  private armExpiry(ms: number): void {
    this.expiryTimer = this.options.clock.setTimeout(() => {
      this.expiryTimer = undefined;
      const now = this.options.clock.now();
      let next = Infinity;
      for (const [id, h] of this.sessions) {
        const left = h.lastRequest + this.idleMs - now;
        if (left > 0) {
          next = Math.min(next, left);
          continue;
        }
        this.sessions.delete(id);
        h.release();
      }
      if (next !== Infinity) this.armExpiry(next);
    }, ms);
  }
}
