/**
 * H.264 over RTP (RFC 6184), packetization-mode 1: a packetizer that sends each NAL unit as a
 * single-NAL packet or as FU-A fragments, and a depacketizer that accepts single NAL units,
 * STAP-A and FU-A and groups them into access units. Pure.
 */
import { buildAvcC, NalType, nalType, parseAvcC } from '../../../src/media/h264.js';
import { RtspProtocolError } from './errors.js';
import { NalAssembler, NalPacketizer } from './nal-rtp.js';
import type { PacketizerOptions } from './rtp.js';

/** RFC 6184 §5.4 NAL unit types for aggregation and fragmentation packets. */
const STAP_A = 24;
const FU_A = 28;

/** Turns access units into RTP packets (RFC 6184 §5.1), large NAL units as FU-A. */
export class H264Packetizer extends NalPacketizer {
  constructor(options: PacketizerOptions) {
    super(options, 3);
  }

  protected isNal(nal: Buffer): boolean {
    return nal.length > 0;
  }

  protected fragments(nal: Buffer): Uint8Array[][] {
    // FU-A (RFC 6184 §5.8): the NAL header is replaced by FU indicator + FU header.
    const header = nal[0] ?? 0;
    const indicator = (header & 0xe0) | FU_A;
    const type = header & 0x1f;
    const chunk = this.maxPayload - 2;
    const out: Uint8Array[][] = [];
    for (let pos = 1; pos < nal.length; pos += chunk) {
      const end = Math.min(nal.length, pos + chunk);
      const fuHeader = (pos === 1 ? 0x80 : 0) | (end === nal.length ? 0x40 : 0) | type;
      out.push([Uint8Array.of(indicator, fuHeader), nal.subarray(pos, end)]);
    }
    return out;
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
 * H.264 access units from RTP (RFC 6184, packetization-mode 1): single NAL units, STAP-A and
 * FU-A; the grouping into access units is NalAssembler's.
 */
export class H264Depacketizer extends NalAssembler<H264AccessUnit> {
  private sps: Buffer | undefined;
  private pps: Buffer | undefined;

  /** `config` is the avcC from the SDP (sprop-parameter-sets), when it had one. */
  constructor(config?: Buffer) {
    super('h264');
    const cfg = config ? parseAvcC(config) : undefined;
    this.sps = cfg?.sps[0];
    this.pps = cfg?.pps[0];
  }

  protected unpack(payload: Buffer): void {
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
      if (payload.length < 3) throw new RtspProtocolError('fu-a packet is shorter than its headers');
      const indicator = payload[0] ?? 0;
      const fuHeader = payload[1] ?? 0;
      const start = (fuHeader & 0x80) !== 0;
      const body = payload.subarray(2);
      // §5.8: the NAL header is the indicator's F and NRI with the FU header's type.
      const first = start
        ? Buffer.concat([Uint8Array.of((indicator & 0xe0) | (fuHeader & 0x1f)), body])
        : body;
      this.fragment(start, (fuHeader & 0x40) !== 0, first);
    } else {
      // STAP-B, MTAP16/24 and FU-B exist only in interleaved mode (2), which we do not offer.
      throw new RtspProtocolError(`h264 rtp packet type ${type} is not allowed in packetization-mode 1`);
    }
  }

  protected accessUnit(timestamp: number, nals: Buffer[]): H264AccessUnit {
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
