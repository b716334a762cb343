/**
 * HLS segmenter: cuts one stream's frames into segments and keeps a sliding window of them
 * in memory (RFC 8216 §6.2.2: a live playlist lists the most recent ones).
 *
 * Sans-IO and deterministic: frames, tracks and a wall clock in, finished segments out. The
 * adapter feeds it from the stream's MediaBus once per stream, so every segment is muxed
 * once and served as the same Buffer to every player. Each segment is MPEG-TS; once a
 * player asks for fMP4 (`enableFmp4`), segments are also muxed as CMAF fragments.
 *
 * Cutting rule: a segment ends at a random-access point (a video keyframe; any audio frame
 * in an audio-only stream) once it is at least the configured `segment_duration` long. Each
 * TS segment starts with PAT/PMT (the TsMuxer writes them before every keyframe).
 *
 * Target duration (RFC 8216 §4.3.3.1, §6.2.1: EXT-X-TARGETDURATION is the longest segment
 * duration, EXTINF rounded to the nearest integer, and MUST NOT change in a playlist's
 * life). The longest segment the cutting rule produces depends on the publisher's keyframe
 * interval, which is only known once two keyframes were seen, that is, when the first
 * segment is cut. So the target is fixed then, from the first segment (its duration is the
 * configured duration rounded up to whole GOPs) and the configured duration, and it stays
 * for the life of the window. Players are not given a playlist before that (the adapter holds
 * early requests until the first segment). If a longer GOP shows up later (an encoder
 * setting changed, a publisher reconnected with other settings), a discontinuity would not
 * help: the target may not change across one either. Instead the segment is cut before it
 * would round above the target, at a frame that is not a keyframe. That is allowed (RFC 8216
 * §3: only EXT-X-INDEPENDENT-SEGMENTS, which we do not declare, promises that every segment
 * starts with a keyframe); such a segment is marked `independent: false`, plays on
 * seamlessly after its predecessor, and a player that joins on it decodes from the next
 * keyframe. The target is recomputed only when the window is forgotten (`reset`: nobody
 * watched, so no player holds the old playlist).
 */
import { initSegment, mediaSegment } from '../../../src/media/fmp4.js';
import { TsMuxer } from '../../../src/media/mpegts/index.js';
import { CLOCK_RATE, type Frame, type Tracks } from '../../../src/media/types.js';

export interface Segment {
  /** Media sequence number (EXT-X-MEDIA-SEQUENCE of the playlist that starts with it). */
  readonly seq: number;
  /** Seconds, from this segment's first DTS to the next segment's first DTS. */
  readonly duration: number;
  /** The MPEG-TS segment. */
  readonly data: Buffer;
  /** The fMP4 media segment (moof + mdat), when fMP4 output was on for the whole segment. */
  readonly fmp4: Buffer | undefined;
  /** The generation of tracks it was muxed with: its fMP4 init segment (EXT-X-MAP). */
  readonly initId: number;
  /** Preceded by EXT-X-DISCONTINUITY: new codec parameters, a new publisher or a timestamp jump. */
  readonly discontinuity: boolean;
  /** First DTS, 90 kHz. */
  readonly startDts: number;
  /** Wall-clock time of its first frame, ms since the epoch (EXT-X-PROGRAM-DATE-TIME). */
  readonly programDateTime: number;
  /** Whether the segment begins with a video keyframe (false only for forced cuts). */
  readonly independent: boolean;
}

export interface SegmenterOptions {
  /** Configured segment duration (`segment_duration`) in seconds; default 2. */
  targetDuration?: number;
  /** Segments kept in the window (and listed in the playlist); default 6. */
  windowSize?: number;
  /**
   * First media sequence number; default 0. The adapter seeds it from wall time so numbers
   * keep growing across server restarts and players never see a sequence go backwards.
   */
  firstSequence?: number;
  /** Wall clock in ms for EXT-X-PROGRAM-DATE-TIME; default a clock stuck at 0. */
  wallClock?: () => number;
  /**
   * Called with every segment the moment it is cut (bytes, duration, wall-clock start):
   * the hook for recorders (DVR) and for releasing requests that wait for a segment.
   */
  onSegment?: (segment: Segment) => void;
}

/** A DTS gap (either direction) above this many seconds is a new timeline: mark a discontinuity. */
const MAX_DTS_JUMP_S = 10;
/**
 * Before the target is fixed, a source with no second keyframe within this many seconds is
 * cut anyway, so memory stays bounded and players are not kept waiting for ever; above
 * x264's default (250 frames, 10.4 s at 24 fps) and the GOP of most cameras.
 */
const FIRST_SEGMENT_MAX_S = 30;
/** EXTINF is rounded to the nearest integer before it is compared with the target (§4.3.3.1). */
const ROUNDING = 0.5;
/** A first segment this much over a whole second (millisecond timestamps, a late keyframe) does not raise the target. */
const TARGET_JITTER_S = 0.1;

interface Open {
  startDts: number;
  programDateTime: number;
  chunks: Buffer[];
  /** Frames for the fMP4 fragment; undefined when fMP4 was off when the segment began. */
  frames: Frame[] | undefined;
  discontinuity: boolean;
  independent: boolean;
}

export class HlsSegmenter {
  private configured: number;
  /** EXT-X-TARGETDURATION of the current playlist; undefined until its first segment. */
  private target: number | undefined;
  private readonly windowSize: number;
  private readonly window: Segment[] = [];
  private nextSeq: number;
  /** EXT-X-DISCONTINUITY-SEQUENCE: discontinuities that have slid out of the window. */
  private discSeq = 0;
  private tracks: Tracks | undefined;
  private muxer: TsMuxer | undefined;
  private open: Open | undefined;
  private lastDts: number | undefined;
  /** Last DTS step per kind, to tell whether the next frame would overshoot the target. */
  private readonly lastOf: { video: number | undefined; audio: number | undefined } = {
    video: undefined,
    audio: undefined,
  };
  private readonly stepOf = { video: 0, audio: 0 };
  private lastKeyframeDts: number | undefined;
  private longestGop = 0;
  /** The next segment starts a new timeline (new source, new parameters, reset). */
  private pendingDiscontinuity = false;
  /** Set once any segment was produced, so the very first one is not marked discontinuous. */
  private produced = false;
  /** Wall clock ↔ DTS anchor for PROGRAM-DATE-TIME, set at the start of each timeline. */
  private anchor: { dts: number; wall: number } | undefined;
  private fmp4 = false;
  private initGeneration = 0;
  /** Tracks (and, once built, the init segment) of every generation the window refers to. */
  private readonly inits = new Map<number, { tracks: Tracks; bytes: Buffer | undefined }>();
  private readonly wallClock: () => number;
  private readonly onSegment: ((segment: Segment) => void) | undefined;

  constructor(options: SegmenterOptions = {}) {
    this.configured = options.targetDuration ?? 2;
    this.windowSize = Math.max(1, options.windowSize ?? 6);
    this.nextSeq = options.firstSequence ?? 0;
    this.wallClock = options.wallClock ?? (() => 0);
    this.onSegment = options.onSegment;
  }

  /** EXT-X-TARGETDURATION for the current playlist: fixed at its first segment, undefined before. */
  get targetDuration(): number | undefined {
    return this.target;
  }

  /** The configured segment duration the cutting rule aims for. */
  get segmentDuration(): number {
    return this.configured;
  }

  /** The longest interval between two keyframes seen so far, in seconds (0 before two). */
  get keyframeInterval(): number {
    return this.longestGop;
  }

  /**
   * Changes the configured duration for segments cut from now on (a backend override of
   * `segment_duration`). The playlist's target stays: forced cuts keep segments within it.
   */
  setTargetDuration(seconds: number): void {
    if (Number.isFinite(seconds) && seconds > 0) this.configured = seconds;
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

  /** The generation of the current tracks: the id of the init segment new fMP4 segments need. */
  get initId(): number {
    return this.initGeneration;
  }

  get fmp4Enabled(): boolean {
    return this.fmp4;
  }

  /** Also mux fMP4 fragments, from the next segment on (a player asked for them). */
  enableFmp4(): void {
    this.fmp4 = true;
  }

  /** The fMP4 init segment (ftyp + moov) of tracks generation `id`, while the window needs it. */
  initSegment(id: number): Buffer | undefined {
    const init = this.inits.get(id);
    if (!init) return undefined;
    init.bytes ??= initSegment(init.tracks);
    return init.bytes;
  }

  segment(seq: number): Segment | undefined {
    const first = this.window[0];
    if (!first) return undefined;
    return this.window[seq - first.seq];
  }

  /**
   * New or changed tracks. `newSource` says a publisher (re)started: a new encoding sequence,
   * which RFC 8216 §4.3.2.3 marks with a discontinuity even when its parameters are the same.
   * Identical tracks from the same source keep the muxer, the timeline and the segment.
   */
  setTracks(tracks: Tracks, newSource = false): Segment | undefined {
    const same = this.tracks !== undefined && sameTracks(this.tracks, tracks);
    if (same && !newSource) return undefined;
    const closed = this.closeOpen(undefined);
    if (!same) {
      this.tracks = tracks;
      this.muxer = new TsMuxer(tracks);
      this.initGeneration++;
      this.inits.set(this.initGeneration, { tracks, bytes: undefined });
    }
    if (this.produced || closed) this.pendingDiscontinuity = true;
    this.lastKeyframeDts = undefined;
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
      this.lastOf.video = this.lastOf.audio = this.lastKeyframeDts = undefined;
    }
    this.lastDts = frame.dts;
    const prev = this.lastOf[frame.kind];
    if (prev !== undefined && frame.dts > prev) this.stepOf[frame.kind] = (frame.dts - prev) / CLOCK_RATE;
    this.lastOf[frame.kind] = frame.dts;
    if (frame.kind === 'video' && frame.keyframe) {
      if (this.lastKeyframeDts !== undefined) {
        this.longestGop = Math.max(this.longestGop, (frame.dts - this.lastKeyframeDts) / CLOCK_RATE);
      }
      this.lastKeyframeDts = frame.dts;
    }

    const open = this.open;
    if (open === undefined) {
      if (!start) return closed; // a segment must begin where a decoder can start
      this.begin(frame.dts, true);
    } else {
      const elapsed = (frame.dts - open.startDts) / CLOCK_RATE;
      // After a forced cut the next keyframe starts a segment at once, however short the
      // forced one is, so segments begin with keyframes again as soon as the source allows.
      if (start && (elapsed >= this.configured || (!open.independent && elapsed > 0))) {
        closed = this.closeOpen(frame.dts);
        this.begin(frame.dts, true);
      } else if (this.mustForceCut(elapsed, frame.kind)) {
        closed = this.closeOpen(frame.dts);
        this.begin(frame.dts, start);
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
      seg.frames?.push(frame);
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
    this.lastOf.video = this.lastOf.audio = this.lastKeyframeDts = undefined;
    for (const s of this.window) if (s.discontinuity) this.discSeq++;
    this.window.length = 0;
    if (this.produced) this.pendingDiscontinuity = true;
    // A new playlist: nobody holds the old one, so its target may be chosen afresh.
    this.target = undefined;
    this.anchor = undefined;
  }

  /**
   * Whether the open segment must end before this frame so its EXTINF, rounded, stays within
   * the target: true when the frame after this one would already be too late.
   */
  private mustForceCut(elapsed: number, kind: 'video' | 'audio'): boolean {
    if (this.target === undefined) return elapsed >= FIRST_SEGMENT_MAX_S;
    return elapsed + this.stepOf[kind] >= this.target + ROUNDING;
  }

  private begin(dts: number, independent: boolean): void {
    if (this.pendingDiscontinuity || this.anchor === undefined) this.anchor = { dts, wall: this.wallClock() };
    this.open = {
      startDts: dts,
      programDateTime: this.anchor.wall + Math.round(((dts - this.anchor.dts) * 1000) / CLOCK_RATE),
      chunks: [],
      frames: this.fmp4 ? [] : undefined,
      discontinuity: this.pendingDiscontinuity,
      independent,
    };
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
    const seq = this.nextSeq++;
    const seg: Segment = {
      seq,
      duration,
      data,
      fmp4:
        open.frames && open.frames.length > 0 && this.tracks
          ? mediaSegment(this.tracks, open.frames, seq, Math.max(end, open.startDts + 1))
          : undefined,
      initId: this.initGeneration,
      discontinuity: open.discontinuity,
      startDts: open.startDts,
      programDateTime: open.programDateTime,
      independent: open.independent,
    };
    // The first segment of a playlist fixes its target: the configured duration rounded up
    // to the publisher's GOPs, as this segment shows it (see the header), rounded up to whole
    // seconds but forgiving timestamp jitter that the EXTINF rounding rule absorbs anyway.
    this.target ??= Math.max(1, Math.ceil(Math.max(duration, this.configured) - TARGET_JITTER_S));
    this.window.push(seg);
    this.produced = true;
    while (this.window.length > this.windowSize) {
      const gone = this.window.shift();
      if (gone?.discontinuity) this.discSeq++;
    }
    const oldest = this.window[0]?.initId ?? this.initGeneration;
    for (const id of this.inits.keys()) if (id < oldest) this.inits.delete(id);
    this.onSegment?.(seg);
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
