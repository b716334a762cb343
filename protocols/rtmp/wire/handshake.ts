/**
 * Server side of the simple RTMP handshake (Adobe RTMP spec §5.2): C0+C1 in, S0+S1+S2 out, C2 in.
 *
 * Hand-written and sans-IO so the connection can feed it whatever the socket delivers and so
 * the handshake is unit-tested without sockets. The digest ("complex") handshake is not needed:
 * an S1 whose version bytes are zero tells ffmpeg, librtmp (OBS) and Flash-era clients to skip
 * digest validation.
 */
import { randomBytes } from 'node:crypto';
import { RtmpProtocolError } from './errors.js';

/** RTMP version in C0/S0; 6 (RTMPE) and others are refused. */
const RTMP_VERSION = 3;
/** C1/S1/C2/S2 are 1536 bytes each (§5.2.3). */
export const HANDSHAKE_PACKET_BYTES = 1536;

export interface HandshakeProgress {
  /** Bytes to send to the client (S0+S1+S2), once. */
  reply?: Buffer;
  /** True once C2 has been received; the connection moves on to chunks. */
  complete: boolean;
  /** Bytes received after C2: the first chunks. Empty until complete. */
  remainder: Buffer;
}

export class ServerHandshake {
  private state: 'c0c1' | 'c2' | 'done' = 'c0c1';
  private pending: Buffer = Buffer.alloc(0);

  /** `random` defaults to crypto.randomBytes; tests inject a deterministic one. */
  constructor(private readonly random: (n: number) => Buffer = randomBytes) {}

  push(data: Buffer): HandshakeProgress {
    if (this.state === 'done') return { complete: true, remainder: data };
    this.pending = this.pending.length > 0 ? Buffer.concat([this.pending, data]) : data;
    let reply: Buffer | undefined;
    if (this.state === 'c0c1') {
      if (this.pending.length < 1) return { complete: false, remainder: Buffer.alloc(0) };
      const version = this.pending.readUInt8(0);
      // Checked on the first byte so a non-RTMP client (HTTP, TLS) is refused at once.
      if (version !== RTMP_VERSION) throw new RtmpProtocolError(`invalid rtmp version (${version})`);
      if (this.pending.length < 1 + HANDSHAKE_PACKET_BYTES) {
        return { complete: false, remainder: Buffer.alloc(0) };
      }
      const c1 = this.pending.subarray(1, 1 + HANDSHAKE_PACKET_BYTES);
      reply = this.buildReply(c1);
      this.pending = this.pending.subarray(1 + HANDSHAKE_PACKET_BYTES);
      this.state = 'c2';
    }
    // C2 should echo S1, but clients differ in what they put there and nothing depends on it.
    if (this.pending.length < HANDSHAKE_PACKET_BYTES) {
      // Copy so a partial C2 does not pin the socket's larger buffer.
      this.pending = Buffer.from(this.pending);
      return { ...(reply && { reply }), complete: false, remainder: Buffer.alloc(0) };
    }
    const remainder = this.pending.subarray(HANDSHAKE_PACKET_BYTES);
    this.pending = Buffer.alloc(0);
    this.state = 'done';
    return { ...(reply && { reply }), complete: true, remainder };
  }

  private buildReply(c1: Buffer): Buffer {
    const reply = Buffer.alloc(1 + 2 * HANDSHAKE_PACKET_BYTES);
    reply[0] = RTMP_VERSION;
    // S1: time (4 bytes) = 0, then 4 zero bytes where a digest handshake puts the server version;
    // zero makes ffmpeg and librtmp skip digest validation. The rest is random (§5.2.3).
    const randomPart = this.random(HANDSHAKE_PACKET_BYTES - 8);
    if (randomPart.length !== HANDSHAKE_PACKET_BYTES - 8) {
      throw new TypeError('random() returned the wrong length');
    }
    randomPart.copy(reply, 1 + 8);
    // S2 echoes C1 (§5.2.4).
    c1.copy(reply, 1 + HANDSHAKE_PACKET_BYTES);
    return reply;
  }
}
