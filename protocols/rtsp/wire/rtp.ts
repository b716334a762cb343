/**
 * RTP fixed header (RFC 3550 §5.1) and the RTCP sender report (RFC 3550 §6.4.1): the framing
 * under every RTSP media packet. Pure.
 */
import { RtspProtocolError } from './errors.js';

export const RTP_HEADER_SIZE = 12;

export interface RtpPacket {
  readonly marker: boolean;
  readonly payloadType: number;
  readonly sequence: number;
  readonly timestamp: number;
  readonly ssrc: number;
  /** Payload without CSRCs, header extension and padding; a view into the packet. */
  readonly payload: Buffer;
}

/** Parses one RTP packet; throws RtspProtocolError when the header is truncated or not version 2. */
export function parseRtp(buf: Buffer): RtpPacket {
  if (buf.length < RTP_HEADER_SIZE) {
    throw new RtspProtocolError(`rtp packet of ${buf.length} bytes is too short`);
  }
  const b0 = buf[0] ?? 0;
  const b1 = buf[1] ?? 0;
  if (b0 >> 6 !== 2) throw new RtspProtocolError(`rtp version ${b0 >> 6} is not 2`);
  let start = RTP_HEADER_SIZE + (b0 & 0x0f) * 4;
  let end = buf.length;
  if (b0 & 0x10) {
    // Header extension (§5.3.1): 16-bit profile, 16-bit length in 32-bit words.
    if (start + 4 > end) throw new RtspProtocolError('rtp header extension is truncated');
    start += 4 + buf.readUInt16BE(start + 2) * 4;
  }
  if (b0 & 0x20) {
    // Padding (§5.1): the last byte counts the padding bytes, itself included.
    const pad = buf[end - 1] ?? 0;
    if (pad === 0) throw new RtspProtocolError('rtp padding length is 0');
    end -= pad;
  }
  if (start > end) throw new RtspProtocolError('rtp header is longer than the packet');
  return {
    marker: (b1 & 0x80) !== 0,
    payloadType: b1 & 0x7f,
    sequence: buf.readUInt16BE(2),
    timestamp: buf.readUInt32BE(4),
    ssrc: buf.readUInt32BE(8),
    payload: buf.subarray(start, end),
  };
}

export interface RtpHeaderFields {
  readonly marker: boolean;
  readonly payloadType: number;
  readonly sequence: number;
  readonly timestamp: number;
  readonly ssrc: number;
}

/**
 * One RTP packet: a header then the payload parts, in one Buffer. Building the whole packet
 * once is what lets a stream write the same Buffer to every viewer.
 */
export function writeRtp(h: RtpHeaderFields, parts: readonly Uint8Array[]): Buffer {
  let size = RTP_HEADER_SIZE;
  for (const p of parts) size += p.length;
  const out = Buffer.allocUnsafe(size);
  out[0] = 0x80;
  out[1] = (h.marker ? 0x80 : 0) | (h.payloadType & 0x7f);
  out.writeUInt16BE(h.sequence & 0xffff, 2);
  out.writeUInt32BE(h.timestamp >>> 0, 4);
  out.writeUInt32BE(h.ssrc >>> 0, 8);
  let pos = RTP_HEADER_SIZE;
  for (const p of parts) {
    out.set(p, pos);
    pos += p.length;
  }
  return out;
}

const RTCP_SR = 200;

export interface SenderReport {
  readonly ssrc: number;
  /** NTP timestamp as seconds since 1900 (a double: RFC 3550 §4's 64-bit value, precise to well under a µs). */
  readonly ntpSeconds: number;
  readonly rtpTimestamp: number;
  readonly packetCount: number;
  readonly octetCount: number;
}

/** A sender report without reception report blocks (RFC 3550 §6.4.1), 28 bytes. */
export function writeSenderReport(sr: SenderReport): Buffer {
  const out = Buffer.alloc(28);
  out[0] = 0x80;
  out[1] = RTCP_SR;
  out.writeUInt16BE(6, 2); // length in 32-bit words minus one
  out.writeUInt32BE(sr.ssrc >>> 0, 4);
  const whole = Math.floor(sr.ntpSeconds);
  out.writeUInt32BE(whole >>> 0, 8);
  out.writeUInt32BE(Math.min(0xffffffff, Math.floor((sr.ntpSeconds - whole) * 2 ** 32)), 12);
  out.writeUInt32BE(sr.rtpTimestamp >>> 0, 16);
  out.writeUInt32BE(sr.packetCount >>> 0, 20);
  out.writeUInt32BE(sr.octetCount >>> 0, 24);
  return out;
}

/**
 * The sender reports in a compound RTCP packet (RFC 3550 §6.1); other packet types (SDES,
 * BYE, RR) are skipped. A malformed compound packet yields the reports read so far: RTCP
 * only refines timing, so it is never worth dropping a connection over.
 */
export function parseSenderReports(buf: Buffer): SenderReport[] {
  const out: SenderReport[] = [];
  let pos = 0;
  while (pos + 4 <= buf.length) {
    const b0 = buf[pos] ?? 0;
    if (b0 >> 6 !== 2) break;
    const type = buf[pos + 1] ?? 0;
    const len = (buf.readUInt16BE(pos + 2) + 1) * 4;
    if (pos + len > buf.length) break;
    if (type === RTCP_SR && len >= 28) {
      out.push({
        ssrc: buf.readUInt32BE(pos + 4),
        ntpSeconds: buf.readUInt32BE(pos + 8) + buf.readUInt32BE(pos + 12) / 2 ** 32,
        rtpTimestamp: buf.readUInt32BE(pos + 16),
        packetCount: buf.readUInt32BE(pos + 20),
        octetCount: buf.readUInt32BE(pos + 24),
      });
    }
    pos += len;
  }
  return out;
}

export interface PacketizerOptions {
  readonly payloadType: number;
  readonly ssrc: number;
  /** First sequence number; RFC 3550 §5.1 wants it random. */
  readonly initialSequence?: number;
  /** Largest RTP payload; defaults to DEFAULT_MAX_PAYLOAD. */
  readonly maxPayload?: number;
}

/**
 * Largest RTP payload we produce: a 1500-byte Ethernet MTU minus IPv4/UDP/RTP headers (40
 * bytes) leaves 1460; 1400 leaves room for tunnels (VPNs, PPPoE) so UDP viewers see no IP
 * fragmentation. TCP-interleaved viewers get the same packets: they are built once per stream.
 */
export const DEFAULT_MAX_PAYLOAD = 1400;
