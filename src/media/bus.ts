/**
 * MediaBus: the live media of one stream. One source (a publisher or a pulled input)
 * at a time pushes tracks and frames; listeners (one egress per output format, each muxing
 * for all of that format's viewers) subscribe and receive the tracks, then the cached group
 * of pictures from the last keyframe, then live frames.
 *
 * Each new source's timestamps are rebased to continue where the previous source
 * stopped, so a viewer that stays through a publisher reconnect sees monotonic time.
 *
 * A listener that throws (an egress's muxer tripping over a frame) is dropped and told, never
 * allowed to reach the publisher's push: the publisher and the other formats go on.
 */
import { DEFAULT_LIMITS, type Limits } from '../core/limits.js';
import type { ViewerDropReason } from '../core/reasons.js';
import { FanOut, type FanOutOptions } from './fanout.js';
import { CLOCK_RATE, type Frame, type Tracks } from './types.js';

/** What the bus needs from a per-format egress: how many viewers it serves. */
export interface Viewed {
  readonly viewers: number;
}

export interface MediaListener {
  /** Called with the current tracks on subscribe (if known) and whenever a source changes them. */
  onTracks(tracks: Tracks): void;
  onFrame(frame: Frame): void;
  /** Bytes still queued towards this viewer (socket writableLength); drives slow-viewer skipping. */
  backlog(): number;
  /** This listener threw and the bus let go of it. Must not throw. */
  failed?(err: unknown): void;
}

/** Something the stream's owner should log: a viewer or a whole output format was dropped. */
export interface Drop {
  /** `egress_fault`: an output format failed and let go of the bus (its viewers go with it). */
  reason: ViewerDropReason | 'egress_fault';
  err?: unknown;
  /** The viewer's send queue in bytes when it was dropped for stalling. */
  backlog?: number;
}

export interface MediaBusOptions extends FanOutOptions {
  /** Bounds the egresses put on their viewers; read when needed, so a reload applies to running streams. */
  limits?: () => Limits;
  onDrop?: (drop: Drop) => void;
}

/** Gap inserted between the last frame of one source and the first of the next (1/30 s). */
const SOURCE_GAP = 3000;

export class MediaBus {
  private current: Tracks | undefined;
  private readonly frames: FanOut<Frame>;
  /** Each listener with the function that takes it off the frame fan-out. */
  private readonly listeners = new Map<MediaListener, () => void>();
  private readonly egresses = new Map<string, Viewed>();
  private offset: number | undefined;
  private lastDts: number | undefined;
  /** Frames pushed since the bus was created. */
  framesIn = 0;
  /**
   * Sources started since the bus was created; a listener that sees it change in `onTracks`
   * knows a new encoding sequence begins (HLS marks it with a discontinuity).
   */
  sourcesStarted = 0;
  /** Payload bytes pushed since the bus was created (for `/metrics` and the admin page's bitrate). */
  bytesIn = 0;
  /**
   * The longest gap between two video keyframes of the current source, in seconds (undefined
   * before two): the publisher's keyframe interval as `/metrics`, the API and the long-GOP
   * warning report it.
   */
  keyframeIntervalS: number | undefined;
  private lastKeyframeDts: number | undefined;

  /** The limits in force, for the egresses on this bus. */
  readonly limits: () => Limits;
  private readonly onDrop: ((drop: Drop) => void) | undefined;

  constructor(options: MediaBusOptions = {}) {
    this.frames = new FanOut<Frame>(
      (f) => (f.kind === 'video' ? f.keyframe : this.current?.video === undefined),
      options,
    );
    this.limits = options.limits ?? (() => DEFAULT_LIMITS);
    this.onDrop = options.onDrop;
  }

  /** Tells the stream's owner about a drop (for its log); never throws into the caller. */
  reportDrop(drop: Drop): void {
    try {
      this.onDrop?.(drop);
    } catch {
      // Reporting runs inside the publisher's push; a failing logger must not stop the media.
    }
  }

  get tracks(): Tracks | undefined {
    return this.current;
  }

  /**
   * People watching this stream: the sum over its egresses. A listener is an egress serving
   * any number of viewers (or none, while an HLS egress keeps its window warm), so the
   * listener count says nothing about viewers.
   */
  get viewers(): number {
    let n = 0;
    for (const e of this.egresses.values()) n += e.viewers;
    return n;
  }

  /** Egresses currently listening: each should let go when its last viewer leaves. */
  get listenerCount(): number {
    return this.listeners.size;
  }

  /** A new source begins: old cached frames are dropped and its timestamps will be rebased. */
  startSource(tracks: Tracks): void {
    this.frames.reset();
    this.offset = undefined;
    this.sourcesStarted++;
    this.keyframeIntervalS = undefined;
    this.lastKeyframeDts = undefined;
    this.setTracks(tracks);
  }

  /** The same source changed its codec configuration (for example a new SPS). */
  setTracks(tracks: Tracks): void {
    this.current = tracks;
    for (const l of this.listeners.keys()) {
      try {
        l.onTracks(tracks);
      } catch (err) {
        this.drop(l, err);
      }
    }
  }

  push(frame: Frame): void {
    if (this.offset === undefined) {
      this.offset = this.lastDts === undefined ? 0 : this.lastDts + SOURCE_GAP - frame.dts;
    }
    const rebased: Frame =
      this.offset === 0 ? frame : { ...frame, dts: frame.dts + this.offset, pts: frame.pts + this.offset };
    if (this.lastDts === undefined || rebased.dts > this.lastDts) this.lastDts = rebased.dts;
    this.framesIn++;
    this.bytesIn += frame.data.length;
    if (rebased.kind === 'video' && rebased.keyframe) {
      if (this.lastKeyframeDts !== undefined) {
        const gap = (rebased.dts - this.lastKeyframeDts) / CLOCK_RATE;
        this.keyframeIntervalS = Math.max(this.keyframeIntervalS ?? 0, gap);
      }
      this.lastKeyframeDts = rebased.dts;
    }
    this.frames.publish(rebased);
  }

  /** The source stopped; viewers stay subscribed and wait for the next source. */
  endSource(): void {
    this.frames.reset();
  }

  /** Adds a listener (tracks, cached GOP, then live frames); one that throws meanwhile is dropped and told. */
  subscribe(listener: MediaListener): () => void {
    const unsubscribe = (): void => {
      this.listeners.get(listener)?.();
      this.listeners.delete(listener);
    };
    if (this.current) {
      try {
        listener.onTracks(this.current);
      } catch (err) {
        this.fail(listener, err);
        return unsubscribe;
      }
    }
    let failed = false;
    const off = this.frames.subscribe({
      deliver: (f) => listener.onFrame(f),
      backlog: () => listener.backlog(),
      failed: (err) => {
        failed = true;
        this.listeners.delete(listener);
        this.fail(listener, err);
      },
    });
    if (!failed) this.listeners.set(listener, off);
    return unsubscribe;
  }

  private drop(listener: MediaListener, err: unknown): void {
    const off = this.listeners.get(listener);
    if (off === undefined) return;
    this.listeners.delete(listener);
    off();
    this.fail(listener, err);
  }

  private fail(listener: MediaListener, err: unknown): void {
    this.reportDrop({ reason: 'egress_fault', err });
    try {
      listener.failed?.(err);
    } catch {
      // Already dropped; see FanOut.fail.
    }
  }

  /**
   * The per-format egress of this stream (pre-muxed RTMP messages, TS packets, HLS
   * segments), created on first use so that each format is muxed once per stream.
   */
  egress<T extends Viewed>(key: string, create: (bus: MediaBus) => T): T {
    let e = this.egresses.get(key) as T | undefined;
    if (e === undefined) {
      e = create(this);
      this.egresses.set(key, e);
    }
    return e;
  }

  get droppedForSlowViewers(): number {
    return this.frames.dropped;
  }

  /** Frames each output format skipped for its slow viewers, by egress key (`rtmp`, `hls`, …). */
  droppedByEgress(): [string, number][] {
    const out: [string, number][] = [];
    for (const [key, e] of this.egresses) {
      const dropped = (e as { droppedForSlowViewers?: unknown }).droppedForSlowViewers;
      if (typeof dropped === 'number') out.push([key, dropped]);
    }
    return out;
  }
}

/** HLS segment duration when a stream sets none (`segment_duration`, StreamConfig). */
export const DEFAULT_SEGMENT_S = 2;
/** Keyframes further apart than this many segment durations make segments (and joins) that slow. */
const LONG_GOP_FACTOR = 2;

/**
 * The warning for a publisher whose keyframes come much further apart than an HLS segment should
 * last, naming the setting to change in OBS (whose Simple output mode sends one every 250 frames
 * to a custom server); undefined when the interval is fine or not known yet.
 */
export function longGopWarning(
  keyframeIntervalS: number | undefined,
  segmentS = DEFAULT_SEGMENT_S,
): string | undefined {
  if (keyframeIntervalS === undefined || keyframeIntervalS <= segmentS * LONG_GOP_FACTOR) return undefined;
  return (
    `keyframe interval ${keyframeIntervalS.toFixed(1)} s is much longer than the ${segmentS} s HLS segment: ` +
    `segments and playback start are that slow; set the encoder's keyframe interval ` +
    `(OBS: Settings → Output → Output Mode "Advanced" → Keyframe Interval) to ${segmentS} s`
  );
}
