/**
 * What H.264 (RFC 6184) and H.265 (RFC 7798) over RTP share, both ways. Sending: NAL units
 * that fit go whole, larger ones as fragmentation units, the marker on an access unit's last
 * packet. Receiving: packets are grouped into access units, which end at a packet with the
 * marker bit or when the timestamp changes (for senders that never set the marker);
 * fragmentation units are reassembled into one NAL unit; a sequence gap counts a loss and
 * drops the fragment being rebuilt, never the connection. The codec subclasses read and
 * write their payload headers and say what an access unit is. Pure.
 */
import { RtspProtocolError } from './errors.js';
import { DEFAULT_MAX_PAYLOAD, type PacketizerOptions, type RtpPacket, writeRtp } from './rtp.js';

/**
 * Largest NAL unit reassembled from fragments (and largest access unit). An intra-coded 4K
 * picture at broadcast quality is 1–2 MB; 8 MiB leaves headroom and stops a sender that never
 * sets the end bit.
 */
export const MAX_NAL_BYTES = 8 * 1024 * 1024;
/** NAL units per access unit; encoders use at most a few hundred slices per picture. */
export const MAX_NALS_PER_ACCESS_UNIT = 1024;

/** Access units into RTP packets; the codec subclass says how a NAL unit too large for one packet is split. */
export abstract class NalPacketizer {
  /** Sequence number of the next packet. */
  sequence: number;
  protected readonly maxPayload: number;

  /** `minPayload`: the codec's fragmentation headers plus one byte of NAL unit. */
  constructor(
    private readonly options: PacketizerOptions,
    minPayload: number,
  ) {
    this.sequence = (options.initialSequence ?? 0) & 0xffff;
    this.maxPayload = options.maxPayload ?? DEFAULT_MAX_PAYLOAD;
    if (this.maxPayload < minPayload) {
      throw new RangeError(`maxPayload ${this.maxPayload} is below ${minPayload}`);
    }
  }

  packetize(nals: readonly Buffer[], timestamp: number): Buffer[] {
    const payloads: Uint8Array[][] = [];
    for (const nal of nals) {
      if (!this.isNal(nal)) continue;
      if (nal.length <= this.maxPayload) payloads.push([nal]);
      else payloads.push(...this.fragments(nal));
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

  /** Whether the bytes are a NAL unit worth sending (a header alone is not). */
  protected abstract isNal(nal: Buffer): boolean;

  /** The payloads (as parts) of the fragmentation units carrying `nal`. */
  protected abstract fragments(nal: Buffer): Uint8Array[][];
}

export abstract class NalAssembler<AccessUnit> {
  private nals: Buffer[] = [];
  private bytes = 0;
  private timestamp: number | undefined;
  private fu: { parts: Buffer[]; size: number } | undefined;
  private lastSequence: number | undefined;
  /** Packets that arrived after a gap in sequence numbers. */
  lost = 0;

  /** `codec` names the format in protocol errors (`h264`, `h265`). */
  constructor(private readonly codec: string) {}

  /** Feeds one packet; returns the access units it completed (two when a timestamp change and a marker coincide). */
  push(p: RtpPacket): AccessUnit[] {
    const out: AccessUnit[] = [];
    if (this.lastSequence !== undefined && p.sequence !== ((this.lastSequence + 1) & 0xffff)) {
      this.lost++;
      this.fu = undefined;
    }
    this.lastSequence = p.sequence;
    if (this.timestamp !== undefined && p.timestamp !== this.timestamp) {
      const au = this.finish();
      if (au !== undefined) out.push(au);
    }
    this.timestamp = p.timestamp;
    this.unpack(p.payload);
    if (p.marker) {
      const au = this.finish();
      if (au !== undefined) out.push(au);
    }
    return out;
  }

  /** Reads one packet's payload: whole NAL units go to `add`, fragments to `fragment`. */
  protected abstract unpack(payload: Buffer): void;

  /** The access unit these NAL units make (parameter sets seen, keyframe), or none. */
  protected abstract accessUnit(timestamp: number, nals: Buffer[]): AccessUnit | undefined;

  protected add(nal: Buffer): void {
    if (this.nals.length >= MAX_NALS_PER_ACCESS_UNIT || this.bytes + nal.length > MAX_NAL_BYTES) {
      this.nals = [];
      this.bytes = 0;
      throw new RtspProtocolError(
        `access unit exceeds ${MAX_NALS_PER_ACCESS_UNIT} nal units or ${MAX_NAL_BYTES} bytes`,
      );
    }
    this.nals.push(nal);
    this.bytes += nal.length;
  }

  /**
   * One fragment of a NAL unit. The first carries the rebuilt NAL header in front of its body;
   * a fragment whose start was lost is dropped until the next start.
   */
  protected fragment(start: boolean, end: boolean, body: Buffer): void {
    if (start) {
      if (end) throw new RtspProtocolError(`${this.codec} fragmentation unit has both start and end bits`);
      this.fu = { parts: [body], size: body.length };
      return;
    }
    if (!this.fu) return;
    this.fu.parts.push(body);
    this.fu.size += body.length;
    if (this.fu.size > MAX_NAL_BYTES) {
      this.fu = undefined;
      throw new RtspProtocolError(`${this.codec} fragmented nal unit exceeds ${MAX_NAL_BYTES} bytes`);
    }
    if (end) {
      const nal = Buffer.concat(this.fu.parts, this.fu.size);
      this.fu = undefined;
      this.add(nal);
    }
  }

  private finish(): AccessUnit | undefined {
    const nals = this.nals;
    const timestamp = this.timestamp;
    this.nals = [];
    this.bytes = 0;
    this.fu = undefined;
    if (nals.length === 0 || timestamp === undefined) return undefined;
    return this.accessUnit(timestamp, nals);
  }
}
