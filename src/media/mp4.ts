/**
 * Progressive MP4 (ISO/IEC 14496-12) with the `moov` first ("faststart"): the header of a file
 * whose sample data follows in one `mdat`. Sans-IO: sample tables in, header bytes out.
 *
 * The archive exporter streams an MP4 without holding it: a first pass reads only the sample
 * sizes and times (a few bytes per frame), this module lays out `ftyp` + `moov` + the `mdat`
 * header from them, and a second pass writes the sample bytes in the same order. Each sample
 * is its own chunk, so the order of samples in `mdat` is free (the exporter interleaves them
 * in decode order) and the chunk offsets are just a running sum.
 *
 * Written by hand: the npm MP4 writers either buffer the whole file (mp4-muxer with
 * `fastStart: 'in-memory'`) or produce fragmented MP4 only, and this needs neither.
 */
import {
  audioSampleEntry,
  box,
  fullBox,
  rescale,
  timescaleOf,
  u32Array,
  UNITY_MATRIX,
  videoDimensions,
  videoSampleEntry,
} from './isobmff.js';
import { CLOCK_RATE, type AudioTrack, type VideoTrack } from './types.js';

/** One track's samples in `mdat` order; times on the bus's 90 kHz clock (rescaled per track here). */
export interface Mp4TrackSamples {
  track: VideoTrack | AudioTrack;
  sizes: number[];
  dts: number[];
  /** pts − dts per sample (0 for audio). */
  ctsOffsets: number[];
  keyframes: boolean[];
  /** Byte offset of each sample from the start of the mdat payload. */
  offsets: number[];
}

const MOVIE_TIMESCALE = 1000;

function trackDuration(t: Mp4TrackSamples): number {
  const n = t.dts.length;
  if (n === 0) return 0;
  const last = t.dts[n - 1] as number;
  const lastDelta = n > 1 ? last - (t.dts[n - 2] as number) : 0;
  return last - (t.dts[0] as number) + lastDelta;
}

/** stts / ctts run-length tables. */
function runs(values: readonly number[]): [count: number, value: number][] {
  const out: [number, number][] = [];
  for (const v of values) {
    const last = out[out.length - 1];
    if (last && last[1] === v) last[0]++;
    else out.push([1, v]);
  }
  return out;
}

function sampleTable(t: Mp4TrackSamples, id: number, mdatStart: number, co64: boolean): Buffer {
  const n = t.sizes.length;
  const scale = timescaleOf(t.track);
  const dts = t.dts.map((d) => rescale(d, scale));
  const deltas: number[] = [];
  for (let i = 0; i < n; i++) {
    const next = dts[i + 1];
    const cur = dts[i] as number;
    deltas.push(next !== undefined ? Math.max(0, next - cur) : (deltas[i - 1] ?? 0));
  }
  const stts = runs(deltas);
  const parts = [
    fullBox(
      'stsd',
      0,
      0,
      u32Array([1]),
      t.track.kind === 'video' ? videoSampleEntry(t.track) : audioSampleEntry(t.track, id),
    ),
    fullBox('stts', 0, 0, u32Array([stts.length, ...stts.flat()])),
  ];
  if (t.ctsOffsets.some((c) => c !== 0)) {
    const ctts = runs(t.ctsOffsets.map((c) => Math.max(0, rescale(c, scale))));
    parts.push(fullBox('ctts', 0, 0, u32Array([ctts.length, ...ctts.flat()])));
  }
  if (t.track.kind === 'video') {
    const sync: number[] = [];
    t.keyframes.forEach((k, i) => {
      if (k) sync.push(i + 1);
    });
    parts.push(fullBox('stss', 0, 0, u32Array([sync.length, ...sync])));
  }
  parts.push(fullBox('stsc', 0, 0, u32Array([1, 1, 1, 1])));
  parts.push(fullBox('stsz', 0, 0, u32Array([0, n, ...t.sizes])));
  if (co64) {
    const b = Buffer.alloc(4 + n * 8);
    b.writeUInt32BE(n, 0);
    t.offsets.forEach((o, i) => b.writeBigUInt64BE(BigInt(mdatStart + o), 4 + i * 8));
    parts.push(fullBox('co64', 0, 0, b));
  } else {
    parts.push(fullBox('stco', 0, 0, u32Array([n, ...t.offsets.map((o) => mdatStart + o)])));
  }
  return box('stbl', ...parts);
}

function trak(t: Mp4TrackSamples, id: number, mdatStart: number, co64: boolean): Buffer {
  const video = t.track.kind === 'video';
  const duration = trackDuration(t);
  const movieDuration = Math.round((duration * MOVIE_TIMESCALE) / CLOCK_RATE);
  const tkhd = Buffer.alloc(80);
  tkhd.writeUInt32BE(id, 8);
  tkhd.writeUInt32BE(movieDuration, 16);
  tkhd.writeUInt16BE(video ? 0 : 0x0100, 32); // volume
  u32Array(UNITY_MATRIX).copy(tkhd, 36);
  if (t.track.kind === 'video') {
    const { width, height } = videoDimensions(t.track);
    tkhd.writeUInt32BE((width << 16) >>> 0, 72);
    tkhd.writeUInt32BE((height << 16) >>> 0, 76);
  }
  const mdhd = Buffer.alloc(20);
  mdhd.writeUInt32BE(timescaleOf(t.track), 8);
  mdhd.writeUInt32BE(rescale(duration, timescaleOf(t.track)), 12);
  mdhd.writeUInt16BE(0x55c4, 16); // language 'und'
  const hdlr = Buffer.concat([
    u32Array([0]),
    Buffer.from(video ? 'vide' : 'soun', 'latin1'),
    Buffer.alloc(12),
    Buffer.from(video ? 'VideoHandler\0' : 'SoundHandler\0', 'latin1'),
  ]);
  const mediaHeader = video ? fullBox('vmhd', 0, 1, Buffer.alloc(8)) : fullBox('smhd', 0, 0, Buffer.alloc(4));
  const dinf = box('dinf', fullBox('dref', 0, 0, u32Array([1]), fullBox('url ', 0, 1)));
  return box(
    'trak',
    fullBox('tkhd', 0, 3, tkhd),
    box(
      'mdia',
      fullBox('mdhd', 0, 0, mdhd),
      fullBox('hdlr', 0, 0, hdlr),
      box('minf', mediaHeader, dinf, sampleTable(t, id, mdatStart, co64)),
    ),
  );
}

function moov(tracks: readonly Mp4TrackSamples[], mdatStart: number, co64: boolean): Buffer {
  const longest = Math.max(0, ...tracks.map(trackDuration));
  const mvhd = Buffer.alloc(96);
  mvhd.writeUInt32BE(MOVIE_TIMESCALE, 8);
  mvhd.writeUInt32BE(Math.round((longest * MOVIE_TIMESCALE) / CLOCK_RATE), 12);
  mvhd.writeUInt32BE(0x00010000, 16); // rate 1.0
  mvhd.writeUInt16BE(0x0100, 20); // volume 1.0
  u32Array(UNITY_MATRIX).copy(mvhd, 32);
  mvhd.writeUInt32BE(tracks.length + 1, 92); // next_track_ID
  return box('moov', fullBox('mvhd', 0, 0, mvhd), ...tracks.map((t, i) => trak(t, i + 1, mdatStart, co64)));
}

/**
 * `ftyp` + `moov` + the `mdat` box header for `mdatPayloadBytes` of samples laid out at the
 * given offsets. The sample bytes follow the returned header directly.
 */
export function mp4Header(tracks: readonly Mp4TrackSamples[], mdatPayloadBytes: number): Buffer {
  const ftyp = box(
    'ftyp',
    Buffer.from('isom', 'latin1'),
    u32Array([0x200]),
    Buffer.from('isomiso2avc1mp41', 'latin1'),
  );
  const largeMdat = mdatPayloadBytes + 8 > 0xffffffff;
  const mdatHeaderSize = largeMdat ? 16 : 8;
  // The moov's size does not depend on the offsets it holds, so lay it out once to measure it.
  let co64 = false;
  let moovSize = moov(tracks, 0, co64).length;
  if (ftyp.length + moovSize + mdatHeaderSize + mdatPayloadBytes > 0xffffffff) {
    co64 = true;
    moovSize = moov(tracks, 0, co64).length;
  }
  const mdatStart = ftyp.length + moovSize + mdatHeaderSize;
  const mdatHead = Buffer.alloc(mdatHeaderSize);
  if (largeMdat) {
    mdatHead.writeUInt32BE(1, 0);
    mdatHead.write('mdat', 4, 'latin1');
    mdatHead.writeBigUInt64BE(BigInt(mdatPayloadBytes + 16), 8);
  } else {
    mdatHead.writeUInt32BE(mdatPayloadBytes + 8, 0);
    mdatHead.write('mdat', 4, 'latin1');
  }
  return Buffer.concat([ftyp, moov(tracks, mdatStart, co64), mdatHead]);
}
