/**
 * A TCP listener for a persistent-connection protocol (RTMP, RTSP): one client object per
 * socket, every client ended on stop so their sessions close with history rows.
 *
 * It caps open connections in total (`max_connections`) and per client address
 * (`max_connections_per_ip`): a socket over either is destroyed at once, before any client
 * object or byte of protocol, so idle sockets from one host cannot use up the descriptors
 * honest clients need.
 */
import { createServer, type Server, type Socket } from 'node:net';
import type { Logger } from 'pino';
import type { Listen } from './config/types.js';
import { countLimitHit, type LimitName, type Limits } from './core/limits.js';
import type { CloseReason } from './core/reasons.js';
import { ThrottledWarn } from './log.js';
import { normalizeIp } from './net.js';

/** How often refusals of one address are logged. */
const REFUSAL_LOG_MS = 10_000;

export interface TcpClient {
  close(reason: CloseReason): void;
}

export interface TcpListenerOptions {
  /** The protocol, for log lines. */
  proto: string;
  log: Logger;
  /** The configured limits, read at every accept so that a reload applies to the next client. */
  limits: () => Limits;
}

export class TcpListener {
  private server: Server | undefined;
  private readonly clients = new Map<Socket, TcpClient>();
  private readonly perIp = new Map<string, number>();
  /** Refusals are logged once per address per period with a count, as the HTTP front does. */
  private readonly refusals: ThrottledWarn;

  constructor(
    private readonly listen: Listen,
    private readonly accept: (socket: Socket) => TcpClient,
    private readonly options: TcpListenerOptions,
  ) {
    this.refusals = new ThrottledWarn(options.log, REFUSAL_LOG_MS);
  }

  async start(): Promise<void> {
    const server = createServer((socket) => this.onConnection(socket));
    this.server = server;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.listen.port, this.listen.host, () => resolve());
    });
  }

  address(): { host: string; port: number } | undefined {
    const a = this.server?.address();
    return a && typeof a === 'object' ? { host: a.address, port: a.port } : undefined;
  }

  async stop(): Promise<void> {
    const server = this.server;
    if (!server) return;
    this.refusals.stop();
    await new Promise<void>((resolve) => {
      server.close(() => resolve());
      for (const [socket, client] of this.clients) {
        client.close('server_shutdown');
        socket.destroy();
      }
    });
  }

  private onConnection(socket: Socket): void {
    const ip = normalizeIp(socket.remoteAddress ?? '');
    const limits = this.options.limits();
    const fromIp = this.perIp.get(ip) ?? 0;
    const over: LimitName | undefined =
      this.clients.size >= limits.max_connections
        ? 'max_connections'
        : fromIp >= limits.max_connections_per_ip
          ? 'max_connections_per_ip'
          : undefined;
    if (over) {
      socket.destroy();
      countLimitHit(over);
      this.refusals.warn(
        ip,
        { event: 'limit_exceeded', proto: this.options.proto, ip, limit: over, value: limits[over] },
        `connection refused at accept: ${over} (${limits[over]}) reached`,
      );
      return;
    }
    this.perIp.set(ip, fromIp + 1);
    socket.on('close', () => {
      this.clients.delete(socket);
      const left = (this.perIp.get(ip) ?? 1) - 1;
      if (left > 0) this.perIp.set(ip, left);
      else this.perIp.delete(ip);
    });
    try {
      this.clients.set(socket, this.accept(socket));
    } catch (err) {
      // A bug in a client's constructor costs that socket, not the listener.
      this.options.log.error({ err: err instanceof Error ? err.message : String(err), ip }, 'accept failed');
      socket.destroy();
    }
  }
}
