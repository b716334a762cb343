/**
 * What a receiver tells a sender about its RTP stream: reception statistics (RFC 3550
 * §6.4.1, computed as Appendix A.1, A.3 and A.8 describe) and the compound RTCP packet that
 * carries them, a receiver report followed by the SDES CNAME every compound packet must
 * have (§6.1). A UDP publisher (GStreamer, cameras) is sent one every few seconds, as RTCP
 * asks of a receiver. Pure: arrival times are given in seconds by the caller.
 */

const RTCP_RR = 201;
const RTCP_SDES = 202;
const SDES_CNAME = 1;
/** A jump of more than this many sequence numbers is a restarted sender (A.1's MAX_DROPOUT). */
const MAX_DROPOUT = 3000;

export class ReceptionStats {
  private ssrc: number | undefined;
  private base = 0;
  private maxSeq = 0;
  private cycles = 0;
  private received = 0;
  private expectedPrior = 0;
  private receivedPrior = 0;
  private jitter = 0;
  private transit: number | undefined;
  /** Middle 32 bits of the last sender report's NTP time, and when it arrived. */
  private lastSr: { ntpMiddle: number; at: number } | undefined;

  constructor(private readonly clockRate: number) {}

  /** Whether a packet has been received, so that there is something to report on. */
  get active(): boolean {
    return this.ssrc !== undefined;
  }

  /** One RTP packet as it arrived, before any reordering. */
  onRtp(p: { sequence: number; timestamp: number; ssrc: number }, arrival: number): void {
    if (this.ssrc !== p.ssrc) {
      // A new source (or the first): statistics start over (A.1 init_seq).
      this.ssrc = p.ssrc;
      this.base = p.sequence;
      this.maxSeq = p.sequence;
      this.cycles = 0;
      this.received = 0;
      this.expectedPrior = 0;
      this.receivedPrior = 0;
      this.jitter = 0;
      this.transit = undefined;
    }
    const delta = (p.sequence - this.maxSeq) & 0xffff;
    if (delta > 0 && delta < MAX_DROPOUT) {
      if (p.sequence < this.maxSeq) this.cycles += 0x10000;
      this.maxSeq = p.sequence;
    } else if (delta >= 0x10000 - MAX_DROPOUT || delta === 0) {
      // A late or duplicated packet: counted as received, the highest number stays.
    } else {
      // A big jump: the sender restarted its numbering.
      this.base = p.sequence;
      this.maxSeq = p.sequence;
      this.cycles = 0;
      this.received = 0;
      this.expectedPrior = 0;
      this.receivedPrior = 0;
    }
    this.received++;
    // A.8: interarrival jitter in timestamp units.
    const transit = arrival * this.clockRate - p.timestamp;
    if (this.transit !== undefined) {
      let d = Math.abs(transit - this.transit);
      // The difference of two 32-bit timestamps wraps; the shorter way round is the real one.
      if (d > 2 ** 31) d = 2 ** 32 - d;
      this.jitter += (d - this.jitter) / 16;
    }
    this.transit = transit;
  }

  /** A sender report from the source, for LSR and DLSR. */
  onSenderReport(ntpSeconds: number, arrival: number): void {
    const whole = Math.floor(ntpSeconds);
    const frac = Math.floor((ntpSeconds - whole) * 2 ** 32) >>> 0;
    this.lastSr = { ntpMiddle: (((whole & 0xffff) << 16) | (frac >>> 16)) >>> 0, at: arrival };
  }

  /**
   * The compound RTCP packet (RR with one report block, then SDES CNAME) from `reporter`
   * about this source, or undefined before the first packet. Advances the interval that the
   * fraction lost is computed over.
   */
  report(reporter: number, cname: string, now: number): Buffer | undefined {
    if (this.ssrc === undefined) return undefined;
    const extMax = this.cycles + this.maxSeq;
    const expected = extMax - this.base + 1;
    const lost = Math.max(-0x800000, Math.min(0x7fffff, expected - this.received));
    const expectedInterval = expected - this.expectedPrior;
    const receivedInterval = this.received - this.receivedPrior;
    this.expectedPrior = expected;
    this.receivedPrior = this.received;
    const lostInterval = expectedInterval - receivedInterval;
    const fraction =
      expectedInterval === 0 || lostInterval <= 0
        ? 0
        : Math.min(255, Math.floor((lostInterval * 256) / expectedInterval));
    const rr = Buffer.alloc(32);
    rr[0] = 0x81; // V=2, one report block
    rr[1] = RTCP_RR;
    rr.writeUInt16BE(7, 2);
    rr.writeUInt32BE(reporter >>> 0, 4);
    rr.writeUInt32BE(this.ssrc >>> 0, 8);
    rr.writeUInt32BE((((fraction & 0xff) << 24) | (lost & 0xffffff)) >>> 0, 12);
    rr.writeUInt32BE(extMax >>> 0, 16);
    rr.writeUInt32BE(Math.min(0xffffffff, Math.floor(this.jitter)) >>> 0, 20);
    if (this.lastSr) {
      rr.writeUInt32BE(this.lastSr.ntpMiddle, 24);
      rr.writeUInt32BE(
        Math.min(0xffffffff, Math.max(0, Math.floor((now - this.lastSr.at) * 65536))) >>> 0,
        28,
      );
    }
    return Buffer.concat([rr, sdesCname(reporter, cname)]);
  }
}

/** An SDES packet with one chunk: the CNAME item, the END item, padding to 32 bits (§6.5). */
function sdesCname(ssrc: number, cname: string): Buffer {
  const text = Buffer.from(cname.slice(0, 255), 'utf8').subarray(0, 255);
  const chunk = 4 + 2 + text.length + 1;
  const size = 4 + Math.ceil(chunk / 4) * 4;
  const out = Buffer.alloc(size);
  out[0] = 0x81; // V=2, one chunk
  out[1] = RTCP_SDES;
  out.writeUInt16BE(size / 4 - 1, 2);
  out.writeUInt32BE(ssrc >>> 0, 4);
  out[8] = SDES_CNAME;
  out[9] = text.length;
  text.copy(out, 10);
  return out;
}
