/**
 * FLV: the container ffmpeg writes with `-f flv`, and the tag bodies that RTMP audio (8), video (9)
 * and data (18) messages carry unchanged. This module converts both ways between FLV tag bodies and
 * the media model (Tracks + Frames with 90 kHz timestamps), and reads/writes a whole FLV byte stream.
 *
 * Hand-written because the npm FLV packages are demuxers tied to streams or browsers (flv.js) and
 * none is sans-IO; RTMP publish needs exactly the tag-body layer, synchronously.
 *
 * Specification: Adobe "Video File Format Specification" v10.1, annex E (E.2 header, E.3 body,
 * E.4 tags); Veovera "Enhanced RTMP" v2 (ExVideoTagHeader/ExAudioTagHeader with FourCCs, ModEx,
 * multitrack) for every codec beyond H.264 and AAC.
 */
import { parseAudioSpecificConfig } from './aac.js';
import { encodeAmf0, encodeAmf0EcmaArray } from './amf0.js';
import { parseAvcC, spsDimensions } from './h264.js';
import { parseHevcSps, parseHvcC } from './h265.js';
import type { Amf0Object } from './amf0.js';
import type { AudioCodec, AudioTrack, Frame, Tracks, VideoCodec, VideoTrack } from './types.js';

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
  /** Something dropped that the publisher should hear about once (an unsupported codec, extra tracks). */
  notice?: string;
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
/** FLV AudioTagHeader SoundFormat values (E.4.2.1); 9 is Enhanced RTMP's ExHeader. */
const SoundFormat = { ExHeader: 9, Aac: 10 } as const;
/** AVCPacketType (E.4.3.1). */
const AvcPacketType = { SequenceHeader: 0, Nalu: 1, EndOfSequence: 2 } as const;
/** Enhanced RTMP VideoPacketType. */
const ExPacketType = {
  SequenceStart: 0,
  CodedFrames: 1,
  SequenceEnd: 2,
  CodedFramesX: 3,
  Metadata: 4,
  Mpeg2TsSequenceStart: 5,
  Multitrack: 6,
  ModEx: 7,
} as const;
/** Enhanced RTMP AudioPacketType. */
const ExAudioPacketType = {
  SequenceStart: 0,
  CodedFrames: 1,
  SequenceEnd: 2,
  MultichannelConfig: 4,
  Multitrack: 5,
  ModEx: 7,
} as const;
/** Enhanced RTMP AvMultitrackType. */
const MultitrackType = { OneTrack: 0, ManyTracks: 1, ManyTracksManyCodecs: 2 } as const;
const FrameType = { Key: 1, Inter: 2, DisposableInter: 3, GeneratedKey: 4, Command: 5 } as const;

/** The Enhanced RTMP FourCC of each video codec on the bus. */
export const VIDEO_FOURCC: Readonly<Record<VideoCodec, string>> = {
  h264: 'avc1',
  h265: 'hvc1',
  av1: 'av01',
  vp9: 'vp09',
};
/** The Enhanced RTMP FourCC of each audio codec on the bus. */
export const AUDIO_FOURCC: Readonly<Record<AudioCodec, string>> = { aac: 'mp4a', opus: 'Opus' };
const VIDEO_BY_FOURCC = new Map(Object.entries(VIDEO_FOURCC).map(([c, f]) => [f, c as VideoCodec]));
const AUDIO_BY_FOURCC = new Map(Object.entries(AUDIO_FOURCC).map(([c, f]) => [f, c as AudioCodec]));
/** Opus in Enhanced RTMP and in the media model always runs on a 48 kHz clock (RFC 7845 §4). */
const OPUS_RATE = 48_000;

/**
 * The part of an Enhanced RTMP body after its header (ModEx skipped, multitrack unpacked): the
 * packet type, the FourCC and the one track's payload, or undefined when the body is truncated.
 */
interface ExPacket {
  packetType: number;
  fourCc: string;
  payload: Buffer;
  /** Multitrack: the track chosen and whether the message carried others that were dropped. */
  trackId?: number;
  droppedTracks?: boolean;
}

/**
 * Walks an Enhanced RTMP header from `pos` (just past the byte holding the first packet type):
 * ModEx prefixes are skipped (their only defined use is a sub-millisecond timestamp offset, below
 * what the media model's 90 kHz clock needs from RTMP), and a multitrack message yields the track
 * `wantTrack(id)` accepts first. Pure; undefined on truncation.
 */
function readExPacket(
  body: Buffer,
  firstPacketType: number,
  codes: { multitrack: number; modEx: number },
  wantTrack: (id: number) => boolean,
): ExPacket | undefined {
  let pos = 1;
  let packetType = firstPacketType;
  while (packetType === codes.modEx) {
    if (pos >= body.length) return undefined;
    let size = body.readUInt8(pos) + 1;
    pos += 1;
    if (size === 256) {
      if (pos + 2 > body.length) return undefined;
      size = body.readUInt16BE(pos) + 1;
      pos += 2;
    }
    pos += size;
    if (pos >= body.length) return undefined;
    packetType = body.readUInt8(pos) & 0x0f;
    pos += 1;
  }
  if (packetType !== codes.multitrack) {
    if (pos + 4 > body.length) return undefined;
    return { packetType, fourCc: body.toString('latin1', pos, pos + 4), payload: body.subarray(pos + 4) };
  }
  if (pos >= body.length) return undefined;
  const multitrackType = body.readUInt8(pos) >> 4;
  packetType = body.readUInt8(pos) & 0x0f;
  pos += 1;
  let fourCc = '';
  if (multitrackType !== MultitrackType.ManyTracksManyCodecs) {
    if (pos + 4 > body.length) return undefined;
    fourCc = body.toString('latin1', pos, pos + 4);
    pos += 4;
  }
  let chosen: ExPacket | undefined;
  let dropped = false;
  while (pos < body.length) {
    if (multitrackType === MultitrackType.ManyTracksManyCodecs) {
      if (pos + 4 > body.length) return chosen;
      fourCc = body.toString('latin1', pos, pos + 4);
      pos += 4;
    }
    if (pos >= body.length) return chosen;
    const trackId = body.readUInt8(pos);
    pos += 1;
    let end = body.length;
    if (multitrackType !== MultitrackType.OneTrack) {
      if (pos + 3 > body.length) return chosen;
      end = Math.min(body.length, pos + 3 + body.readUIntBE(pos, 3));
      pos += 3;
    }
    if (!chosen && wantTrack(trackId)) {
      chosen = { packetType, fourCc, payload: body.subarray(pos, end), trackId };
    } else {
      dropped = true;
    }
    pos = end;
  }
  if (chosen && dropped) chosen.droppedTracks = true;
  return chosen;
}

/**
 * Demuxes FLV tag bodies (from an FLV file or RTMP audio/video messages) into tracks and frames,
 * legacy FLV and Enhanced RTMP alike. Stateful only to remember the codec configurations and the
 * multitrack track it follows. Never throws: bodies it does not understand (other codecs,
 * truncated bodies, frames before their sequence header) yield `{}`, or a one-time `notice` that
 * the caller may log.
 */
export class FlvToFrames {
  private tracks: Tracks = {};
  /** Multitrack: the track id followed per media type (the first one seen; 0 is the default). */
  private videoTrackId: number | undefined;
  private audioTrackId: number | undefined;
  private readonly noticed = new Set<string>();

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
    else return this.notice(`video codec id ${codecId} is not supported; its frames are dropped`);
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
    if (body.length < 1) return {};
    const firstByte = body.readUInt8(0);
    if (firstByte >> 4 === SoundFormat.ExHeader) return this.enhancedAudio(timestampMs, body, firstByte);
    if (firstByte >> 4 !== SoundFormat.Aac) {
      return this.notice(`audio sound format ${firstByte >> 4} is not supported; its frames are dropped`);
    }
    if (body.length < 2) return {};
    // channelConfiguration 0 means "described in a program config element"; the FLV
    // SoundType bit is the only other hint (E.4.2.1), even though AAC should always set it.
    const stereoHint = firstByte & 0x01 ? 2 : 1;
    const packetType = body.readUInt8(1);
    const payload = body.subarray(2);
    if (packetType === 0) return this.aacConfig(payload, stereoHint);
    if (packetType === 1) return this.audioFrame('aac', timestampMs, payload);
    return {};
  }

  private enhancedVideo(timestampMs: number, body: Buffer, firstByte: number): FlvResult {
    const frameType = (firstByte >> 4) & 0x07;
    const packet = readExPacket(
      body,
      firstByte & 0x0f,
      { multitrack: ExPacketType.Multitrack, modEx: ExPacketType.ModEx },
      (id) => (this.videoTrackId ??= id) === id,
    );
    // A command frame (other than metadata) carries a VideoCommand byte instead of a FourCC.
    if (!packet || (frameType === FrameType.Command && packet.packetType !== ExPacketType.Metadata)) {
      return {};
    }
    const codec = VIDEO_BY_FOURCC.get(packet.fourCc);
    if (!codec) {
      return this.notice(
        `video codec '${printable(packet.fourCc)}' is not supported; its frames are dropped`,
      );
    }
    const result = this.enhancedVideoPacket(codec, timestampMs, frameType, packet);
    if (packet.droppedTracks) {
      const note = this.noticeText(
        `multitrack video: only track ${packet.trackId} is kept, other tracks are dropped`,
      );
      if (note) result.notice = note;
    }
    return result;
  }

  private enhancedVideoPacket(
    codec: VideoCodec,
    timestampMs: number,
    frameType: number,
    p: ExPacket,
  ): FlvResult {
    // The composition time field exists only for the codecs with B-frame reordering in the
    // FLV sense (AVC, HEVC); AV1 and VP9 frames start at the payload.
    const hasCts = codec === 'h264' || codec === 'h265';
    switch (p.packetType) {
      case ExPacketType.SequenceStart:
        return this.videoConfig(codec, p.payload);
      case ExPacketType.CodedFrames:
        if (!hasCts) return this.videoFrame(codec, timestampMs, 0, frameType, p.payload);
        if (p.payload.length < 3) return {};
        return this.videoFrame(
          codec,
          timestampMs,
          p.payload.readIntBE(0, 3),
          frameType,
          p.payload.subarray(3),
        );
      case ExPacketType.CodedFramesX:
        // Same as CodedFrames with a composition time of zero, saving three bytes.
        return this.videoFrame(codec, timestampMs, 0, frameType, p.payload);
      default:
        // SequenceEnd, Metadata (HDR colour info) and MPEG2TSSequenceStart (an AV1 TS
        // descriptor; the av1C of SequenceStart is what every output needs) change nothing.
        return {};
    }
  }

  private enhancedAudio(timestampMs: number, body: Buffer, firstByte: number): FlvResult {
    const packet = readExPacket(
      body,
      firstByte & 0x0f,
      { multitrack: ExAudioPacketType.Multitrack, modEx: ExAudioPacketType.ModEx },
      (id) => (this.audioTrackId ??= id) === id,
    );
    if (!packet) return {};
    const codec = AUDIO_BY_FOURCC.get(packet.fourCc);
    if (!codec) {
      return this.notice(
        `audio codec '${printable(packet.fourCc)}' is not supported; its frames are dropped`,
      );
    }
    let result: FlvResult = {};
    if (packet.packetType === ExAudioPacketType.SequenceStart) {
      result = codec === 'aac' ? this.aacConfig(packet.payload, 2) : this.opusConfig(packet.payload);
    } else if (packet.packetType === ExAudioPacketType.CodedFrames) {
      result = this.audioFrame(codec, timestampMs, packet.payload);
    }
    if (packet.droppedTracks) {
      const note = this.noticeText(
        `multitrack audio: only track ${packet.trackId} is kept, other tracks are dropped`,
      );
      if (note) result.notice = note;
    }
    return result;
  }

  private aacConfig(payload: Buffer, channelHint: number): FlvResult {
    const config = audioConfig(payload);
    if (!config) return {};
    const previous = this.tracks.audio;
    if (previous?.codec === 'aac' && previous.config.equals(payload)) return {};
    const audio: AudioTrack = {
      kind: 'audio',
      codec: 'aac',
      config: Buffer.from(payload),
      sampleRate: config.sampleRate,
      channels: config.channels || channelHint,
    };
    this.tracks = { ...this.tracks, audio };
    return { tracks: this.currentTracks() };
  }

  /**
   * Opus: the sequence start is an OpusHead (RFC 7845 §5.1) or empty (then mono/stereo, and we
   * take stereo). The bus's Opus track carries no config; its channel count is what outputs need.
   */
  private opusConfig(head: Buffer): FlvResult {
    const channels =
      head.length >= 10 && head.toString('latin1', 0, 8) === 'OpusHead' ? head.readUInt8(9) : 2;
    if (channels < 1) return {};
    const previous = this.tracks.audio;
    if (previous?.codec === 'opus' && previous.channels === channels) return {};
    const audio: AudioTrack = {
      kind: 'audio',
      codec: 'opus',
      config: Buffer.alloc(0),
      sampleRate: OPUS_RATE,
      channels,
    };
    this.tracks = { ...this.tracks, audio };
    return { tracks: this.currentTracks() };
  }

  private audioFrame(codec: AudioCodec, timestampMs: number, payload: Buffer): FlvResult {
    if (this.tracks.audio?.codec !== codec || payload.length === 0) return {};
    const ts = timestampMs * MS_TO_90K;
    return { frame: { kind: 'audio', dts: ts, pts: ts, keyframe: true, data: payload } };
  }

  private videoConfig(codec: VideoCodec, config: Buffer): FlvResult {
    if (!plausibleConfig(codec, config)) return {};
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

  /** `{ notice }` the first time this text comes up, `{}` after. */
  private notice(text: string): FlvResult {
    const note = this.noticeText(text);
    return note ? { notice: note } : {};
  }

  private noticeText(text: string): string | undefined {
    // Bounded: a hostile publisher cycling FourCCs must not grow this set without limit.
    if (this.noticed.has(text) || this.noticed.size >= 32) return undefined;
    this.noticed.add(text);
    return text;
  }
}

/**
 * Whether a sequence header could be the codec's configuration record: avcC and hvcC start with
 * configurationVersion 1; av1C with marker+version 0x81; vpcC is a FullBox (version 1, 3 flag bytes)
 * followed by at least profile, level, bit depth/chroma and the colour fields.
 */
function plausibleConfig(codec: VideoCodec, config: Buffer): boolean {
  switch (codec) {
    case 'h264':
    case 'h265':
      return config.length >= 7 && config[0] === 1;
    case 'av1':
      return config.length >= 4 && config[0] === 0x81;
    case 'vp9':
      return config.length >= 12 && config[0] === 1;
  }
}

/** A FourCC from the wire as it may appear in a log line. */
function printable(fourCc: string): string {
  return fourCc.replace(/[^\x20-\x7e]/g, '?');
}

// ---------------------------------------------------------------------------------------------
// Media model → tag bodies
//
// Viewers get legacy tags for H.264 and AAC (every RTMP player reads them) and Enhanced RTMP for
// the rest, which only E-RTMP players (ffmpeg 6.1+, OBS 30+, GStreamer 1.24+) can read anyway.

/** Rounds a 90 kHz timestamp to FLV/RTMP milliseconds. */
export function flvTimestamp(dts90k: number): number {
  return Math.round(dts90k / MS_TO_90K);
}

/** The video sequence-header tag body: AVC packet type 0 with avcC, or Enhanced RTMP SequenceStart. */
export function videoSequenceHeader(track: VideoTrack): Buffer {
  if (track.codec !== 'h264') {
    return Buffer.concat([
      enhancedVideoHeader(FrameType.Key, ExPacketType.SequenceStart, track.codec),
      track.config,
    ]);
  }
  return Buffer.concat([
    Buffer.of((FrameType.Key << 4) | VideoCodecId.Avc, AvcPacketType.SequenceHeader, 0, 0, 0),
    track.config,
  ]);
}

/** The video tag body for one access unit of `codec`: legacy AVC, or Enhanced RTMP for the others. */
export function videoTagBody(frame: Frame, codec: VideoCodec = 'h264'): Buffer {
  const frameType = frame.keyframe ? FrameType.Key : FrameType.Inter;
  if (codec === 'av1' || codec === 'vp9') {
    return Buffer.concat([enhancedVideoHeader(frameType, ExPacketType.CodedFrames, codec), frame.data]);
  }
  const compositionTimeMs = flvTimestamp(frame.pts) - flvTimestamp(frame.dts);
  if (codec === 'h265') {
    if (compositionTimeMs === 0) {
      return Buffer.concat([enhancedVideoHeader(frameType, ExPacketType.CodedFramesX, codec), frame.data]);
    }
    const cts = Buffer.alloc(3);
    cts.writeIntBE(clampInt24(compositionTimeMs), 0, 3);
    return Buffer.concat([enhancedVideoHeader(frameType, ExPacketType.CodedFrames, codec), cts, frame.data]);
  }
  const header = Buffer.alloc(5);
  header[0] = (frameType << 4) | VideoCodecId.Avc;
  header[1] = AvcPacketType.Nalu;
  header.writeIntBE(clampInt24(compositionTimeMs), 2, 3);
  return Buffer.concat([header, frame.data]);
}

/** The audio sequence-header tag body: legacy AAC (AACPacketType 0 + ASC), or Enhanced RTMP Opus + OpusHead. */
export function audioSequenceHeader(track: AudioTrack): Buffer {
  if (track.codec === 'opus') {
    return Buffer.concat([
      enhancedAudioHeader(ExAudioPacketType.SequenceStart, 'opus'),
      opusHead(track.channels),
    ]);
  }
  return Buffer.concat([Buffer.of(aacTagByte(track), 0), track.config]);
}

/** The audio tag body for one frame: legacy AAC raw (AACPacketType 1), or Enhanced RTMP Opus CodedFrames. */
export function audioTagBody(frame: Frame, track: AudioTrack): Buffer {
  if (track.codec === 'opus') {
    return Buffer.concat([enhancedAudioHeader(ExAudioPacketType.CodedFrames, 'opus'), frame.data]);
  }
  return Buffer.concat([Buffer.of(aacTagByte(track), 1), frame.data]);
}

/** The script tag body `"onMetaData", {ECMA array}` that players read before the first frame. */
export function onMetaData(tracks: Tracks): Buffer {
  const meta: Amf0Object = {};
  const { video, audio } = tracks;
  if (video) {
    if (video.width !== undefined) meta.width = video.width;
    if (video.height !== undefined) meta.height = video.height;
    // Enhanced RTMP signals its codecs by the FourCC as a number in videocodecid/audiocodecid.
    meta.videocodecid = video.codec === 'h264' ? VideoCodecId.Avc : fourCcNumber(VIDEO_FOURCC[video.codec]);
  }
  if (audio) {
    meta.audiocodecid = audio.codec === 'aac' ? SoundFormat.Aac : fourCcNumber(AUDIO_FOURCC[audio.codec]);
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

/** The ExVideoTagHeader for one codec: IsExHeader, FrameType, PacketType, FourCC. */
export function enhancedVideoHeader(frameType: number, packetType: number, codec: VideoCodec): Buffer {
  const header = Buffer.alloc(5);
  header[0] = 0x80 | (frameType << 4) | packetType;
  header.write(VIDEO_FOURCC[codec], 1, 'latin1');
  return header;
}

/** The ExAudioTagHeader for one codec: SoundFormat ExHeader, AudioPacketType, FourCC. */
export function enhancedAudioHeader(packetType: number, codec: AudioCodec): Buffer {
  const header = Buffer.alloc(5);
  header[0] = (SoundFormat.ExHeader << 4) | packetType;
  header.write(AUDIO_FOURCC[codec], 1, 'latin1');
  return header;
}

/** A minimal OpusHead (RFC 7845 §5.1): version 1, mapping family 0 (mono/stereo) or 1 beyond. */
export function opusHead(channels: number): Buffer {
  const family = channels > 2 ? 1 : 0;
  const head = Buffer.alloc(family ? 21 + channels : 19);
  head.write('OpusHead', 0, 'latin1');
  head[8] = 1;
  head[9] = channels;
  head.writeUInt16LE(312, 10); // pre-skip libopus uses at 48 kHz
  head.writeUInt32LE(OPUS_RATE, 12);
  head.writeInt16LE(0, 16);
  head[18] = family;
  if (family) {
    // Vorbis channel order, every channel its own uncoupled stream: decodable, if not optimal.
    head[19] = channels;
    head[20] = 0;
    for (let i = 0; i < channels; i++) head[21 + i] = i;
  }
  return head;
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
  // AV1 and VP9 sizes sit in bitstream headers no output here needs; the size stays unknown.
  if (codec === 'av1' || codec === 'vp9') return undefined;
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
