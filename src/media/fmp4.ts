/**
 * Fragmented MP4 (ISO/IEC 14496-12, CMAF ISO/IEC 23000-19) for HLS (RFC 8216 §3.3): an
 * initialization segment (ftyp + moov with an empty sample table and mvex) and media
 * segments (moof + mdat), from the bus's frames. Pure functions of their inputs.
 *
 * Written by hand because the boxes needed here are few and fixed, and a general MP4
 * library would cost more than it saves on the hot path (a fragment is one allocation).
 * Our frames are already in MP4 sample form: video as length-prefixed NAL units
 * (ISO/IEC 14496-15 with lengthSizeMinusOne = 3 from avcC/hvcC), audio as raw AAC frames or
 * Opus packets, so samples are copied into mdat unchanged.
 *
 * Timescales: video keeps the bus's 90 kHz clock; audio uses its sample rate (48 kHz for
 * Opus, as "Encapsulation of Opus in ISOBMFF" §4.3 requires), converted by rounding each
 * timestamp so durations sum to the source's timeline without drift.
 */
import {
  audioSampleEntry,
  box,
  fullBox,
  rescale,
  timescaleOf,
  u16s,
  u32s,
  UNITY_MATRIX,
  videoDimensions,
  videoSampleEntry,
} from './isobmff.js';
import { CLOCK_RATE, type AudioTrack, type Frame, type Tracks, type VideoTrack } from './types.js';

export const VIDEO_TRACK_ID = 1;
export const AUDIO_TRACK_ID = 2;

/** Sample flags (14496-12 §8.8.3.1): sample_depends_on = 2 for sync samples, non-sync bit otherwise. */
const SYNC_FLAGS = 0x02000000;
const NON_SYNC_FLAGS = 0x01010000;

function tkhd(trackId: number, volume: number, width: number, height: number): Buffer {
  // flags 3: track_enabled | track_in_movie.
  return fullBox(
    'tkhd',
    0,
    3,
    u32s(0, 0, trackId, 0, 0, 0, 0),
    u16s(0, 0, volume, 0),
    u32s(...UNITY_MATRIX, width << 16, height << 16),
  );
}

function mdia(timescale: number, handler: 'vide' | 'soun', header: Buffer, entry: Buffer): Buffer {
  const mdhd = fullBox('mdhd', 0, 0, u32s(0, 0, timescale, 0), u16s(0x55c4 /* 'und' */, 0));
  const name = handler === 'vide' ? 'VideoHandler\0' : 'SoundHandler\0';
  const hdlr = fullBox(
    'hdlr',
    0,
    0,
    u32s(0),
    Buffer.from(handler, 'latin1'),
    u32s(0, 0, 0),
    Buffer.from(name),
  );
  const dinf = box('dinf', fullBox('dref', 0, 0, u32s(1), fullBox('url ', 0, 1)));
  const stbl = box(
    'stbl',
    fullBox('stsd', 0, 0, u32s(1), entry),
    fullBox('stts', 0, 0, u32s(0)),
    fullBox('stsc', 0, 0, u32s(0)),
    fullBox('stsz', 0, 0, u32s(0, 0)),
    fullBox('stco', 0, 0, u32s(0)),
  );
  return box('mdia', mdhd, hdlr, box('minf', header, dinf, stbl));
}

function videoTrak(v: VideoTrack): Buffer {
  const { width, height } = videoDimensions(v);
  const vmhd = fullBox('vmhd', 0, 1, u16s(0, 0, 0, 0));
  return box(
    'trak',
    tkhd(VIDEO_TRACK_ID, 0, width, height),
    mdia(CLOCK_RATE, 'vide', vmhd, videoSampleEntry(v)),
  );
}

function audioTrak(a: AudioTrack): Buffer {
  const smhd = fullBox('smhd', 0, 0, u16s(0, 0));
  const entry = audioSampleEntry(a, AUDIO_TRACK_ID);
  return box('trak', tkhd(AUDIO_TRACK_ID, 0x0100, 0, 0), mdia(timescaleOf(a), 'soun', smhd, entry));
}

/** RFC 8216 §3.3 / EXT-X-MAP: ftyp + moov for these tracks (no samples, mvex announces fragments). */
export function initSegment(tracks: Tracks): Buffer {
  const ftyp = box('ftyp', Buffer.from('iso6', 'latin1'), u32s(0), Buffer.from('iso6cmfcisommp41', 'latin1'));
  const mvhd = fullBox(
    'mvhd',
    0,
    0,
    u32s(0, 0, 1000, 0, 0x00010000),
    u16s(0x0100, 0),
    u32s(0, 0, ...UNITY_MATRIX, 0, 0, 0, 0, 0, 0, 3),
  );
  const traks: Buffer[] = [];
  const trex: Buffer[] = [];
  if (tracks.video) {
    traks.push(videoTrak(tracks.video));
    trex.push(fullBox('trex', 0, 0, u32s(VIDEO_TRACK_ID, 1, 0, 0, 0)));
  }
  if (tracks.audio) {
    traks.push(audioTrak(tracks.audio));
    trex.push(fullBox('trex', 0, 0, u32s(AUDIO_TRACK_ID, 1, 0, 0, 0)));
  }
  return Buffer.concat([ftyp, box('moov', mvhd, ...traks, box('mvex', ...trex))]);
}

interface TrackRun {
  id: number;
  timescale: number;
  frames: Frame[];
  video: boolean;
}

/**
 * One media segment: moof (mfhd + one traf per track) and one mdat, video samples first.
 * `endDts` (90 kHz) is where the next segment begins; it gives each track's last sample
 * its duration. Tracks without frames in this segment are left out.
 */
export function mediaSegment(
  tracks: Tracks,
  frames: readonly Frame[],
  sequence: number,
  endDts: number,
): Buffer {
  const runs: TrackRun[] = [];
  if (tracks.video) {
    runs.push({
      id: VIDEO_TRACK_ID,
      timescale: CLOCK_RATE,
      frames: frames.filter((f) => f.kind === 'video'),
      video: true,
    });
  }
  if (tracks.audio) {
    runs.push({
      id: AUDIO_TRACK_ID,
      timescale: timescaleOf(tracks.audio),
      frames: frames.filter((f) => f.kind === 'audio'),
      video: false,
    });
  }
  const used = runs.filter((r) => r.frames.length > 0);

  // Sizes first: the trun data offsets point from the start of moof into mdat.
  const trafSize = (r: TrackRun): number =>
    8 + 16 /* tfhd */ + 20 /* tfdt v1 */ + 20 + r.frames.length * (r.video ? 16 : 12); /* trun */
  const moofSize = 8 + 16 /* mfhd */ + used.reduce((n, r) => n + trafSize(r), 0);
  const mdatPayload = used.reduce((n, r) => n + r.frames.reduce((m, f) => m + f.data.length, 0), 0);
  const out = Buffer.alloc(moofSize + 8 + mdatPayload);
  let p = 0;
  const w32 = (v: number): void => {
    out.writeUInt32BE(v >>> 0, p);
    p += 4;
  };
  const tag = (size: number, type: string): void => {
    w32(size);
    out.write(type, p, 'latin1');
    p += 4;
  };

  tag(moofSize, 'moof');
  tag(16, 'mfhd');
  w32(0);
  w32(sequence);
  let dataOffset = moofSize + 8;
  for (const r of used) {
    tag(trafSize(r), 'traf');
    tag(16, 'tfhd');
    w32(0x020000); // default-base-is-moof
    w32(r.id);
    const first = r.frames[0] as Frame;
    const base = rescale(first.dts, r.timescale);
    tag(20, 'tfdt');
    w32(0x01000000); // version 1: 64-bit baseMediaDecodeTime
    w32(Math.floor(base / 2 ** 32));
    w32(base % 2 ** 32);
    // data-offset, duration, size, flags (+ composition offset for video).
    tag(20 + r.frames.length * (r.video ? 16 : 12), 'trun');
    w32(r.video ? 0x000f01 : 0x000701);
    w32(r.frames.length);
    w32(dataOffset);
    let prevDuration = 0;
    for (let i = 0; i < r.frames.length; i++) {
      const f = r.frames[i] as Frame;
      const next = r.frames[i + 1];
      const t0 = rescale(f.dts, r.timescale);
      let duration = rescale(next ? next.dts : endDts, r.timescale) - t0;
      if (duration <= 0) duration = prevDuration;
      prevDuration = duration;
      w32(duration);
      w32(f.data.length);
      w32(!r.video || f.keyframe ? SYNC_FLAGS : NON_SYNC_FLAGS);
      if (r.video) w32(Math.max(0, f.pts - f.dts));
      dataOffset += f.data.length;
    }
  }
  tag(8 + mdatPayload, 'mdat');
  for (const r of used) {
    for (const f of r.frames) {
      f.data.copy(out, p);
      p += f.data.length;
    }
  }
  return out;
}

/** Box types and sizes at the top level of `buf` (for tests and diagnostics). */
export function topLevelBoxes(buf: Buffer): { type: string; size: number; offset: number }[] {
  const out: { type: string; size: number; offset: number }[] = [];
  let p = 0;
  while (p + 8 <= buf.length) {
    const size = buf.readUInt32BE(p);
    if (size < 8 || p + size > buf.length) break;
    out.push({ type: buf.toString('latin1', p + 4, p + 8), size, offset: p });
    p += size;
  }
  return out;
}
