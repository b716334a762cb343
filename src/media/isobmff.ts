/**
 * ISO base media file format (ISO/IEC 14496-12) building blocks shared by the two MP4 writers:
 * fragmented MP4 for HLS (fmp4.ts) and the progressive MP4 of archive exports (mp4.ts). Box
 * framing, the sample entries that carry our codecs' decoder configuration, and track
 * timescales. Pure functions.
 */
import { parseAvcC, spsDimensions } from './h264.js';
import { parseHevcSps, parseHvcC } from './h265.js';
import { CLOCK_RATE, type AudioTrack, type VideoTrack } from './types.js';

export const UNITY_MATRIX = [0x00010000, 0, 0, 0, 0x00010000, 0, 0, 0, 0x40000000];

export function box(type: string, ...payload: Buffer[]): Buffer {
  const size = 8 + payload.reduce((n, b) => n + b.length, 0);
  const head = Buffer.alloc(8);
  head.writeUInt32BE(size, 0);
  head.write(type, 4, 'latin1');
  return Buffer.concat([head, ...payload], size);
}

export function fullBox(type: string, version: number, flags: number, ...payload: Buffer[]): Buffer {
  const vf = Buffer.alloc(4);
  vf.writeUInt32BE(((version & 0xff) << 24) | (flags & 0xffffff), 0);
  return box(type, vf, ...payload);
}

export function u32s(...values: number[]): Buffer {
  return u32Array(values);
}

/** `u32s` for sample tables, which can hold more entries than a call may take arguments. */
export function u32Array(values: readonly number[]): Buffer {
  const b = Buffer.alloc(values.length * 4);
  values.forEach((v, i) => b.writeUInt32BE(v >>> 0, i * 4));
  return b;
}

export function u16s(...values: number[]): Buffer {
  const b = Buffer.alloc(values.length * 2);
  values.forEach((v, i) => b.writeUInt16BE(v & 0xffff, i * 2));
  return b;
}

/** The timescale of a track's `mdhd` (and fragments' `tfdt`/`trun`). */
export function timescaleOf(track: VideoTrack | AudioTrack): number {
  if (track.kind === 'video') return CLOCK_RATE;
  // "Encapsulation of Opus in ISOBMFF" §4.3: Opus tracks count 48 kHz samples.
  if (track.codec === 'opus') return 48_000;
  return track.sampleRate > 0 && track.sampleRate < 65_536 ? track.sampleRate : CLOCK_RATE;
}

/** A 90 kHz timestamp on `timescale`. */
export function rescale(ts: number, timescale: number): number {
  return timescale === CLOCK_RATE ? ts : Math.round((ts * timescale) / CLOCK_RATE);
}

/** Picture size for tkhd and the visual sample entry: the track's, or from the SPS in its config. */
export function videoDimensions(v: VideoTrack): { width: number; height: number } {
  if (v.width && v.height) return { width: v.width, height: v.height };
  if (v.codec === 'h264') {
    const sps = parseAvcC(v.config)?.sps[0];
    const d = sps ? spsDimensions(sps) : undefined;
    if (d) return d;
  } else {
    const sps = parseHvcC(v.config)?.sps[0];
    const d = sps ? parseHevcSps(sps) : undefined;
    if (d) return { width: d.width, height: d.height };
  }
  return { width: 0, height: 0 };
}

/** `avc1`/`hvc1` with the decoder configuration record our frames' NAL units go with. */
export function videoSampleEntry(v: VideoTrack): Buffer {
  const { width, height } = videoDimensions(v);
  // hvc1 (not hev1): parameter sets live in hvcC, which Safari requires for HEVC in HLS.
  return box(
    v.codec === 'h264' ? 'avc1' : 'hvc1',
    Buffer.alloc(6),
    u16s(1), // data_reference_index
    Buffer.alloc(16), // pre_defined, reserved
    u16s(width, height),
    u32s(0x00480000, 0x00480000, 0), // 72 dpi, reserved
    u16s(1), // frame_count
    Buffer.alloc(32), // compressorname
    u16s(0x0018, 0xffff), // depth, pre_defined = -1
    box(v.codec === 'h264' ? 'avcC' : 'hvcC', v.config),
  );
}

/** An MPEG-4 descriptor (14496-1 §7.2.2.1) with a 4-byte size, as most muxers write it. */
function descriptor(tag: number, ...payload: Buffer[]): Buffer {
  const body = Buffer.concat(payload);
  const n = body.length;
  const head = Buffer.from([
    tag,
    0x80 | ((n >> 21) & 0x7f),
    0x80 | ((n >> 14) & 0x7f),
    0x80 | ((n >> 7) & 0x7f),
    n & 0x7f,
  ]);
  return Buffer.concat([head, body]);
}

function esds(asc: Buffer, trackId: number): Buffer {
  const decoderConfig = descriptor(
    0x04,
    Buffer.from([0x40, 0x15, 0, 0, 0]), // Audio ISO/IEC 14496-3, AudioStream, bufferSizeDB 0
    u32s(0, 0), // maxBitrate, avgBitrate unknown
    descriptor(0x05, asc),
  );
  return fullBox(
    'esds',
    0,
    0,
    descriptor(0x03, u16s(trackId), Buffer.from([0]), decoderConfig, descriptor(0x06, Buffer.from([2]))),
  );
}

/** Opus Specific Box ("Encapsulation of Opus in ISOBMFF" §4.3.2); pre-skip 312 as libopus encoders use. */
function dOps(a: AudioTrack): Buffer {
  const b = Buffer.alloc(11);
  b[0] = 0; // Version
  b[1] = Math.min(2, Math.max(1, a.channels));
  b.writeUInt16BE(312, 2);
  b.writeUInt32BE(a.sampleRate > 0 ? a.sampleRate : 48_000, 4);
  b.writeInt16BE(0, 8);
  b[10] = 0; // ChannelMappingFamily 0: mono or stereo
  return box('dOps', b);
}

/** `mp4a` (with the AudioSpecificConfig in esds) or `Opus` (with dOps). */
export function audioSampleEntry(a: AudioTrack, trackId: number): Buffer {
  const timescale = timescaleOf(a);
  const channels = a.codec === 'opus' ? Math.min(2, Math.max(1, a.channels)) : a.channels;
  return box(
    a.codec === 'opus' ? 'Opus' : 'mp4a',
    Buffer.alloc(6),
    u16s(1), // data_reference_index
    u32s(0, 0),
    u16s(channels, 16, 0, 0),
    u32s((timescale & 0xffff) << 16),
    a.codec === 'opus' ? dOps(a) : esds(a.config, trackId),
  );
}
