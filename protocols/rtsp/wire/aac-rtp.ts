/**
 * AAC over RTP as MPEG4-GENERIC in AAC-hbr mode (RFC 3640 §3.3.6): 13-bit AU sizes and 3-bit
 * indices. The packetizer sends one access unit (AAC frame) per packet, fragmenting frames
 * larger than the payload limit (§3.2.3.2); the depacketizer accepts any sizelength/
 * indexlength and several access units per packet, which is how ffmpeg sends them. Pure.
 */
import { AAC_FRAME_SAMPLES } from '../../../src/media/aac.js';
import { RtspProtocolError } from './errors.js';
import { DEFAULT_MAX_PAYLOAD, type PacketizerOptions, type RtpPacket, writeRtp } from './rtp.js';

/** AAC-hbr AU-size field width (RFC 3640 §3.3.6): frames up to 8191 bytes. */
const HBR_SIZE_BITS = 13;

export class AacPacketizer {
  sequence: number;
  private readonly maxPayload: number;

  constructor(private readonly options: PacketizerOptions) {
    this.sequence = (options.initialSequence ?? 0) & 0xffff;
    this.maxPayload = options.maxPayload ?? DEFAULT_MAX_PAYLOAD;
    if (this.maxPayload < 5) throw new RangeError(`maxPayload ${this.maxPayload} is below 5`);
  }

  /** One AAC frame at an RTP timestamp (sample-rate clock) → one packet, or fragments of it. */
  packetize(frame: Buffer, timestamp: number): Buffer[] {
    if (frame.length === 0) return [];
    if (frame.length >= 1 << HBR_SIZE_BITS) {
      throw new RangeError(`aac frame of ${frame.length} bytes does not fit a 13-bit AU-size`);
    }
    // AU-headers-length = 16 bits (one header), then AU-size(13) | AU-Index(3) = 0 (§3.2.1, §3.3.6).
    // A fragment carries the size of the whole AU (§3.2.3.2).
    const header = Uint8Array.of(0x00, 0x10, (frame.length >> 5) & 0xff, (frame.length << 3) & 0xf8);
    const chunk = this.maxPayload - header.length;
    const out: Buffer[] = [];
    for (let pos = 0; pos < frame.length; pos += chunk) {
      const end = Math.min(frame.length, pos + chunk);
      out.push(
        writeRtp(
          {
            marker: end === frame.length,
            payloadType: this.options.payloadType,
            sequence: this.sequence++ & 0xffff,
            timestamp,
            ssrc: this.options.ssrc,
          },
          [header, frame.subarray(pos, end)],
        ),
      );
    }
    return out;
  }
}

export interface AacAccessUnit {
  /** RTP timestamp (sample-rate clock) of this frame. */
  readonly timestamp: number;
  readonly frame: Buffer;
}

export interface AacDepacketizerOptions {
  /** From the SDP fmtp (RFC 3640 §4.1); AAC-hbr: 13, 3, 3. */
  readonly sizeLength: number;
  readonly indexLength: number;
  readonly indexDeltaLength: number;
}

/** Reads MSB-first bit fields of up to 16 bits. */
class BitCursor {
  private pos = 0;
  constructor(private readonly buf: Buffer) {}
  read(n: number): number {
    let v = 0;
    for (let i = 0; i < n; i++) {
      const byte = this.buf[this.pos >> 3];
      if (byte === undefined) throw new RtspProtocolError('aac au-header section is truncated');
      v = (v << 1) | ((byte >> (7 - (this.pos & 7))) & 1);
      this.pos++;
    }
    return v;
  }
}

export class AacDepacketizer {
  private fragments: { timestamp: number; size: number; parts: Buffer[]; got: number } | undefined;
  private lastSequence: number | undefined;

  constructor(private readonly options: AacDepacketizerOptions) {
    if (!(options.sizeLength > 0 && options.sizeLength <= 16)) {
      throw new RangeError(`sizeLength ${options.sizeLength} out of range 1..16`);
    }
  }

  push(p: RtpPacket): AacAccessUnit[] {
    if (this.lastSequence !== undefined && p.sequence !== ((this.lastSequence + 1) & 0xffff)) {
      this.fragments = undefined; // the missing packet may have been a fragment of this AU
    }
    this.lastSequence = p.sequence;
    const payload = p.payload;
    if (payload.length < 2) throw new RtspProtocolError('aac rtp payload has no au-headers-length');
    const headerBits = payload.readUInt16BE(0);
    const headerBytes = Math.ceil(headerBits / 8);
    if (2 + headerBytes > payload.length) {
      throw new RtspProtocolError('aac au-header section overruns the packet');
    }
    const { sizeLength, indexLength, indexDeltaLength } = this.options;
    const bits = new BitCursor(payload.subarray(2, 2 + headerBytes));
    const sizes: number[] = [];
    for (let used = 0; used + sizeLength <= headerBits;) {
      const indexBits = sizes.length === 0 ? indexLength : indexDeltaLength;
      sizes.push(bits.read(sizeLength));
      bits.read(indexBits); // interleaving is not used by AAC-hbr senders; the order is the packet order
      used += sizeLength + indexBits;
    }
    let data = payload.subarray(2 + headerBytes);
    const first = sizes[0] ?? 0;
    const continuing = this.fragments?.timestamp === p.timestamp && sizes.length === 1;
    if (continuing || (sizes.length === 1 && first > data.length)) return this.pushFragment(p, first, data);
    this.fragments = undefined;
    const out: AacAccessUnit[] = [];
    sizes.forEach((size, i) => {
      if (size > data.length) throw new RtspProtocolError(`aac au of ${size} bytes overruns the packet`);
      out.push({ timestamp: (p.timestamp + i * AAC_FRAME_SAMPLES) >>> 0, frame: data.subarray(0, size) });
      data = data.subarray(size);
    });
    return out;
  }

  /** RFC 3640 §3.2.3.2: a fragmented AU repeats its full size in every fragment; the marker ends it. */
  private pushFragment(p: RtpPacket, size: number, data: Buffer): AacAccessUnit[] {
    if (!this.fragments || this.fragments.timestamp !== p.timestamp || this.fragments.size !== size) {
      this.fragments = { timestamp: p.timestamp, size, parts: [], got: 0 };
    }
    const f = this.fragments;
    f.parts.push(data);
    f.got += data.length;
    if (f.got > f.size) {
      this.fragments = undefined;
      throw new RtspProtocolError(`aac fragments exceed the au size ${f.size}`);
    }
    if (!p.marker) return [];
    this.fragments = undefined;
    if (f.got !== f.size) return []; // a fragment was lost: the frame cannot be decoded
    return [{ timestamp: f.timestamp, frame: Buffer.concat(f.parts, f.size) }];
  }
}
