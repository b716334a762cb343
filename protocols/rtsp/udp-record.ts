/**
 * Server UDP port pairs for RTSP publishers that RECORD over UDP (RFC 2326 §12.39
 * `server_port`): one even RTP port and the RTCP port after it per recorded track, bound when
 * the track is SETUP and closed when the connection ends. The pairs come from a bounded port
 * range when one is configured (a firewall opens exactly that range), else from the
 * system's ephemeral ports; either way at most `maxPairs` are open at once, so publishers
 * cannot exhaust the host's ports. I/O shell: the pure side is record.ts.
 */
import { createSocket, type RemoteInfo, type Socket as UdpSocket } from 'node:dgram';
import { isIPv6 } from 'node:net';

/** Pairs open at once across all publishers: two tracks each for 128 UDP publishers. */
export const DEFAULT_MAX_RECORD_PAIRS = 256;
/** Attempts at an ephemeral even/odd pair before giving up (another process may hold p+1). */
const EPHEMERAL_ATTEMPTS = 10;

export interface PortRange {
  readonly min: number;
  readonly max: number;
}

/** One bound pair; `close` frees it (idempotent). */
export interface RecordPair {
  readonly rtpPort: number;
  readonly rtcpPort: number;
  /** Every datagram that arrives on either port. */
  onPacket(fn: (rtcp: boolean, msg: Buffer, from: RemoteInfo) => void): void;
  /** An RTCP packet (a receiver report) from the RTCP port. */
  sendRtcp(packet: Buffer, ip: string, port: number): void;
  close(): void;
}

export class RecordPortPool {
  private open = 0;
  private cursor: number;

  constructor(
    private readonly host: string | undefined,
    private readonly range: PortRange | undefined,
    private readonly maxPairs = DEFAULT_MAX_RECORD_PAIRS,
  ) {
    if (range && (range.min < 1024 || range.max > 65535 || range.max - range.min < 1)) {
      throw new RangeError(`rtsp record port range ${range.min}-${range.max} is not within 1024-65535`);
    }
    this.cursor = range ? range.min + (range.min % 2) : 0;
  }

  /** Pairs currently open. */
  get inUse(): number {
    return this.open;
  }

  /** A bound pair, or undefined when `maxPairs` are open or no pair is free. */
  async allocate(): Promise<RecordPair | undefined> {
    if (this.open >= this.maxPairs) return undefined;
    this.open++;
    try {
      const sockets = this.range ? await this.fromRange(this.range) : await this.ephemeral();
      if (!sockets) {
        this.open--;
        return undefined;
      }
      return this.pair(sockets[0], sockets[1]);
    } catch (err) {
      this.open--;
      throw err;
    }
  }

  private async fromRange(range: PortRange): Promise<[UdpSocket, UdpSocket] | undefined> {
    const first = range.min + (range.min % 2);
    const pairs = Math.floor((range.max - first + 1) / 2);
    for (let i = 0; i < pairs; i++) {
      const port = this.cursor;
      this.cursor = port + 2 + 1 > range.max ? first : port + 2;
      const rtp = await bind(this.family, this.address, port).catch(() => undefined);
      if (!rtp) continue;
      const rtcp = await bind(this.family, this.address, port + 1).catch(() => undefined);
      if (rtcp) return [rtp, rtcp];
      rtp.close();
    }
    return undefined;
  }

  private async ephemeral(): Promise<[UdpSocket, UdpSocket] | undefined> {
    for (let i = 0; i < EPHEMERAL_ATTEMPTS; i++) {
      const rtp = await bind(this.family, this.address, 0);
      const port = rtp.address().port;
      if (port % 2 === 0 && port < 65535) {
        const rtcp = await bind(this.family, this.address, port + 1).catch(() => undefined);
        if (rtcp) return [rtp, rtcp];
      }
      rtp.close();
    }
    return undefined;
  }

  private get family(): 'udp4' | 'udp6' {
    return this.host !== undefined && isIPv6(this.host) ? 'udp6' : 'udp4';
  }

  private get address(): string {
    return this.host ?? '0.0.0.0';
  }

  private pair(rtp: UdpSocket, rtcp: UdpSocket): RecordPair {
    let closed = false;
    const v6 = this.family === 'udp6';
    return {
      rtpPort: rtp.address().port,
      rtcpPort: rtcp.address().port,
      onPacket(fn) {
        rtp.on('message', (msg, from) => fn(false, msg, from));
        rtcp.on('message', (msg, from) => fn(true, msg, from));
      },
      sendRtcp(packet, ip, port) {
        if (closed) return;
        // Errors (ICMP unreachable after the publisher quit) come back on the error event, ignored.
        rtcp.send(packet, port, v6 && !ip.includes(':') ? `::ffff:${ip}` : ip);
      },
      close: () => {
        if (closed) return;
        closed = true;
        this.open--;
        rtp.close();
        rtcp.close();
      },
    };
  }
}

function bind(type: 'udp4' | 'udp6', address: string, port: number): Promise<UdpSocket> {
  return new Promise((resolve, reject) => {
    const s = createSocket({ type, reuseAddr: false });
    s.once('error', (err) => {
      s.close();
      reject(err);
    });
    s.bind(port, address, () => {
      s.removeAllListeners('error');
      s.on('error', () => undefined);
      resolve(s);
    });
  });
}
