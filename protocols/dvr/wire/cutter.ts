/**
 * The DVR's segment cutter: frames in, self-contained MPEG-TS segments with wall-clock times
 * out. Sans-IO: the recorder gives it the time a frame arrived and writes what it returns.
 *
 * Unlike the HLS window it keeps nothing once a segment is handed out, and it stamps every
 * segment with a wall-clock start: the archive is addressed in Unix time (AUTH-SPEC §1's
 * FROM/DURATION). The clock is anchored when a timeline starts and then advanced by the
 * media timestamps, so segment times do not jitter with network arrival.
 */
import { TsMuxer } from '../../../src/media/mpegts/index.js';
import { CLOCK_RATE, type Frame, type Tracks } from '../../../src/media/types.js';

export interface CutSegment {
  startMs: number;
  durationMs: number;
  data: Buffer;
}

/** A DTS jump above this (either way) starts a new timeline, re-anchored on the wall clock. */
const MAX_DTS_JUMP = 10 * CLOCK_RATE;
/** A source without keyframes is cut anyway after this many target durations. */
const FORCED_CUT_FACTOR = 5;

export class DvrCutter {
  private muxer: TsMuxer | undefined;
  private tracks: Tracks | undefined;
  private chunks: Buffer[] = [];
  private startDts: number | undefined;
  private lastDts: number | undefined;
  /** Wall-clock ms at DTS `anchorDts`. */
  private anchorMs = 0;
  private anchorDts = 0;

  constructor(private targetSec: number) {}

  setTarget(seconds: number): void {
    if (Number.isFinite(seconds) && seconds > 0) this.targetSec = seconds;
  }

  /** New tracks end the open segment (the next one carries the new PMT and parameters). */
  setTracks(tracks: Tracks): CutSegment | undefined {
    const closed = this.close(undefined);
    this.tracks = tracks;
    this.muxer = new TsMuxer(tracks);
    this.lastDts = undefined;
    return closed;
  }

  push(frame: Frame, arrivedMs: number): CutSegment | undefined {
    const tracks = this.tracks;
    const muxer = this.muxer;
    if (!tracks || !muxer) return undefined;
    if (frame.kind === 'video' ? !tracks.video : !tracks.audio) return undefined;
    let closed: CutSegment | undefined;
    if (this.lastDts === undefined || Math.abs(frame.dts - this.lastDts) > MAX_DTS_JUMP) {
      closed = this.close(undefined);
      this.anchorMs = arrivedMs;
      this.anchorDts = frame.dts;
    }
    this.lastDts = frame.dts;
    const randomAccess = frame.kind === 'video' ? frame.keyframe : tracks.video === undefined;
    if (this.startDts === undefined) {
      if (!randomAccess) return closed;
      this.startDts = frame.dts;
      this.chunks.push(muxer.tables());
    } else {
      const elapsed = (frame.dts - this.startDts) / CLOCK_RATE;
      if ((randomAccess && elapsed >= this.targetSec) || elapsed >= this.targetSec * FORCED_CUT_FACTOR) {
        closed = this.close(frame.dts);
        this.startDts = frame.dts;
        this.chunks.push(muxer.tables());
      }
    }
    this.chunks.push(muxer.mux(frame));
    return closed;
  }

  /** The source stopped: hand out what was recorded so far. */
  flush(): CutSegment | undefined {
    const closed = this.close(undefined);
    this.lastDts = undefined;
    return closed;
  }

  private close(endDts: number | undefined): CutSegment | undefined {
    const start = this.startDts;
    const chunks = this.chunks;
    this.startDts = undefined;
    this.chunks = [];
    if (start === undefined || chunks.length <= 1) return undefined;
    const end = endDts ?? this.lastDts ?? start;
    return {
      startMs: this.anchorMs + ((start - this.anchorDts) * 1000) / CLOCK_RATE,
      durationMs: Math.max(1, ((end - start) * 1000) / CLOCK_RATE),
      data: Buffer.concat(chunks),
    };
  }
}
