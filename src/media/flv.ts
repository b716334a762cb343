/**
 * FLV: the container ffmpeg writes with `-f flv`, and the tag bodies that RTMP audio (8), video (9)
 * and data (18) messages carry unchanged. This module converts both ways between FLV tag bodies and
 * the media model (Tracks + Frames with 90 kHz timestamps), and reads/writes a whole FLV byte stream.
 *
 * Hand-written because the npm FLV packages are demuxers tied to streams or browsers (flv.js) and
 * none is sans-IO; RTMP publish needs exactly the tag-body layer, synchronously.
 *
 * Specification: Adobe "Video File Format Specification" v10.1, annex E (E.2 header, E.3 body,
 * E.4 tags); Veovera "Enhanced RTMP" v1 for H.265 ('hvc1' FourCC).
 */
import { parseAudioSpecificConfig } from './aac.js';
import { encodeAmf0, encodeAmf0EcmaArray } from './amf0.js';
import { parseAvcC, spsDimensions } from './h264.js';
import { parseHevcSps, parseHvcC } from './h265.js';
import type { Amf0Object } from './amf0.js';
import type { AudioTrack, Frame, Tracks, VideoCodec, VideoTrack } from './types.js';

/** Thrown by `FlvReader` on bytes that are not an FLV stream. */
export class FlvError extends Error {
  override name = 'FlvError';
}

export const FlvTagType = { Audio: 8, Video: 9, Script: 18 } as const;
export type FlvTagTypeValue = 8 | 9 | 18;

/** One FLV tag. `data` is the tag body: exactly what an RTMP message of the same type carries. */
export interface FlvTag {
  type: FlvTagTypeValue;
  /** Milliseconds, the 24-bit field extended by the TimestampExtended byte (E.4.1). */
  timestamp: number;
  data: Buffer;
}

/** The result of demuxing one tag body: `tracks` when the codec configuration changed, `frame` for media. */
export interface FlvResult {
  tracks?: Tracks;
  frame?: Frame;
}

const MS_TO_90K = 90;

// ---------------------------------------------------------------------------------------------
// FLV byte stream

const FLV_SIGNATURE = Buffer.from('FLV', 'latin1');
const FILE_HEADER_BYTES = 9;
const TAG_HEADER_BYTES = 11;
const PREVIOUS_TAG_SIZE_BYTES = 4;

/**
 * The 9-byte FLV header (version 1, audio and video present) followed by PreviousTagSize0, so that
 * `FLV_HEADER` + any number of `encodeFlvTag()` results is a complete FLV stream.
 */
export const FLV_HEADER: Buffer = Buffer.from([
  0x46, 0x4c, 0x56, 0x01, 0x05, 0x00, 0x00, 0x00, 0x09, 0x00, 0x00, 0x00, 0x00,
]);

/**
 * Largest tag body accepted by default. The 24-bit DataSize field caps a tag at 16 MiB − 1 anyway;
 * the option exists so a caller can lower it (a 1080p keyframe is well under 1 MiB).
 */
export const MAX_FLV_TAG_BYTES = 16 * 1024 * 1024;

/** Encodes one tag (header, body, trailing PreviousTagSize), FLV spec E.4.1. */
export function encodeFlvTag(type: FlvTagTypeValue, timestampMs: number, data: Buffer): Buffer {
  if (data.length > 0xffffff) {
    throw new RangeError(`flv tag body of ${data.length} bytes exceeds 24-bit size`);
  }
  const out = Buffer.alloc(TAG_HEADER_BYTES + data.length + PREVIOUS_TAG_SIZE_BYTES);
  const ts = wrapUint32(Math.round(timestampMs));
  out[0] = type;
  out.writeUIntBE(data.length, 1, 3);
  out.writeUIntBE(ts & 0xffffff, 4, 3);
  out[7] = ts >>> 24;
  // StreamID (bytes 8..10) is always 0.
  data.copy(out, TAG_HEADER_BYTES);
  out.writeUInt32BE(TAG_HEADER_BYTES + data.length, TAG_HEADER_BYTES + data.length);
  return out;
}

/**
 * Incremental FLV stream parser, for ffmpeg's `-f flv pipe:1` output arriving in arbitrary pieces.
 * Returned tag bodies may share memory with the pushed buffers.
 */
export class FlvReader {
  private chunks: Buffer[] = [];
  private buffered = 0;
  private state: 'header' | 'tags' = 'header';
  /** Size of the step in progress (file header or whole tag), once its fixed prefix has been read. */
  private stepBytes: number | undefined;
  private readonly maxTagBytes: number;

  /** `maxTagBytes` defaults to `MAX_FLV_TAG_BYTES`. */
  constructor(options: { maxTagBytes?: number } = {}) {
    this.maxTagBytes = options.maxTagBytes ?? MAX_FLV_TAG_BYTES;
  }

  push(data: Buffer): FlvTag[] {
    if (data.length > 0) {
      this.chunks.push(data);
      this.buffered += data.length;
    }
    const tags: FlvTag[] = [];
    for (;;) {
      // Caching the step size means a large tag arriving in many small pieces is concatenated
      // once, not once per piece.
      this.stepBytes ??= this.readStepSize();
      if (this.stepBytes === undefined || this.buffered < this.stepBytes) return tags;
      const buf = this.flatten();
      if (this.state === 'header') {
        this.state = 'tags';
      } else {
        const bodyEnd = this.stepBytes - PREVIOUS_TAG_SIZE_BYTES;
        const previousTagSize = buf.readUInt32BE(bodyEnd);
        // A correct PreviousTagSize is the cheapest check that we are still in sync with the stream.
        if (previousTagSize !== bodyEnd) {
          throw new FlvError(`flv PreviousTagSize ${previousTagSize} does not match tag size ${bodyEnd}`);
        }
        const timestamp = wrapUint32(buf.readUIntBE(4, 3) + buf.readUInt8(7) * 0x1000000);
        tags.push({
          type: buf.readUInt8(0) as FlvTagTypeValue,
          timestamp,
          data: buf.subarray(TAG_HEADER_BYTES, bodyEnd),
        });
      }
      this.consume(buf, this.stepBytes);
    }
  }

  /**
   * Validates the fixed prefix of the next step and returns the step's total size, or undefined
   * while the prefix is incomplete. Validating early rejects garbage before buffering for it.
   */
  private readStepSize(): number | undefined {
    if (this.state === 'header') {
      if (this.buffered < FILE_HEADER_BYTES) return undefined;
      const buf = this.flatten();
      if (!buf.subarray(0, 3).equals(FLV_SIGNATURE)) throw new FlvError('not an flv stream (bad signature)');
      if (buf[3] !== 1) throw new FlvError(`unsupported flv version ${buf[3]}`);
      const dataOffset = buf.readUInt32BE(5);
      // The header is 9 bytes in version 1; a larger offset would let garbage claim a huge skip.
      if (dataOffset !== FILE_HEADER_BYTES) throw new FlvError(`invalid flv header size ${dataOffset}`);
      return FILE_HEADER_BYTES + PREVIOUS_TAG_SIZE_BYTES;
    }
    if (this.buffered < TAG_HEADER_BYTES) return undefined;
    const buf = this.flatten();
    const typeByte = buf.readUInt8(0);
    // Bit 5 is the Filter flag (encrypted content); bits 6..7 are reserved (E.4.1).
    if (typeByte & 0xe0) throw new FlvError(`unsupported flv tag flags 0x${typeByte.toString(16)}`);
    if (typeByte !== 8 && typeByte !== 9 && typeByte !== 18) {
      throw new FlvError(`invalid flv tag type ${typeByte}`);
    }
    const dataSize = buf.readUIntBE(1, 3);
    if (dataSize > this.maxTagBytes) {
      throw new FlvError(`flv tag of ${dataSize} bytes exceeds ${this.maxTagBytes}`);
    }
    if (buf.readUIntBE(8, 3) !== 0) throw new FlvError('flv tag stream id is not 0');
    return TAG_HEADER_BYTES + dataSize + PREVIOUS_TAG_SIZE_BYTES;
  }

  private flatten(): Buffer {
    if (this.chunks.length > 1) this.chunks = [Buffer.concat(this.chunks)];
    return this.chunks[0] ?? Buffer.alloc(0);
  }

  private consume(buf: Buffer, length: number): void {
    const rest = buf.subarray(length);
    this.chunks = rest.length > 0 ? [rest] : [];
    this.buffered = rest.length;
    this.stepBytes = undefined;
  }
}

// ---------------------------------------------------------------------------------------------
// Tag bodies → media model

/** FLV VideoTagHeader codec ids (E.4.3.1). 12 is the unofficial HEVC id some Chinese CDNs use. */
const VideoCodecId = { Avc: 7, HevcLegacy: 12 } as const;
/** FLV AudioTagHeader SoundFormat values (E.4.2.1). */
const SoundFormat = { Aac: 10 } as const;
/** AVCPacketType (E.4.3.1) and the matching Enhanced RTMP PacketType values. */
const AvcPacketType = { SequenceHeader: 0, Nalu: 1, EndOfSequence: 2 } as const;
const ExPacketType = { SequenceStart: 0, CodedFrames: 1, SequenceEnd: 2, CodedFramesX: 3 } as const;
const FrameType = { Key: 1, Inter: 2, DisposableInter: 3, GeneratedKey: 4, Command: 5 } as const;
const FOURCC_HEVC = 'hvc1';
const FOURCC_AVC = 'avc1';

/**
 * Demuxes FLV tag bodies (from an FLV file or RTMP audio/video messages) into tracks and frames.
 * Stateful only to remember the codec configurations. Never throws: bodies it does not understand
 * (other codecs, truncated bodies, frames before their sequence header) yield `{}`.
 */
export class FlvToFrames {
  private tracks: Tracks = {};

  /** The tracks seen so far. */
  currentTracks(): Tracks {
    return { ...this.tracks };
  }

  video(timestampMs: number, body: Buffer): FlvResult {
    if (body.length < 1) return {};
    const firstByte = body.readUInt8(0);
    // Enhanced RTMP: the top bit (IsExHeader) turns the low nibble into a PacketType and adds a FourCC.
    if (firstByte & 0x80) return this.enhancedVideo(timestampMs, body, firstByte);
    const frameType = (firstByte >> 4) & 0x07;
    const codecId = firstByte & 0x0f;
    if (frameType === FrameType.Command) return {};
    let codec: VideoCodec;
    if (codecId === VideoCodecId.Avc) codec = 'h264';
    else if (codecId === VideoCodecId.HevcLegacy) codec = 'h265';
    else return {};
    if (body.length < 5) return {};
    const packetType = body.readUInt8(1);
    const compositionTimeMs = body.readIntBE(2, 3);
    switch (packetType) {
      case AvcPacketType.SequenceHeader:
        return this.videoConfig(codec, body.subarray(5));
      case AvcPacketType.Nalu:
        return this.videoFrame(codec, timestampMs, compositionTimeMs, frameType, body.subarray(5));
      default:
        return {};
    }
  }

  audio(timestampMs: number, body: Buffer): FlvResult {
    if (body.length < 2) return {};
    const firstByte = body.readUInt8(0);
    if (firstByte >> 4 !== SoundFormat.Aac) return {};
    const packetType = body.readUInt8(1);
    const payload = body.subarray(2);
    if (packetType === 0) {
      const config = audioConfig(payload);
      if (!config) return {};
      // channelConfiguration 0 means "described in a program config element"; the FLV
      // SoundType bit is the only other hint (E.4.2.1), even though AAC should always set it.
      const channels = config.channels || (firstByte & 0x01 ? 2 : 1);
      const previous = this.tracks.audio;
      if (previous?.codec === 'aac' && previous.config.equals(payload)) return {};
      this.tracks = {
        ...this.tracks,
        audio: {
          kind: 'audio',
          codec: 'aac',
          config: Buffer.from(payload),
          sampleRate: config.sampleRate,
          channels,
        },
      };
      return { tracks: this.currentTracks() };
    }
    if (packetType === 1) {
      if (this.tracks.audio?.codec !== 'aac' || payload.length === 0) return {};
      const ts = timestampMs * MS_TO_90K;
      return { frame: { kind: 'audio', dts: ts, pts: ts, keyframe: true, data: payload } };
    }
    return {};
  }

  private enhancedVideo(timestampMs: number, body: Buffer, firstByte: number): FlvResult {
    if (body.length < 5) return {};
    const frameType = (firstByte >> 4) & 0x07;
    const packetType = firstByte & 0x0f;
    const fourCc = body.toString('latin1', 1, 5);
    let codec: VideoCodec;
    if (fourCc === FOURCC_HEVC) codec = 'h265';
    else if (fourCc === FOURCC_AVC) codec = 'h264';
    else return {};
    if (frameType === FrameType.Command) return {};
    switch (packetType) {
      case ExPacketType.SequenceStart:
        return this.videoConfig(codec, body.subarray(5));
      case ExPacketType.CodedFrames:
        if (body.length < 8) return {};
        return this.videoFrame(codec, timestampMs, body.readIntBE(5, 3), frameType, body.subarray(8));
      case ExPacketType.CodedFramesX:
        // Same as CodedFrames with a composition time of zero, saving three bytes.
        return this.videoFrame(codec, timestampMs, 0, frameType, body.subarray(5));
      default:
        return {};
    }
  }

  private videoConfig(codec: VideoCodec, config: Buffer): FlvResult {
    // configurationVersion is 1 in both avcC and hvcC; an empty or odd record is unusable.
    if (config.length < 7 || config[0] !== 1) return {};
    const previous = this.tracks.video;
    if (previous?.codec === codec && previous.config.equals(config)) return {};
    const track: VideoTrack = { kind: 'video', codec, config: Buffer.from(config) };
    const size = configDimensions(codec, config);
    if (size) {
      track.width = size.width;
      track.height = size.height;
    }
    this.tracks = { ...this.tracks, video: track };
    return { tracks: this.currentTracks() };
  }

  private videoFrame(
    codec: VideoCodec,
    timestampMs: number,
    compositionTimeMs: number,
    frameType: number,
    data: Buffer,
  ): FlvResult {
    // A frame before its sequence header cannot be decoded by anyone downstream.
    if (this.tracks.video?.codec !== codec || data.length === 0) return {};
    const dts = timestampMs * MS_TO_90K;
    return {
      frame: {
        kind: 'video',
        dts,
        // The field is signed, but a picture is never shown before it is decoded: the Frame
        // contract (pts ≥ dts) holds whatever a publisher sends.
        pts: dts + Math.max(0, compositionTimeMs) * MS_TO_90K,
        keyframe: frameType === FrameType.Key,
        data,
      },
    };
  }
}

// ---------------------------------------------------------------------------------------------
// Media model → tag bodies

/** Rounds a 90 kHz timestamp to FLV/RTMP milliseconds. */
export function flvTimestamp(dts90k: number): number {
  return Math.round(dts90k / MS_TO_90K);
}

/** The video sequence-header tag body: AVC packet type 0 with avcC, or Enhanced RTMP SequenceStart with hvcC. */
export function videoSequenceHeader(track: VideoTrack): Buffer {
  if (track.codec === 'h265') {
    return Buffer.concat([enhancedVideoHeader(FrameType.Key, ExPacketType.SequenceStart), track.config]);
  }
  return Buffer.concat([
    Buffer.of((FrameType.Key << 4) | VideoCodecId.Avc, AvcPacketType.SequenceHeader, 0, 0, 0),
    track.config,
  ]);
}

/** The video tag body for one access unit; `codec` selects legacy AVC or Enhanced RTMP 'hvc1'. */
export function videoTagBody(frame: Frame, codec: VideoCodec = 'h264'): Buffer {
  const frameType = frame.keyframe ? FrameType.Key : FrameType.Inter;
  const compositionTimeMs = flvTimestamp(frame.pts) - flvTimestamp(frame.dts);
  if (codec === 'h265') {
    if (compositionTimeMs === 0) {
      return Buffer.concat([enhancedVideoHeader(frameType, ExPacketType.CodedFramesX), frame.data]);
    }
    const cts = Buffer.alloc(3);
    cts.writeIntBE(clampInt24(compositionTimeMs), 0, 3);
    return Buffer.concat([enhancedVideoHeader(frameType, ExPacketType.CodedFrames), cts, frame.data]);
  }
  const header = Buffer.alloc(5);
  header[0] = (frameType << 4) | VideoCodecId.Avc;
  header[1] = AvcPacketType.Nalu;
  header.writeIntBE(clampInt24(compositionTimeMs), 2, 3);
  return Buffer.concat([header, frame.data]);
}

/** The AAC sequence-header tag body (AACPacketType 0 + AudioSpecificConfig). */
export function audioSequenceHeader(track: AudioTrack): Buffer {
  return Buffer.concat([Buffer.of(aacTagByte(track), 0), track.config]);
}

/** The AAC raw-frame tag body (AACPacketType 1). */
export function audioTagBody(frame: Frame, track: AudioTrack): Buffer {
  return Buffer.concat([Buffer.of(aacTagByte(track), 1), frame.data]);
}

/** The script tag body `"onMetaData", {ECMA array}` that players read before the first frame. */
export function onMetaData(tracks: Tracks): Buffer {
  const meta: Amf0Object = {};
  const { video, audio } = tracks;
  if (video) {
    if (video.width !== undefined) meta.width = video.width;
    if (video.height !== undefined) meta.height = video.height;
    // Enhanced RTMP signals HEVC by its FourCC as a number in videocodecid.
    meta.videocodecid = video.codec === 'h265' ? fourCcNumber(FOURCC_HEVC) : VideoCodecId.Avc;
  }
  if (audio) {
    meta.audiocodecid = SoundFormat.Aac;
    meta.audiosamplerate = audio.sampleRate;
    meta.audiosamplesize = 16;
    meta.stereo = audio.channels >= 2;
  }
  return Buffer.concat([encodeAmf0('onMetaData'), encodeAmf0EcmaArray(meta)]);
}

function aacTagByte(track: AudioTrack): number {
  if (track.codec !== 'aac') throw new TypeError(`${track.codec} audio cannot be carried in legacy flv`);
  // For AAC the SoundRate and SoundType fields are fixed at 44 kHz / stereo; decoders read the
  // real values from the AudioSpecificConfig (E.4.2.1). 16-bit samples.
  return (SoundFormat.Aac << 4) | (3 << 2) | (1 << 1) | 1;
}

function enhancedVideoHeader(frameType: number, packetType: number): Buffer {
  const header = Buffer.alloc(5);
  header[0] = 0x80 | (frameType << 4) | packetType;
  header.write(FOURCC_HEVC, 1, 'latin1');
  return header;
}

function fourCcNumber(fourCc: string): number {
  return Buffer.from(fourCc, 'latin1').readUInt32BE(0);
}

function clampInt24(value: number): number {
  return Math.max(-0x800000, Math.min(0x7fffff, value));
}

function wrapUint32(value: number): number {
  const modulus = 2 ** 32;
  return ((value % modulus) + modulus) % modulus;
}

// ---------------------------------------------------------------------------------------------
// Codec configuration parsing

/**
 * Picture size from the first SPS of an avcC or hvcC record, or undefined when it cannot be read.
 * The size is advisory (onMetaData, logs), so a failure here never rejects the stream.
 */
function configDimensions(codec: VideoCodec, config: Buffer): { width: number; height: number } | undefined {
  try {
    if (codec === 'h264') {
      const sps = parseAvcC(config)?.sps[0];
      return sps && spsDimensions(sps);
    }
    const sps = parseHvcC(config)?.sps[0];
    const info = sps && parseHevcSps(sps);
    return info && { width: info.width, height: info.height };
  } catch {
    // The codec parsers return undefined on truncation; this guards FlvToFrames' never-throw promise.
    return undefined;
  }
}

function audioConfig(asc: Buffer): { sampleRate: number; channels: number } | undefined {
  try {
    return parseAudioSpecificConfig(asc);
  } catch {
    return undefined;
  }
}
