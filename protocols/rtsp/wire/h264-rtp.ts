/**
 * H.264 over RTP (RFC 6184), packetization-mode 1: a packetizer that sends each NAL unit as a
 * single-NAL packet or as FU-A fragments, and a depacketizer that accepts single NAL units,
 * STAP-A and FU-A and groups them into access units. Pure.
 */
import { buildAvcC, NalType, nalType, parseAvcC } from '../../../src/media/h264.js';
import { RtspProtocolError } from './errors.js';
import { type RtpPacket, writeRtp } from './rtp.js';

/**
 * Largest RTP payload we produce: a 1500-byte Ethernet MTU minus IPv4/UDP/RTP headers (40
 * bytes) leaves 1460; 1400 leaves room for tunnels (VPNs, PPPoE) so UDP viewers see no IP
 * fragmentation. TCP-interleaved viewers get the same packets: they are built once per stream.
 */
export const DEFAULT_MAX_PAYLOAD = 1400;

/** RFC 6184 §5.4 NAL unit types for aggregation and fragmentation packets. */
const STAP_A = 24;
const FU_A = 28;

export interface PacketizerOptions {
  readonly payloadType: number;
  readonly ssrc: number;
  /** First sequence number; RFC 3550 §5.1 wants it random. */
  readonly initialSequence?: number;
  /** Largest RTP payload; defaults to DEFAULT_MAX_PAYLOAD. */
  readonly maxPayload?: number;
}

/** Turns access units into RTP packets; the marker bit is set on the last packet of each access unit (RFC 6184 §5.1). */
export class H264Packetizer {
  /** Sequence number of the next packet. */
  sequence: number;
  private readonly maxPayload: number;

  constructor(private readonly options: PacketizerOptions) {
    this.sequence = (options.initialSequence ?? 0) & 0xffff;
    this.maxPayload = options.maxPayload ?? DEFAULT_MAX_PAYLOAD;
    if (this.maxPayload < 3) throw new RangeError(`maxPayload ${this.maxPayload} is below 3`);
  }

  packetize(nals: readonly Buffer[], timestamp: number): Buffer[] {
    const payloads: Uint8Array[][] = [];
    for (const nal of nals) {
      if (nal.length === 0) continue;
      if (nal.length <= this.maxPayload) {
        payloads.push([nal]);
        continue;
      }
      // FU-A (RFC 6184 §5.8): the NAL header is replaced by FU indicator + FU header.
      const header = nal[0] ?? 0;
      const indicator = (header & 0xe0) | FU_A;
      const type = header & 0x1f;
      const chunk = this.maxPayload - 2;
      for (let pos = 1; pos < nal.length; pos += chunk) {
        const end = Math.min(nal.length, pos + chunk);
        const fuHeader = (pos === 1 ? 0x80 : 0) | (end === nal.length ? 0x40 : 0) | type;
        payloads.push([Uint8Array.of(indicator, fuHeader), nal.subarray(pos, end)]);
      }
    }
    return payloads.map((parts, i) =>
      writeRtp(
        {
          marker: i === payloads.length - 1,
          payloadType: this.options.payloadType,
          sequence: this.sequence++ & 0xffff,
          timestamp,
          ssrc: this.options.ssrc,
        },
        parts,
      ),
    );
  }
}

/** One received picture. */
export interface H264AccessUnit {
  /** RTP timestamp (90 kHz). */
  readonly timestamp: number;
  readonly nals: Buffer[];
  /** An IDR NAL unit is present. */
  readonly keyframe: boolean;
  /** A new avcC when this access unit carried an SPS or PPS that differs from the previous one. */
  readonly config?: Buffer;
}

/**
 * Largest NAL unit reassembled from FU-A fragments. An intra-coded 4K picture at broadcast
 * quality is 1–2 MB; 8 MiB leaves headroom and stops a sender that never sets the end bit.
 */
export const MAX_NAL_BYTES = 8 * 1024 * 1024;
/** NAL units per access unit; encoders use at most a few hundred slices per picture. */
export const MAX_NALS_PER_ACCESS_UNIT = 1024;

/**
 * Groups RTP packets into access units: an access unit ends at a packet with the marker bit
 * or when the timestamp changes (a sender that never sets the marker, RFC 6184 §5.1). Lost
 * packets (a sequence gap) drop the FU-A being reassembled, never the connection.
 */
export class H264Depacketizer {
  private nals: Buffer[] = [];
  private bytes = 0;
  private timestamp: number | undefined;
  private fu: { header: number; parts: Buffer[]; size: number } | undefined;
  private lastSequence: number | undefined;
  private sps: Buffer | undefined;
  private pps: Buffer | undefined;
  /** Packets that arrived after a gap in sequence numbers. */
  lost = 0;

  /** `config` is the avcC from the SDP (sprop-parameter-sets), when it had one. */
  constructor(config?: Buffer) {
    const cfg = config ? parseAvcC(config) : undefined;
    this.sps = cfg?.sps[0];
    this.pps = cfg?.pps[0];
  }

  /** Feeds one packet; returns the access units it completed (0, 1, or 2 when a timestamp change and a marker coincide). */
  push(p: RtpPacket): H264AccessUnit[] {
    const out: H264AccessUnit[] = [];
    if (this.lastSequence !== undefined && p.sequence !== ((this.lastSequence + 1) & 0xffff)) {
      this.lost++;
      this.fu = undefined;
    }
    this.lastSequence = p.sequence;
    if (this.timestamp !== undefined && p.timestamp !== this.timestamp) {
      const au = this.finish();
      if (au) out.push(au);
    }
    this.timestamp = p.timestamp;
    this.unpack(p.payload);
    if (p.marker) {
      const au = this.finish();
      if (au) out.push(au);
    }
    return out;
  }

  private unpack(payload: Buffer): void {
    if (payload.length === 0) return;
    const type = (payload[0] ?? 0) & 0x1f;
    if (type >= 1 && type <= 23) {
      this.add(payload);
    } else if (type === STAP_A) {
      // RFC 6184 §5.7.1: 16-bit size, then the NAL unit, repeated.
      let pos = 1;
      while (pos + 2 <= payload.length) {
        const size = payload.readUInt16BE(pos);
        pos += 2;
        if (size === 0 || pos + size > payload.length) {
          throw new RtspProtocolError(`stap-a unit of ${size} bytes overruns the packet`);
        }
        this.add(payload.subarray(pos, pos + size));
        pos += size;
      }
    } else if (type === FU_A) {
      this.unpackFu(payload);
    } else {
      // STAP-B, MTAP16/24 and FU-B exist only in interleaved mode (2), which we do not offer.
      throw new RtspProtocolError(`h264 rtp packet type ${type} is not allowed in packetization-mode 1`);
    }
  }

  private unpackFu(payload: Buffer): void {
    if (payload.length < 3) throw new RtspProtocolError('fu-a packet is shorter than its headers');
    const indicator = payload[0] ?? 0;
    const fuHeader = payload[1] ?? 0;
    const start = (fuHeader & 0x80) !== 0;
    const end = (fuHeader & 0x40) !== 0;
    const body = payload.subarray(2);
    if (start) {
      if (end) throw new RtspProtocolError('fu-a packet has both start and end bits');
      this.fu = { header: (indicator & 0xe0) | (fuHeader & 0x1f), parts: [body], size: 1 + body.length };
      return;
    }
    // Without its start the NAL unit cannot be rebuilt (the start was lost): wait for the next one.
    if (!this.fu) return;
    this.fu.parts.push(body);
    this.fu.size += body.length;
    if (this.fu.size > MAX_NAL_BYTES) {
      this.fu = undefined;
      throw new RtspProtocolError(`fu-a nal unit exceeds ${MAX_NAL_BYTES} bytes`);
    }
    if (end) {
      const nal = Buffer.concat([Uint8Array.of(this.fu.header), ...this.fu.parts], this.fu.size);
      this.fu = undefined;
      this.add(nal);
    }
  }

  private add(nal: Buffer): void {
    if (this.nals.length >= MAX_NALS_PER_ACCESS_UNIT || this.bytes + nal.length > MAX_NAL_BYTES) {
      this.reset();
      throw new RtspProtocolError(
        `access unit exceeds ${MAX_NALS_PER_ACCESS_UNIT} nal units or ${MAX_NAL_BYTES} bytes`,
      );
    }
    this.nals.push(nal);
    this.bytes += nal.length;
  }

  private reset(): void {
    this.nals = [];
    this.bytes = 0;
  }

  private finish(): H264AccessUnit | undefined {
    const nals = this.nals;
    const timestamp = this.timestamp;
    this.reset();
    this.fu = undefined;
    if (nals.length === 0 || timestamp === undefined) return undefined;
    let keyframe = false;
    let changed = false;
    for (const nal of nals) {
      const t = nalType(nal);
      if (t === NalType.IDR) keyframe = true;
      else if (t === NalType.SPS && !(this.sps && this.sps.equals(nal))) {
        this.sps = Buffer.from(nal);
        changed = true;
      } else if (t === NalType.PPS && !(this.pps && this.pps.equals(nal))) {
        this.pps = Buffer.from(nal);
        changed = true;
      }
    }
    const config = changed && this.sps && this.pps ? buildAvcC([this.sps], [this.pps]) : undefined;
    return { timestamp, nals, keyframe, ...(config ? { config } : {}) };
  }
}
