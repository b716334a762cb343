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
import { normalizeIp } from './net.js';

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

/**
 * Refusals are logged at most once per address per this period, with how many there were: a
 * host that opens thousands of sockets gets a line every ten seconds, not one per socket
 * (the HTTP front does the same).
 */
const REFUSAL_LOG_MS = 10_000;
/** Addresses whose refusals are counted separately; past that, the rest share one line. */
const REFUSAL_LOG_ADDRESSES = 1_000;

interface RefusalWindow {
  limit: LimitName;
  /** Refusals since the last line. */
  count: number;
}

export class TcpListener {
  private server: Server | undefined;
  private readonly clients = new Map<Socket, TcpClient>();
  private readonly perIp = new Map<string, number>();
  private readonly refusals = new Map<string, RefusalWindow>();
  private readonly refusalTimers = new Set<NodeJS.Timeout>();

  constructor(
    private readonly listen: Listen,
    private readonly accept: (socket: Socket) => TcpClient,
    private readonly options: TcpListenerOptions,
  ) {}

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
    for (const timer of this.refusalTimers) clearTimeout(timer);
    this.refusalTimers.clear();
    this.refusals.clear();
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
      this.refused(ip, over, limits[over]);
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

  /** Logs a refused socket: the first of an address at once, the following ones as a count per period. */
  private refused(ip: string, limit: LimitName, value: number): void {
    const key = this.refusals.has(ip) || this.refusals.size < REFUSAL_LOG_ADDRESSES ? ip : '*';
    const window = this.refusals.get(key);
    if (window) {
      window.count++;
      window.limit = limit;
      return;
    }
    this.log(key, limit, 1, value);
    const fresh: RefusalWindow = { limit, count: 0 };
    this.refusals.set(key, fresh);
    const tick = (): void => {
      this.refusalTimers.delete(timer);
      if (fresh.count === 0) {
        this.refusals.delete(key);
        return;
      }
      this.log(key, fresh.limit, fresh.count, this.options.limits()[fresh.limit]);
      fresh.count = 0;
      timer = setTimeout(tick, REFUSAL_LOG_MS).unref();
      this.refusalTimers.add(timer);
    };
    let timer = setTimeout(tick, REFUSAL_LOG_MS).unref();
    this.refusalTimers.add(timer);
  }

  private log(ip: string, limit: LimitName, refused: number, value: number): void {
    this.options.log.warn(
      { event: 'limit_exceeded', proto: this.options.proto, ip, limit, value, refused },
      `connection refused at accept: ${limit} (${value}) reached`,
    );
  }
}
