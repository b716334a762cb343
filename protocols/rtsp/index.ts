/**
 * The RTSP adapter: a TCP listener handing each client to an RtspConn, and one UDP socket
 * pair (even RTP port, RTCP on the next) from which every UDP viewer is sent its packets.
 * One pair for all viewers is the smallest pool there is: packets are built once per stream
 * and sent to each viewer's address, so per-session sockets would buy nothing. Publishers
 * that RECORD over UDP get a pair per track instead (udp-record.ts): the server tells which
 * track a datagram belongs to by the port it arrives on.
 */
import { createSocket, type Socket as UdpSocket } from 'node:dgram';
import { isIPv4, isIPv6 } from 'node:net';
import type { ProtocolAdapter } from '../../src/adapter.js';
import type { Listen } from '../../src/config/types.js';
import { TcpListener } from '../../src/tcp-listener.js';
import { RtspConn, type RtspDeps, type UdpSender } from './rtsp-conn.js';
import { RecordPortPool, type PortRange } from './udp-record.js';

/** Attempts at binding an even/odd port pair before giving up on UDP (another process may take p+1). */
const UDP_PAIR_ATTEMPTS = 10;

export interface RtspAdapterOptions {
  /** Ports for publishers recording over UDP; the system's ephemeral ports when absent. */
  readonly recordPorts?: PortRange;
}

export function createRtspAdapter(
  listen: Listen,
  deps: Omit<RtspDeps, 'udp' | 'recordPorts'>,
  options: RtspAdapterOptions = {},
): ProtocolAdapter {
  let listener: TcpListener | undefined;
  let udp: { sender: UdpSender; close(): void } | undefined;
  return {
    name: 'rtsp',
    async start() {
      try {
        udp = await bindUdpPair(listen.host);
      } catch (err) {
        // UDP is optional: players fall back to TCP interleaved on 461 (ffmpeg does).
        deps.log.warn({ err: (err as Error).message }, 'rtsp: no udp port pair; offering tcp only');
      }
      const recordPorts = new RecordPortPool(listen.host, options.recordPorts);
      const connDeps: RtspDeps = { ...deps, recordPorts, ...(udp ? { udp: udp.sender } : {}) };
      listener = new TcpListener(listen, (socket) => new RtspConn(socket, connDeps), {
        proto: 'rtsp',
        log: deps.log,
        limits: () => deps.config().limits,
      });
      await listener.start();
    },
    address: () => listener?.address(),
    async stop() {
      udp?.close();
      await listener?.stop();
    },
  };
}

/** Binds the RTP/RTCP socket pair on `host` (all IPv4 addresses when undefined). */
export async function bindUdpPair(host: string | undefined): Promise<{ sender: UdpSender; close(): void }> {
  const v6 = host !== undefined && isIPv6(host);
  const type = v6 ? 'udp6' : 'udp4';
  const address = host ?? '0.0.0.0';
  for (let i = 0; i < UDP_PAIR_ATTEMPTS; i++) {
    const rtp = await bind(type, address, 0);
    const port = rtp.address().port;
    if (port % 2 === 0 && port < 65535) {
      const rtcp = await bind(type, address, port + 1).catch(() => undefined);
      if (rtcp) return pair(rtp, rtcp, v6);
    }
    rtp.close();
  }
  throw new Error(`no free even/odd udp port pair on ${address} after ${UDP_PAIR_ATTEMPTS} attempts`);
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
      // Incoming datagrams are receiver reports and ffmpeg's NAT "punch" packets: nothing to act on.
      s.on('error', () => undefined);
      s.on('message', () => undefined);
      resolve(s);
    });
  });
}

function pair(rtp: UdpSocket, rtcp: UdpSocket, v6: boolean): { sender: UdpSender; close(): void } {
  let closed = false;
  return {
    sender: {
      rtpPort: rtp.address().port,
      rtcpPort: rtcp.address().port,
      reaches: (ip) => (v6 ? isIPv6(ip) || isIPv4(ip) : isIPv4(ip)),
      send(channel, packet, ip, port) {
        if (closed) return undefined; // viewers still draining during shutdown
        const to = v6 && isIPv4(ip) ? `::ffff:${ip}` : ip;
        try {
          // Later errors (ICMP port unreachable after a player quit) surface on the socket's
          // error event, which is ignored; only what dgram refuses at once is this viewer's fault.
          (channel === 'rtp' ? rtp : rtcp).send(packet, port, to);
          return undefined;
        } catch (err) {
          return err instanceof Error ? err : new Error(String(err));
        }
      },
    },
    close() {
      closed = true;
      rtp.close();
      rtcp.close();
    },
  };
}
