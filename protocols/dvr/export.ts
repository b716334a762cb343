/**
 * Archive exports: a time range of recorded segments as one MPEG-TS or MP4 file, cut at the
 * frame level and streamed to the client as it is produced — the response never holds more
 * than one segment in memory.
 *
 * The range starts at the last video keyframe at or before FROM (so the requested moment is
 * in the file and decodes) and ends before FROM + DURATION. Frame times come from each
 * segment's wall-clock start plus its media timestamps, and the output timeline is rebuilt
 * from those, so a gap in the recording shortens nothing and shifts nothing.
 *
 * MP4 needs its `moov` first for progressive playback: a first pass reads the segments for
 * sample sizes and times only, the second streams the samples (see src/media/mp4.ts). A
 * segment that retention removes between the passes ends the download with an error.
 */
import { readFile } from 'node:fs/promises';
import { TsDemuxer, TsMuxer } from '../../src/media/mpegts/index.js';
import { mp4Header, type Mp4TrackSamples } from '../../src/media/mp4.js';
import { CLOCK_RATE, type Frame, type Tracks } from '../../src/media/types.js';
import type { ArchivedSegment } from './archive.js';

/** Where export bytes go; resolves when the client can take more (back-pressure). */
export type Sink = (chunk: Buffer) => Promise<void>;

/** Output timestamps start here rather than at 0, as ffmpeg's TS muxer does, for players that dislike 0. */
const TS_START = Math.round(1.4 * CLOCK_RATE);

interface TimedFrame {
  frame: Frame;
  /** Unix ms. */
  wallMs: number;
}

/** The frames of one segment file with their wall-clock times. */
async function segmentFrames(
  seg: ArchivedSegment,
): Promise<{ tracks: Tracks | undefined; frames: TimedFrame[] }> {
  const demuxer = new TsDemuxer();
  const data = await readFile(seg.path);
  const events = [...demuxer.push(data), ...demuxer.flush()];
  let tracks: Tracks | undefined;
  const frames: TimedFrame[] = [];
  let firstDts: number | undefined;
  for (const e of events) {
    if (e.kind === 'tracks') tracks = e.tracks;
    else {
      firstDts ??= e.frame.dts;
      frames.push({ frame: e.frame, wallMs: seg.startMs + ((e.frame.dts - firstDts) * 1000) / CLOCK_RATE });
    }
  }
  return { tracks, frames };
}

/**
 * Walks the frames of [fromMs, toMs) in decode order, calling `each` with the frame retimed
 * onto a 90 kHz output clock that starts at 0. Stops at a codec change: one file has one set of tracks.
 */
async function walk(
  segments: readonly ArchivedSegment[],
  fromMs: number,
  toMs: number,
  each: (tracks: Tracks, frame: Frame) => void | Promise<void>,
): Promise<void> {
  // The keyframe to start from: the last one at or before FROM, else the first one after it.
  let startMs = fromMs;
  const first = segments[0];
  if (first !== undefined && first.startMs <= fromMs) {
    const { frames } = await segmentFrames(first);
    let best: number | undefined;
    for (const f of frames) {
      if (f.frame.kind === 'video' && f.frame.keyframe && f.wallMs <= fromMs) best = f.wallMs;
    }
    if (best !== undefined) startMs = best;
  }
  let tracks: Tracks | undefined;
  let started = false;
  let baseWall: number | undefined;
  for (const seg of segments) {
    const { tracks: segTracks, frames } = await segmentFrames(seg);
    if (segTracks === undefined) continue;
    if (tracks === undefined) tracks = segTracks;
    else if (!sameCodecs(tracks, segTracks)) return;
    let segBase: { wall: number; dts: number } | undefined;
    for (const { frame, wallMs } of frames) {
      if (wallMs < startMs - 0.5 || wallMs >= toMs) continue;
      if (!started) {
        // Begin where a decoder can: a video keyframe, or any frame of an audio-only stream.
        if (tracks.video !== undefined && (frame.kind !== 'video' || !frame.keyframe)) continue;
        started = true;
        baseWall = wallMs;
      }
      // Within a segment the media clock is exact; between segments the wall clock places them.
      segBase ??= { wall: wallMs, dts: frame.dts };
      const at = Math.round(((segBase.wall - (baseWall ?? 0)) * CLOCK_RATE) / 1000 + frame.dts - segBase.dts);
      const shift = at - frame.dts;
      await each(tracks, { ...frame, dts: at, pts: frame.pts + shift });
    }
  }
}

function sameCodecs(a: Tracks, b: Tracks): boolean {
  const same = (x: { codec: string; config: Buffer } | undefined, y: typeof x): boolean =>
    x === undefined ? y === undefined : y !== undefined && x.codec === y.codec && x.config.equals(y.config);
  return same(a.video, b.video) && same(a.audio, b.audio);
}

/** Streams the range as MPEG-TS. Returns the bytes written (0: nothing recorded there). */
export async function exportTs(
  segments: readonly ArchivedSegment[],
  fromMs: number,
  toMs: number,
  sink: Sink,
): Promise<number> {
  let muxer: TsMuxer | undefined;
  let pending: Buffer[] = [];
  let pendingBytes = 0;
  let written = 0;
  const flush = async (): Promise<void> => {
    if (pendingBytes === 0) return;
    const chunk = Buffer.concat(pending, pendingBytes);
    pending = [];
    pendingBytes = 0;
    written += chunk.length;
    await sink(chunk);
  };
  await walk(segments, fromMs, toMs, async (tracks, frame) => {
    if (muxer === undefined) {
      muxer = new TsMuxer(tracks);
      pending.push(muxer.tables());
      pendingBytes += pending[0]?.length ?? 0;
    }
    const bytes = muxer.mux({ ...frame, dts: frame.dts + TS_START, pts: frame.pts + TS_START });
    pending.push(bytes);
    pendingBytes += bytes.length;
    if (pendingBytes >= 256 * 1024) await flush();
  });
  await flush();
  return written;
}

/** Streams the range as a progressive MP4 with the moov first. Returns the bytes written. */
export async function exportMp4(
  segments: readonly ArchivedSegment[],
  fromMs: number,
  toMs: number,
  sink: Sink,
): Promise<number> {
  // Pass 1: sample tables only.
  const tables = new Map<'video' | 'audio', Mp4TrackSamples>();
  let payload = 0;
  await walk(segments, fromMs, toMs, (tracks, frame) => {
    const track = frame.kind === 'video' ? tracks.video : tracks.audio;
    if (track === undefined) return;
    let t = tables.get(frame.kind);
    if (t === undefined) {
      t = { track, sizes: [], dts: [], ctsOffsets: [], keyframes: [], offsets: [] };
      tables.set(frame.kind, t);
    }
    t.sizes.push(frame.data.length);
    t.dts.push(frame.dts);
    t.ctsOffsets.push(frame.pts - frame.dts);
    t.keyframes.push(frame.keyframe);
    t.offsets.push(payload);
    payload += frame.data.length;
  });
  if (payload === 0) return 0;
  const ordered = [tables.get('video'), tables.get('audio')].filter(
    (t): t is Mp4TrackSamples => t !== undefined,
  );
  const header = mp4Header(ordered, payload);
  await sink(header);
  // Pass 2: the same walk yields the same frames in the same order; write their bytes.
  let sent = 0;
  let pending: Buffer[] = [];
  let pendingBytes = 0;
  await walk(segments, fromMs, toMs, async (tracks, frame) => {
    if ((frame.kind === 'video' ? tracks.video : tracks.audio) === undefined) return;
    pending.push(frame.data);
    pendingBytes += frame.data.length;
    if (pendingBytes >= 256 * 1024) {
      sent += pendingBytes;
      const chunk = Buffer.concat(pending, pendingBytes);
      pending = [];
      pendingBytes = 0;
      await sink(chunk);
    }
  });
  sent += pendingBytes;
  if (pendingBytes > 0) await sink(Buffer.concat(pending, pendingBytes));
  if (sent !== payload) throw new Error(`archive changed during the export (${sent} of ${payload} bytes)`);
  return header.length + payload;
}
