/**
 * H.265 over RTP (RFC 7798) without decoding-order numbers (sprop-max-don-diff absent or 0,
 * which is what ffmpeg, GStreamer and cameras send): a packetizer that sends each NAL unit as
 * a single-NAL packet or as fragmentation units (type 49), and a depacketizer that accepts
 * single NAL units, aggregation packets (type 48) and fragmentation units and groups them
 * into access units. Pure. Hand-written: no maintained npm package does RFC 7798.
 */
import { buildHvcC, HevcNalType, hevcNalType, isIrap, parseHvcC } from '../../../src/media/h265.js';
import { RtspProtocolError } from './errors.js';
import { NalAssembler, NalPacketizer } from './nal-rtp.js';
import type { PacketizerOptions } from './rtp.js';

/** RFC 7798 §4.4.2 and §4.4.3 payload header types. */
const AP = 48;
const FU = 49;
/** RFC 7798 §4.4.4: payload content information, an optional wrapper senders rarely use. */
const PACI = 50;

/** Access units into RTP packets (RFC 7798 §4.1), large NAL units as fragmentation units. */
export class H265Packetizer extends NalPacketizer {
  constructor(options: PacketizerOptions) {
    super(options, 4);
  }

  protected isNal(nal: Buffer): boolean {
    return nal.length >= 3; // a 2-byte header and no payload is not a NAL unit
  }

  protected fragments(nal: Buffer): Uint8Array[][] {
    // §4.4.3: the payload header keeps F, LayerId and TID of the NAL unit with Type = 49;
    // the FU header carries S, E and the NAL unit's type.
    const header = Uint8Array.of(((nal[0] ?? 0) & 0x81) | (FU << 1), nal[1] ?? 0);
    const type = hevcNalType(nal);
    const chunk = this.maxPayload - 3;
    const out: Uint8Array[][] = [];
    for (let pos = 2; pos < nal.length; pos += chunk) {
      const end = Math.min(nal.length, pos + chunk);
      const fuHeader = (pos === 2 ? 0x80 : 0) | (end === nal.length ? 0x40 : 0) | type;
      out.push([header, Uint8Array.of(fuHeader), nal.subarray(pos, end)]);
    }
    return out;
  }
}

/** One received picture. */
export interface H265AccessUnit {
  /** RTP timestamp (90 kHz). */
  readonly timestamp: number;
  readonly nals: Buffer[];
  /** An IRAP NAL unit is present. */
  readonly keyframe: boolean;
  /** A new hvcC when this access unit carried a VPS, SPS or PPS that differs from the previous one. */
  readonly config?: Buffer;
}

/**
 * H.265 access units from RTP (RFC 7798 without DONL): single NAL units, aggregation packets
 * and fragmentation units; the grouping into access units is NalAssembler's.
 */
export class H265Depacketizer extends NalAssembler<H265AccessUnit> {
  private vps: Buffer | undefined;
  private sps: Buffer | undefined;
  private pps: Buffer | undefined;

  /** `config` is the hvcC from the SDP (sprop-vps/sps/pps), when it had them. */
  constructor(config?: Buffer) {
    super('h265');
    const cfg = config ? parseHvcC(config) : undefined;
    this.vps = cfg?.vps[0];
    this.sps = cfg?.sps[0];
    this.pps = cfg?.pps[0];
  }

  protected unpack(payload: Buffer): void {
    if (payload.length < 3) throw new RtspProtocolError('h265 rtp payload is shorter than its header');
    if ((payload[0] ?? 0) & 0x80) throw new RtspProtocolError('h265 rtp payload header has the F bit set');
    const type = hevcNalType(payload);
    if (type < AP) {
      this.add(payload);
    } else if (type === AP) {
      // §4.4.2 without DONL: 16-bit size, then the NAL unit, repeated.
      let pos = 2;
      while (pos + 2 <= payload.length) {
        const size = payload.readUInt16BE(pos);
        pos += 2;
        if (size < 2 || pos + size > payload.length) {
          throw new RtspProtocolError(`h265 aggregation unit of ${size} bytes overruns the packet`);
        }
        this.add(payload.subarray(pos, pos + size));
        pos += size;
      }
    } else if (type === FU) {
      const fuHeader = payload[2] ?? 0;
      const start = (fuHeader & 0x80) !== 0;
      const body = payload.subarray(3);
      // §4.4.3: the NAL header is the payload header with the FU's type put back.
      const first = start
        ? Buffer.concat([
            Uint8Array.of(((payload[0] ?? 0) & 0x81) | ((fuHeader & 0x3f) << 1), payload[1] ?? 0),
            body,
          ])
        : body;
      this.fragment(start, (fuHeader & 0x40) !== 0, first);
    } else if (type === PACI) {
      // Only payload information for middleboxes; the NAL units it wraps are rare enough to drop.
      return;
    } else {
      throw new RtspProtocolError(`h265 rtp payload type ${type} is reserved`);
    }
  }

  protected accessUnit(timestamp: number, nals: Buffer[]): H265AccessUnit {
    let keyframe = false;
    let changed = false;
    for (const nal of nals) {
      const t = hevcNalType(nal);
      if (isIrap(nal)) keyframe = true;
      else if (t === HevcNalType.VPS && !this.vps?.equals(nal)) {
        this.vps = Buffer.from(nal);
        changed = true;
      } else if (t === HevcNalType.SPS && !this.sps?.equals(nal)) {
        this.sps = Buffer.from(nal);
        changed = true;
      } else if (t === HevcNalType.PPS && !this.pps?.equals(nal)) {
        this.pps = Buffer.from(nal);
        changed = true;
      }
    }
    const config =
      changed && this.vps && this.sps && this.pps ? buildHvcC([this.vps], [this.sps], [this.pps]) : undefined;
    return { timestamp, nals, keyframe, ...(config ? { config } : {}) };
  }
}
