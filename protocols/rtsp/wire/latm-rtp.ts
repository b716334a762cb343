/**
 * AAC as MP4A-LATM over RTP (RFC 6416 §6, the successor of RFC 3016), receive side only:
 * the payload format GStreamer's rtspclientsink picks for AAC. With `cpresent=0` the
 * StreamMuxConfig is out of band, hex-coded in the SDP's `config`; each RTP packet then
 * carries AudioMuxElements (ISO/IEC 14496-3 §1.7.3): per subframe a PayloadLengthInfo
 * (bytes of 255 summed up to the first byte that is not) and the raw AAC frame. An element
 * too large for one packet is fragmented, the marker bit set on its last fragment.
 * Hand-written: no maintained npm package parses LATM. Pure.
 */
import { AAC_FRAME_SAMPLES, parseAudioSpecificConfig, type AacConfig } from '../../../src/media/aac.js';
import { RtspProtocolError } from './errors.js';
import type { RtpPacket } from './rtp.js';

/** An AudioMuxElement reassembled from fragments above this size is not AAC (the largest AAC frame is 6144 bits per channel). */
const MAX_MUX_ELEMENT = 64 * 1024;

/** MSB-first bit reader that knows its position, for copying a non-aligned AudioSpecificConfig out. */
class Bits {
  pos = 0;
  constructor(private readonly buf: Uint8Array) {}
  read(n: number): number {
    let v = 0;
    for (let i = 0; i < n; i++) {
      const byte = this.buf[this.pos >> 3];
      if (byte === undefined) throw new RtspProtocolError('latm config is truncated');
      v = v * 2 + ((byte >> (7 - (this.pos & 7))) & 1);
      this.pos++;
    }
    return v;
  }
  /** The bits [from, to) as bytes, left-aligned and zero-padded. */
  slice(from: number, to: number): Buffer {
    const out = Buffer.alloc(Math.ceil((to - from) / 8));
    const saved = this.pos;
    this.pos = from;
    for (let i = 0; i < to - from; i++) {
      if (this.read(1)) out[i >> 3] = (out[i >> 3] ?? 0) | (0x80 >> (i & 7));
    }
    this.pos = saved;
    return out;
  }
}

/** LatmGetValue() (§1.7.3 Table 1.42): 2 bits of byte count, then that many bytes plus one. */
function latmValue(b: Bits): number {
  const bytes = b.read(2);
  let v = 0;
  for (let i = 0; i <= bytes; i++) v = v * 256 + b.read(8);
  return v;
}

function objectType(b: Bits): number {
  const t = b.read(5);
  return t === 31 ? 32 + b.read(6) : t;
}

function rate(b: Bits): void {
  if (b.read(4) === 0xf) b.read(24);
}

/** GA object types whose AudioSpecificConfig is a GASpecificConfig (§1.6.2.1). */
const GA_TYPES = new Set([1, 2, 3, 4, 6, 7, 17, 19, 20, 21, 22, 23]);
/** Error-resilient object types, which end the config with epConfig. */
const ER_TYPES = new Set([17, 19, 20, 21, 22, 23, 24, 25, 26, 27, 39]);

/**
 * Reads past one AudioSpecificConfig (§1.6.2.1) so that what follows it can be read; `end`
 * is the last bit the config may reach, for the optional sync extension at its end.
 */
function skipAudioSpecificConfig(b: Bits, end: number): void {
  let aot = objectType(b);
  rate(b);
  const channelConfig = b.read(4);
  if (aot === 5 || aot === 29) {
    rate(b);
    aot = objectType(b);
    if (aot === 22) b.read(4);
  }
  if (!GA_TYPES.has(aot)) throw new RtspProtocolError(`latm audio object type ${aot} is not supported`);
  b.read(1); // frameLengthFlag
  if (b.read(1)) b.read(14); // dependsOnCoreCoder → coreCoderDelay
  const extensionFlag = b.read(1);
  if (channelConfig === 0) {
    throw new RtspProtocolError('latm config with a program_config_element is not supported');
  }
  if (aot === 6 || aot === 20) b.read(3);
  if (extensionFlag) {
    if (aot === 22) b.read(16);
    if (aot === 17 || aot === 19 || aot === 20 || aot === 23) b.read(3);
    b.read(1); // extensionFlag3
  }
  if (ER_TYPES.has(aot) && b.read(2) >= 2) {
    throw new RtspProtocolError('latm config with epConfig 2 or 3 is not supported');
  }
  skipSyncExtension(b, end);
}

/** The backward-compatible SBR/PS signalling an AudioSpecificConfig may end with (§1.6.5.2; GStreamer writes it). */
const SYNC_SBR = 0x2b7;
const SYNC_PS = 0x548;

function peek(b: Bits, n: number, end: number): number | undefined {
  if (b.pos + n > end) return undefined;
  const at = b.pos;
  const v = b.read(n);
  b.pos = at;
  return v;
}

function skipSyncExtension(b: Bits, end: number): void {
  if (peek(b, 11, end) !== SYNC_SBR) return;
  b.read(11);
  const ext = objectType(b);
  if (ext === 5 && b.read(1)) {
    rate(b);
    if (peek(b, 11, end) === SYNC_PS) {
      b.read(11);
      b.read(1); // psPresentFlag
    }
  } else if (ext === 22 && b.read(1)) {
    rate(b);
    b.read(4); // extensionChannelConfiguration
  }
}

export interface LatmConfig {
  /** The AudioSpecificConfig inside the StreamMuxConfig, byte-aligned. */
  readonly asc: Buffer;
  readonly aac: AacConfig;
  /** AudioMuxElement subframes per element (numSubFrames + 1). */
  readonly subFrames: number;
}

/**
 * StreamMuxConfig (§1.7.3 Table 1.42) → the AudioSpecificConfig of its one program and
 * layer. Only what real senders emit is accepted: one program, one layer, frameLengthType 0
 * (byte-counted payloads), all streams on the same time framing. Throws RtspProtocolError
 * (415) for anything else, so the ANNOUNCE is refused with the reason.
 */
export function parseStreamMuxConfig(config: Buffer): LatmConfig {
  try {
    const b = new Bits(config);
    const version = b.read(1);
    if (version === 1 && b.read(1) === 1) throw new RtspProtocolError('latm audioMuxVersionA 1 is reserved');
    if (version === 1) latmValue(b); // taraBufferFullness
    if (b.read(1) !== 1) {
      throw new RtspProtocolError('latm without allStreamsSameTimeFraming is not supported');
    }
    const subFrames = b.read(6) + 1;
    if (b.read(4) !== 0) throw new RtspProtocolError('latm with more than one program is not supported');
    if (b.read(3) !== 0) throw new RtspProtocolError('latm with more than one layer is not supported');
    // Version 1 gives the config's length, fill bits included; version 0 ends it where it ends.
    const ascLen = version === 1 ? latmValue(b) : undefined;
    const ascStart = b.pos;
    // Version 0 leaves the end open: after the config come at least frameLengthType (3 bits)
    // and latmBufferFullness (8), otherDataPresent and crcCheckPresent (1 each).
    skipAudioSpecificConfig(b, ascLen !== undefined ? ascStart + ascLen : config.length * 8 - 13);
    const ascEnd = b.pos;
    if (ascLen !== undefined) {
      if (ascLen < ascEnd - ascStart) throw new RtspProtocolError('latm ascLen is shorter than the config');
      b.pos = ascStart + ascLen;
    }
    const frameLengthType = b.read(3);
    if (frameLengthType !== 0) {
      throw new RtspProtocolError(`latm frameLengthType ${frameLengthType} is not supported`);
    }
    const asc = b.slice(ascStart, ascEnd);
    const aac = parseAudioSpecificConfig(asc);
    if (!aac) throw new RtspProtocolError('latm AudioSpecificConfig is unreadable');
    return { asc, aac, subFrames };
  } catch (err) {
    if (err instanceof RtspProtocolError) throw new RtspProtocolError(err.message, 415);
    throw err;
  }
}

export interface LatmAccessUnit {
  /** RTP timestamp (the SDP's clock) of this frame. */
  readonly timestamp: number;
  readonly frame: Buffer;
}

export class LatmDepacketizer {
  private parts: Buffer[] = [];
  private size = 0;
  private timestamp: number | undefined;
  private lastSequence: number | undefined;
  /** RTP ticks per AAC frame: 1024 samples at the core rate, on the SDP's clock. */
  private readonly frameTicks: number;

  constructor(
    private readonly config: LatmConfig,
    clockRate: number,
  ) {
    this.frameTicks = Math.round((AAC_FRAME_SAMPLES * clockRate) / config.aac.sampleRate);
  }

  push(p: RtpPacket): LatmAccessUnit[] {
    if (this.lastSequence !== undefined && p.sequence !== ((this.lastSequence + 1) & 0xffff)) {
      this.drop(); // the missing packet may have been a fragment of this element
    }
    this.lastSequence = p.sequence;
    if (this.timestamp !== undefined && this.timestamp !== p.timestamp) this.drop();
    this.timestamp = p.timestamp;
    this.parts.push(p.payload);
    this.size += p.payload.length;
    if (this.size > MAX_MUX_ELEMENT) {
      this.drop();
      throw new RtspProtocolError(`latm element exceeds ${MAX_MUX_ELEMENT} bytes`);
    }
    if (!p.marker) return [];
    const data =
      this.parts.length === 1 ? (this.parts[0] ?? Buffer.alloc(0)) : Buffer.concat(this.parts, this.size);
    this.drop();
    return this.elements(data, p.timestamp);
  }

  /** One or more whole AudioMuxElements (cpresent=0, frameLengthType 0) → their AAC frames. */
  private elements(data: Buffer, timestamp: number): LatmAccessUnit[] {
    const out: LatmAccessUnit[] = [];
    let pos = 0;
    while (pos < data.length) {
      for (let s = 0; s < this.config.subFrames && pos < data.length; s++) {
        let length = 0;
        for (;;) {
          const byte = data[pos++];
          if (byte === undefined) throw new RtspProtocolError('latm payloadLengthInfo is truncated');
          length += byte;
          if (byte !== 0xff) break;
        }
        if (pos + length > data.length) {
          throw new RtspProtocolError(`latm payload of ${length} bytes overruns the element`);
        }
        out.push({
          timestamp: (timestamp + out.length * this.frameTicks) >>> 0,
          frame: data.subarray(pos, pos + length),
        });
        pos += length;
      }
    }
    return out;
  }

  private drop(): void {
    this.parts = [];
    this.size = 0;
  }
}
