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
import type { AudioTrack, VideoTrack } from './types.js';

/** One track's samples in `mdat` order; times on a 90 kHz clock. */
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

const TIMESCALE = 90_000;
const MOVIE_TIMESCALE = 1000;

function box(type: string, ...parts: Buffer[]): Buffer {
  const size = 8 + parts.reduce((n, p) => n + p.length, 0);
  const head = Buffer.alloc(8);
  head.writeUInt32BE(size, 0);
  head.write(type, 4, 'latin1');
  return Buffer.concat([head, ...parts], size);
}

function fullBox(type: string, version: number, flags: number, ...parts: Buffer[]): Buffer {
  const vf = Buffer.alloc(4);
  vf.writeUInt32BE(((version & 0xff) << 24) | (flags & 0xffffff), 0);
  return box(type, vf, ...parts);
}

function u32s(values: readonly number[]): Buffer {
  const b = Buffer.alloc(values.length * 4);
  values.forEach((v, i) => b.writeUInt32BE(v >>> 0, i * 4));
  return b;
}

const IDENTITY_MATRIX = u32s([0x10000, 0, 0, 0, 0x10000, 0, 0, 0, 0x40000000]);

function trackDuration(t: Mp4TrackSamples): number {
  const n = t.dts.length;
  if (n === 0) return 0;
  const last = t.dts[n - 1] as number;
  const lastDelta = n > 1 ? last - (t.dts[n - 2] as number) : 0;
  return last - (t.dts[0] as number) + lastDelta;
}

/** Decoder-specific sample entry: avc1/hvc1 with their configuration record, mp4a, Opus. */
function sampleEntry(track: VideoTrack | AudioTrack): Buffer {
  if (track.kind === 'video') {
    const fields = Buffer.alloc(78);
    fields.writeUInt16BE(1, 6); // data_reference_index
    fields.writeUInt16BE(track.width ?? 0, 24);
    fields.writeUInt16BE(track.height ?? 0, 26);
    fields.writeUInt32BE(0x00480000, 28); // 72 dpi
    fields.writeUInt32BE(0x00480000, 32);
    fields.writeUInt16BE(1, 40); // frame_count
    fields.writeUInt16BE(0x0018, 74); // depth
    fields.writeInt16BE(-1, 76);
    const hevc = track.codec === 'h265';
    return box(hevc ? 'hvc1' : 'avc1', fields, box(hevc ? 'hvcC' : 'avcC', track.config));
  }
  const fields = Buffer.alloc(28);
  fields.writeUInt16BE(1, 6);
  fields.writeUInt16BE(track.channels, 16);
  fields.writeUInt16BE(16, 18);
  fields.writeUInt32BE((Math.min(track.sampleRate, 0xffff) << 16) >>> 0, 24);
  if (track.codec === 'opus') {
    // RFC 7845-style Opus-in-ISOBMFF dOps: version 0, channel count, pre-skip 312, rate, gain, family 0.
    const dops = Buffer.alloc(11);
    dops.writeUInt8(track.channels, 1);
    dops.writeUInt16BE(312, 2);
    dops.writeUInt32BE(track.sampleRate, 4);
    return box('Opus', fields, box('dOps', dops));
  }
  return box('mp4a', fields, esds(track.config));
}

/** MPEG-4 elementary stream descriptor (ISO/IEC 14496-1 §7.2.6.5) carrying the AudioSpecificConfig. */
function esds(asc: Buffer): Buffer {
  const desc = (tag: number, body: Buffer): Buffer => Buffer.concat([Buffer.from([tag, body.length]), body]);
  const decSpecific = desc(0x05, asc);
  const decConfig = desc(
    0x04,
    Buffer.concat([Buffer.from([0x40, 0x15, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]), decSpecific]),
  );
  const sl = desc(0x06, Buffer.from([0x02]));
  const es = desc(0x03, Buffer.concat([Buffer.from([0, 1, 0]), decConfig, sl]));
  return fullBox('esds', 0, 0, es);
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

function sampleTable(t: Mp4TrackSamples, mdatStart: number, co64: boolean): Buffer {
  const n = t.sizes.length;
  const deltas: number[] = [];
  for (let i = 0; i < n; i++) {
    const next = t.dts[i + 1];
    const cur = t.dts[i] as number;
    deltas.push(next !== undefined ? Math.max(0, next - cur) : (deltas[i - 1] ?? 0));
  }
  const stts = runs(deltas);
  const parts = [
    fullBox('stsd', 0, 0, u32s([1]), sampleEntry(t.track)),
    fullBox('stts', 0, 0, u32s([stts.length, ...stts.flat()])),
  ];
  if (t.ctsOffsets.some((c) => c !== 0)) {
    const ctts = runs(t.ctsOffsets.map((c) => Math.max(0, c)));
    parts.push(fullBox('ctts', 0, 0, u32s([ctts.length, ...ctts.flat()])));
  }
  if (t.track.kind === 'video') {
    const sync: number[] = [];
    t.keyframes.forEach((k, i) => {
      if (k) sync.push(i + 1);
    });
    parts.push(fullBox('stss', 0, 0, u32s([sync.length, ...sync])));
  }
  parts.push(fullBox('stsc', 0, 0, u32s([1, 1, 1, 1])));
  parts.push(fullBox('stsz', 0, 0, u32s([0, n, ...t.sizes])));
  if (co64) {
    const b = Buffer.alloc(4 + n * 8);
    b.writeUInt32BE(n, 0);
    t.offsets.forEach((o, i) => b.writeBigUInt64BE(BigInt(mdatStart + o), 4 + i * 8));
    parts.push(fullBox('co64', 0, 0, b));
  } else {
    parts.push(fullBox('stco', 0, 0, u32s([n, ...t.offsets.map((o) => mdatStart + o)])));
  }
  return box('stbl', ...parts);
}

function trak(t: Mp4TrackSamples, id: number, mdatStart: number, co64: boolean): Buffer {
  const video = t.track.kind === 'video';
  const duration = trackDuration(t);
  const movieDuration = Math.round((duration * MOVIE_TIMESCALE) / TIMESCALE);
  const tkhd = Buffer.alloc(80);
  tkhd.writeUInt32BE(id, 8);
  tkhd.writeUInt32BE(movieDuration, 16);
  tkhd.writeUInt16BE(video ? 0 : 0x0100, 32); // volume
  IDENTITY_MATRIX.copy(tkhd, 36);
  if (t.track.kind === 'video') {
    tkhd.writeUInt32BE((t.track.width ?? 0) << 16, 72);
    tkhd.writeUInt32BE((t.track.height ?? 0) << 16, 76);
  }
  const mdhd = Buffer.alloc(20);
  mdhd.writeUInt32BE(TIMESCALE, 8);
  mdhd.writeUInt32BE(duration, 12);
  mdhd.writeUInt16BE(0x55c4, 16); // language 'und'
  const hdlr = Buffer.concat([
    u32s([0]),
    Buffer.from(video ? 'vide' : 'soun', 'latin1'),
    Buffer.alloc(12),
    Buffer.from(video ? 'VideoHandler\0' : 'SoundHandler\0', 'latin1'),
  ]);
  const mediaHeader = video ? fullBox('vmhd', 0, 1, Buffer.alloc(8)) : fullBox('smhd', 0, 0, Buffer.alloc(4));
  const dinf = box('dinf', fullBox('dref', 0, 0, u32s([1]), fullBox('url ', 0, 1)));
  return box(
    'trak',
    fullBox('tkhd', 0, 3, tkhd),
    box(
      'mdia',
      fullBox('mdhd', 0, 0, mdhd),
      fullBox('hdlr', 0, 0, hdlr),
      box('minf', mediaHeader, dinf, sampleTable(t, mdatStart, co64)),
    ),
  );
}

function moov(tracks: readonly Mp4TrackSamples[], mdatStart: number, co64: boolean): Buffer {
  const longest = Math.max(0, ...tracks.map(trackDuration));
  const mvhd = Buffer.alloc(96);
  mvhd.writeUInt32BE(MOVIE_TIMESCALE, 8);
  mvhd.writeUInt32BE(Math.round((longest * MOVIE_TIMESCALE) / TIMESCALE), 12);
  mvhd.writeUInt32BE(0x00010000, 16); // rate 1.0
  mvhd.writeUInt16BE(0x0100, 20); // volume 1.0
  IDENTITY_MATRIX.copy(mvhd, 32);
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
    u32s([0x200]),
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
