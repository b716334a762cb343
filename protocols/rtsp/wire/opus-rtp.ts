/**
 * Opus over RTP (RFC 7587): one Opus packet per RTP packet, on a 48 kHz clock whatever the
 * encoder's internal rate (§4.1), with `opus/48000/2` in the rtpmap and the channel count in
 * `sprop-stereo` (§7). Pure.
 */
import { RtspProtocolError } from './errors.js';
import { type PacketizerOptions, type RtpPacket, writeRtp } from './rtp.js';

/** RFC 7587 §4.1: the RTP clock of Opus is always 48 kHz. */
export const OPUS_RTP_CLOCK = 48_000;
/**
 * RFC 6716 §3.2.1 bounds one Opus packet at 1275 bytes per frame and 120 ms of frames; 64 KiB
 * covers every packet a real encoder makes and stops anything else.
 */
const MAX_OPUS_PACKET = 65_535;

export class OpusPacketizer {
  sequence: number;

  constructor(private readonly options: PacketizerOptions) {
    this.sequence = (options.initialSequence ?? 0) & 0xffff;
  }

  /** One Opus packet at an RTP timestamp (48 kHz) → one RTP packet (§4.2: no fragmentation). */
  packetize(packet: Buffer, timestamp: number): Buffer[] {
    if (packet.length === 0) return [];
    return [
      writeRtp(
        {
          marker: false,
          payloadType: this.options.payloadType,
          sequence: this.sequence++ & 0xffff,
          timestamp,
          ssrc: this.options.ssrc,
        },
        [packet],
      ),
    ];
  }
}

export interface OpusAccessUnit {
  /** RTP timestamp (48 kHz). */
  readonly timestamp: number;
  readonly packet: Buffer;
}

export class OpusDepacketizer {
  push(p: RtpPacket): OpusAccessUnit[] {
    // An empty payload is a DTX gap marker some senders use: nothing to decode.
    if (p.payload.length === 0) return [];
    if (p.payload.length > MAX_OPUS_PACKET) throw new RtspProtocolError('opus packet is too large');
    return [{ timestamp: p.timestamp, packet: p.payload }];
  }
}
