/**
 * HLS segmenter: cuts one stream's frames into MPEG-TS segments and keeps a sliding
 * window of them in memory (RFC 8216 §6.2.2: a live playlist lists the most recent ones).
 *
 * Sans-IO and deterministic: frames and tracks in, finished segments out. The adapter
 * feeds it from the stream's MediaBus once per stream, so every segment is muxed once
 * and served as the same Buffer to every player.
 *
 * Cutting rule: a segment ends at a random-access point (a video keyframe; any audio frame
 * in an audio-only stream) once it is at least `targetDuration` long. Each segment starts
 * with PAT/PMT (the TsMuxer writes them before every keyframe) so it decodes on its own.
 */
import { TsMuxer } from '../../../src/media/mpegts/index.js';
import { CLOCK_RATE, type Frame, type Tracks } from '../../../src/media/types.js';

export interface Segment {
  /** Media sequence number (EXT-X-MEDIA-SEQUENCE of the playlist that starts with it). */
  readonly seq: number;
  /** Seconds, from this segment's first DTS to the next segment's first DTS. */
  readonly duration: number;
  readonly data: Buffer;
  /** Preceded by EXT-X-DISCONTINUITY: new codec parameters or a timestamp jump. */
  readonly discontinuity: boolean;
  /** First DTS, 90 kHz. */
  readonly startDts: number;
  /** Whether the segment begins with a video keyframe (false only for audio-only or forced cuts). */
  readonly independent: boolean;
}

export interface SegmenterOptions {
  /** Target segment duration in seconds; default 2. */
  targetDuration?: number;
  /** Segments kept in the window (and listed in the playlist); default 6. */
  windowSize?: number;
  /**
   * First media sequence number; default 0. The adapter seeds it from wall time so numbers
   * keep growing across server restarts and players never see a sequence go backwards.
   */
  firstSequence?: number;
}

/** A DTS gap (either direction) above this many seconds is a new timeline: mark a discontinuity. */
const MAX_DTS_JUMP_S = 10;
/**
 * A source with no keyframe for this many target durations is cut anyway, so memory stays
 * bounded; such a segment starts with fresh tables but may not decode until the next keyframe.
 */
const FORCED_CUT_FACTOR = 5;

interface Open {
  startDts: number;
  chunks: Buffer[];
  discontinuity: boolean;
  independent: boolean;
}

export class HlsSegmenter {
  private target: number;
  private readonly windowSize: number;
  private readonly window: Segment[] = [];
  private nextSeq: number;
  /** EXT-X-DISCONTINUITY-SEQUENCE: discontinuities that have slid out of the window. */
  private discSeq = 0;
  private tracks: Tracks | undefined;
  private muxer: TsMuxer | undefined;
  private open: Open | undefined;
  private lastDts: number | undefined;
  /** The next segment starts a new timeline (new source, new parameters, reset). */
  private pendingDiscontinuity = false;
  /** Set once any segment was produced, so the very first one is not marked discontinuous. */
  private produced = false;

  constructor(options: SegmenterOptions = {}) {
    this.target = options.targetDuration ?? 2;
    this.windowSize = Math.max(1, options.windowSize ?? 6);
    this.nextSeq = options.firstSequence ?? 0;
  }

  get targetDuration(): number {
    return this.target;
  }

  /** Changes the target for segments cut from now on (a backend override of `segment_duration`). */
  setTargetDuration(seconds: number): void {
    if (Number.isFinite(seconds) && seconds > 0) this.target = seconds;
  }

  get segments(): readonly Segment[] {
    return this.window;
  }

  get mediaSequence(): number {
    return this.window[0]?.seq ?? this.nextSeq;
  }

  get discontinuitySequence(): number {
    return this.discSeq;
  }

  get currentTracks(): Tracks | undefined {
    return this.tracks;
  }

  segment(seq: number): Segment | undefined {
    const first = this.window[0];
    if (!first) return undefined;
    return this.window[seq - first.seq];
  }

  /**
   * New or changed tracks. Identical tracks (a publisher reconnecting with the same encoder
   * settings) keep the muxer, so continuity counters and the timeline simply go on.
   */
  setTracks(tracks: Tracks): Segment | undefined {
    if (this.tracks && sameTracks(this.tracks, tracks)) return undefined;
    const closed = this.closeOpen(undefined);
    this.tracks = tracks;
    this.muxer = new TsMuxer(tracks);
    if (this.produced || closed) this.pendingDiscontinuity = true;
    return closed;
  }

  /** Adds a frame; returns the segment it completed, if any. */
  push(frame: Frame): Segment | undefined {
    const tracks = this.tracks;
    if (!tracks || !this.muxer) return undefined;
    if (frame.kind === 'video' ? !tracks.video : !tracks.audio) return undefined;
    const start = frame.kind === 'video' ? frame.keyframe : tracks.video === undefined;
    let closed: Segment | undefined;

    if (this.lastDts !== undefined && Math.abs(frame.dts - this.lastDts) > MAX_DTS_JUMP_S * CLOCK_RATE) {
      // A new timeline: end what we have, and start again at a random-access point.
      closed = this.closeOpen(undefined);
      this.pendingDiscontinuity = true;
    }
    this.lastDts = frame.dts;

    const open = this.open;
    if (open === undefined) {
      if (!start) return closed; // a segment must begin where a decoder can start
      this.begin(frame.dts, true);
    } else {
      const elapsed = (frame.dts - open.startDts) / CLOCK_RATE;
      if (start && elapsed >= this.target) {
        closed = this.closeOpen(frame.dts);
        this.begin(frame.dts, true);
      } else if (elapsed >= this.target * FORCED_CUT_FACTOR) {
        closed = this.closeOpen(frame.dts);
        this.begin(frame.dts, false);
      }
    }
    const bytes = this.muxer.mux(frame);
    const seg = this.open;
    if (seg) {
      // The muxer writes PAT/PMT before keyframes (and every 0.5 s for audio only); a
      // segment that does not begin with them gets its own, so it decodes standalone.
      if (seg.chunks.length === 0 && bytes.length > 0 && !startsWithPat(bytes)) {
        seg.chunks.push(this.muxer.tables());
      }
      seg.chunks.push(bytes);
    }
    return closed;
  }

  /**
   * Closes the segment in progress (the source stopped, or the adapter stops feeding the
   * segmenter) and marks the next one as a discontinuity. Returns the closed segment.
   */
  flush(): Segment | undefined {
    const closed = this.closeOpen(undefined);
    if (this.produced) this.pendingDiscontinuity = true;
    return closed;
  }

  /** Forgets the window (nobody watches any more); sequence numbers keep counting. */
  reset(): void {
    this.open = undefined;
    this.lastDts = undefined;
    for (const s of this.window) if (s.discontinuity) this.discSeq++;
    this.window.length = 0;
    if (this.produced) this.pendingDiscontinuity = true;
  }

  private begin(dts: number, independent: boolean): void {
    this.open = { startDts: dts, chunks: [], discontinuity: this.pendingDiscontinuity, independent };
    this.pendingDiscontinuity = false;
  }

  /** Ends the open segment at `endDts` (or at the last frame seen) and slides the window. */
  private closeOpen(endDts: number | undefined): Segment | undefined {
    const open = this.open;
    this.open = undefined;
    if (!open) return undefined;
    const end = endDts ?? this.lastDts ?? open.startDts;
    const data = Buffer.concat(open.chunks);
    if (data.length === 0) return undefined;
    // A segment closed early (source end) still needs a positive duration to be listed.
    const duration = Math.max(end - open.startDts, 1) / CLOCK_RATE;
    const seg: Segment = {
      seq: this.nextSeq++,
      duration,
      data,
      discontinuity: open.discontinuity,
      startDts: open.startDts,
      independent: open.independent,
    };
    this.window.push(seg);
    this.produced = true;
    while (this.window.length > this.windowSize) {
      const gone = this.window.shift();
      if (gone?.discontinuity) this.discSeq++;
    }
    return seg;
  }
}

/** Whether TS bytes begin with a PAT packet (PID 0). */
function startsWithPat(b: Buffer): boolean {
  return b.length >= 188 && b[0] === 0x47 && ((b[1] ?? 0) & 0x1f) === 0 && b[2] === 0;
}

/** Whether two track sets would produce the same TS program (same codecs and parameters). */
export function sameTracks(a: Tracks, b: Tracks): boolean {
  const v = (x: Tracks): string =>
    x.video
      ? `${x.video.codec}:${x.video.config.toString('hex')}:${x.video.width ?? ''}x${x.video.height ?? ''}`
      : '-';
  const au = (x: Tracks): string =>
    x.audio
      ? `${x.audio.codec}:${x.audio.config.toString('hex')}:${x.audio.sampleRate}:${x.audio.channels}`
      : '-';
  return v(a) === v(b) && au(a) === au(b);
}
