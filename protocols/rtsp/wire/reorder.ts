/**
 * Puts RTP packets received over UDP back in sequence-number order (RFC 3550 §5.1) before
 * they are depacketized: UDP may reorder and duplicate, and a fragmented NAL unit or AAC
 * frame is lost when its pieces are fed out of order. A bounded number of packets is held
 * for a bounded time waiting for a missing one; past either the gap is declared a loss and
 * skipped, which the depacketizers handle (they drop the unit the lost packet belonged to). With depth 0 (TCP,
 * which never reorders) every packet passes straight through. Pure.
 */
import type { RtpPacket } from './rtp.js';

/** A sequence jump this large is a sender that restarted, not reordering: start over from it. */
const RESTART_DISTANCE = 3000;
/**
 * Longest a packet waits for a missing one before it, in seconds: reordering on a real path
 * spans milliseconds, and a low-rate track (audio) must not lag seconds behind after a loss.
 */
export const MAX_REORDER_WAIT_S = 0.1;

export class RtpReorder {
  private expected: number | undefined;
  private readonly held = new Map<number, RtpPacket>();
  /** When the oldest packet now held arrived (seconds). */
  private heldSince = 0;
  /** Packets given up on (never arrived while `depth` others waited). */
  lost = 0;
  /** Packets dropped because they came after their turn, or twice. */
  late = 0;

  constructor(private readonly depth: number) {}

  /** One packet in (`arrival` in seconds); the packets now in order out (possibly none, possibly several). */
  push(p: RtpPacket, arrival = 0): RtpPacket[] {
    if (this.expected === undefined) return this.restart(p);
    const d = (((p.sequence - this.expected + 0x8000) & 0xffff) - 0x8000) | 0;
    if (d < 0) {
      if (-d > RESTART_DISTANCE) return this.restart(p);
      this.late++;
      return [];
    }
    if (d > RESTART_DISTANCE) return this.restart(p);
    if (d > 0) {
      if (this.held.has(p.sequence)) {
        this.late++;
        return [];
      }
      if (this.held.size === 0) this.heldSince = arrival;
      this.held.set(p.sequence, p);
      if (this.held.size <= this.depth && arrival - this.heldSince <= MAX_REORDER_WAIT_S) return [];
      // Waited long enough: the missing packets are lost; go on from the oldest one held.
      let skip = 1;
      while (!this.held.has((this.expected + skip) & 0xffff)) skip++;
      this.lost += skip;
      this.expected = (this.expected + skip) & 0xffff;
      const out = this.drain();
      this.heldSince = arrival;
      return out;
    }
    this.expected = (this.expected + 1) & 0xffff;
    return [p, ...this.drain()];
  }

  private drain(): RtpPacket[] {
    const out: RtpPacket[] = [];
    for (;;) {
      const next = this.expected === undefined ? undefined : this.held.get(this.expected);
      if (!next || this.expected === undefined) return out;
      this.held.delete(this.expected);
      out.push(next);
      this.expected = (this.expected + 1) & 0xffff;
    }
  }

  private restart(p: RtpPacket): RtpPacket[] {
    this.held.clear();
    this.expected = (p.sequence + 1) & 0xffff;
    return [p];
  }
}
