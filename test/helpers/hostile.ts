/**
 * Tools for hostile-client tests and the soak: what a server process costs (RSS, open file
 * descriptors, read from /proc), honest viewers that run for minutes and count what they
 * receive, raw RTMP/RTSP/HTTP attackers that bind any 127.0.0.x source address (so per-IP
 * limits hit the attacker and not the honest clients on 127.0.0.1), and an authorization
 * backend that misbehaves on request.
 */
import { connect, createServer, type Server, type Socket } from 'node:net';
import { request as httpRequest, type IncomingMessage } from 'node:http';
import { randomBytes } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { ChunkReader, type RtmpMessage } from '../../protocols/rtmp/wire/chunk-reader.js';
import { DEFAULT_LIMITS } from '../../src/core/limits.js';
import { chunkReaderLimits } from '../../protocols/rtmp/session.js';
import { command, decodeCommand, MessageType } from '../../protocols/rtmp/wire/messages.js';

// ---- process cost ------------------------------------------------------------------------

/** Resident set size of a process in MiB (VmRSS in /proc/PID/status); NaN once it is gone. */
export function rssMb(pid: number): number {
  try {
    const m = /^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) / 1024 : NaN;
  } catch {
    return NaN;
  }
}

/** Open file descriptors (sockets, files, pipes) of a process; NaN once it is gone. */
export function fdCount(pid: number): number {
  try {
    return readdirSync(`/proc/${pid}/fd`).length;
  } catch {
    return NaN;
  }
}

/** Samples a process's RSS every `intervalMs` and keeps the maximum; `onOver` fires once past `limitMb`. */
export class RssWatch {
  max = 0;
  private readonly timer: NodeJS.Timeout;

  constructor(
    private readonly pid: number,
    private readonly limitMb: number,
    private readonly onOver: () => void = () => {},
    intervalMs = 200,
  ) {
    this.sample();
    this.timer = setInterval(() => this.sample(), intervalMs);
  }

  private sample(): void {
    const v = rssMb(this.pid);
    if (!Number.isFinite(v)) return;
    const wasUnder = this.max <= this.limitMb;
    this.max = Math.max(this.max, v);
    if (wasUnder && this.max > this.limitMb) this.onOver();
  }

  stop(): number {
    clearInterval(this.timer);
    this.sample();
    return this.max;
  }
}

// ---- sockets -----------------------------------------------------------------------------

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** A TCP connection from `localAddress` (any 127.0.0.x works on Linux loopback); never rejects. */
export function tcpFrom(port: number, localAddress = '127.0.0.1'): Promise<Socket> {
  return new Promise((resolve) => {
    const s = connect({ port, host: '127.0.0.1', localAddress });
    s.on('error', () => {});
    const done = (): void => resolve(s);
    s.once('connect', done);
    s.once('close', done);
  });
}

/** Tracks when the server ended a socket (FIN or reset) and every byte it sent. */
export class Watched {
  closedAt: number | undefined;
  readonly openedAt = Date.now();
  received = 0;
  readonly chunks: Buffer[] = [];
  readonly closed: Promise<void>;

  constructor(
    readonly socket: Socket,
    keep = false,
  ) {
    this.closed = new Promise((resolve) => {
      const mark = (): void => {
        this.closedAt ??= Date.now();
        resolve();
      };
      socket.once('end', mark);
      socket.once('close', mark);
    });
    socket.on('data', (d: Buffer) => {
      this.received += d.length;
      if (keep) this.chunks.push(d);
    });
    if (socket.destroyed) {
      this.closedAt = Date.now();
    }
  }

  get isClosed(): boolean {
    return this.closedAt !== undefined;
  }

  /** Resolves true when the server closed it within `ms`. */
  async closedWithin(ms: number): Promise<boolean> {
    if (this.isClosed) return true;
    await Promise.race([this.closed, sleep(ms)]);
    return this.isClosed;
  }

  text(): string {
    return Buffer.concat(this.chunks).toString('latin1');
  }
}

/** Writes and waits for the socket to drain; false when the socket closed instead. */
export async function writeAll(socket: Socket, data: Buffer | string): Promise<boolean> {
  if (socket.destroyed || !socket.writable) return false;
  if (socket.write(data)) return true;
  await new Promise<void>((resolve) => {
    const done = (): void => {
      socket.off('drain', done);
      socket.off('close', done);
      resolve();
    };
    socket.on('drain', done);
    socket.on('close', done);
  });
  return !socket.destroyed;
}

// ---- RTMP --------------------------------------------------------------------------------

/** An RTMP client connection after the handshake, with the server's messages parsed as they come. */
export interface RtmpRaw {
  socket: Socket;
  watched: Watched;
  messages: RtmpMessage[];
  /** Media (audio/video) payload bytes the server sent this client. */
  mediaBytes: number;
  /** Resolves with the server's answer to `connect` (`_result` or `_error`), or undefined on close/timeout. */
  connect(app: string, extra?: Record<string, string>): Promise<string | undefined>;
}

/** Connects from `localAddress` and completes the simple handshake; undefined when the server refused. */
export async function rtmpHandshake(
  port: number,
  localAddress: string,
  ms = 5000,
): Promise<RtmpRaw | undefined> {
  const socket = await tcpFrom(port, localAddress);
  const watched = new Watched(socket);
  if (watched.isClosed || socket.destroyed) return undefined;
  const reader = new ChunkReader(chunkReaderLimits(DEFAULT_LIMITS));
  const raw: RtmpRaw = {
    socket,
    watched,
    messages: [],
    mediaBytes: 0,
    connect: async (app, extra = {}) => {
      socket.write(
        command(3, 0, 128, 'connect', 1, {
          app,
          tcUrl: `rtmp://127.0.0.1:${port}/${app}`,
          flashVer: 'LNX 9,0,124,2',
          ...extra,
        }),
      );
      const deadline = Date.now() + ms;
      while (Date.now() < deadline && !watched.isClosed) {
        const answer = raw.messages.find(
          (m) => m.type === MessageType.CommandAmf0 && ['_result', '_error'].includes(decodeCommand(m).name),
        );
        if (answer) return decodeCommand(answer).name;
        await sleep(20);
      }
      return undefined;
    },
  };
  let handshake = Buffer.alloc(0);
  let shaken = false;
  let readerFailed = false;
  const done = new Promise<boolean>((resolve) => {
    void watched.closed.then(() => resolve(false));
    setTimeout(() => resolve(false), ms);
    socket.on('data', (data: Buffer) => {
      if (!shaken) {
        handshake = Buffer.concat([handshake, data]);
        if (handshake.length < 3073) return;
        shaken = true;
        socket.write(handshake.subarray(1, 1537));
        resolve(true);
        data = handshake.subarray(3073);
      }
      if (readerFailed || data.length === 0) return;
      try {
        for (const m of reader.push(data)) {
          raw.messages.push(m);
          if (m.type === MessageType.Audio || m.type === MessageType.Video) {
            raw.mediaBytes += m.payload.length;
          }
        }
      } catch {
        readerFailed = true;
      }
    });
  });
  socket.write(Buffer.concat([Buffer.from([3]), Buffer.alloc(8), randomBytes(1528)]));
  return (await done) ? raw : undefined;
}

/** One RTMP chunk with a type-0 header (csid 2..65599) and the given payload piece. */
export function chunk0(
  csid: number,
  header: { length: number; type: number; streamId: number },
  piece: Buffer,
): Buffer {
  const basic =
    csid < 64
      ? Buffer.of(csid)
      : csid < 320
        ? Buffer.of(0, csid - 64)
        : Buffer.of(1, (csid - 64) & 0xff, (csid - 64) >> 8);
  const h = Buffer.alloc(11);
  h.writeUIntBE(0, 0, 3);
  h.writeUIntBE(header.length, 3, 3);
  h.writeUInt8(header.type, 6);
  h.writeUInt32LE(header.streamId, 7);
  return Buffer.concat([basic, h, piece]);
}

/**
 * A long-running RTMP player (the honest viewer): plays `app/name` and counts the media bytes
 * it receives until stopped. `closed` tells when the server dropped it.
 */
export class RtmpViewer {
  mediaBytes = 0;
  mediaMessages = 0;
  statuses: string[] = [];
  closed = false;
  private readonly socket: Socket;

  constructor(port: number, app: string, name: string) {
    const socket = connect(port, '127.0.0.1');
    this.socket = socket;
    const reader = new ChunkReader(chunkReaderLimits(DEFAULT_LIMITS));
    let handshake = Buffer.alloc(0);
    let shaken = false;
    socket.on('error', () => {});
    socket.on('close', () => (this.closed = true));
    socket.on('connect', () =>
      socket.write(Buffer.concat([Buffer.from([3]), Buffer.alloc(8), randomBytes(1528)])),
    );
    const onMessage = (m: RtmpMessage): void => {
      if (m.type === MessageType.Audio || m.type === MessageType.Video) {
        this.mediaMessages++;
        this.mediaBytes += m.payload.length;
      } else if (m.type === MessageType.CommandAmf0) {
        const c = decodeCommand(m);
        if (c.name === '_result' && c.txId === 1) socket.write(command(3, 0, 128, 'createStream', 2, null));
        else if (c.name === '_result' && c.txId === 2) {
          socket.write(command(8, 1, 128, 'play', 3, null, name));
        } else if (c.name === 'onStatus') this.statuses.push((c.args[1] as { code: string }).code);
      }
    };
    socket.on('data', (data: Buffer) => {
      if (!shaken) {
        handshake = Buffer.concat([handshake, data]);
        if (handshake.length < 3073) return;
        shaken = true;
        socket.write(handshake.subarray(1, 1537));
        socket.write(
          command(3, 0, 128, 'connect', 1, {
            app,
            tcUrl: `rtmp://127.0.0.1:${port}/${app}`,
            flashVer: 'LNX 9,0,124,2',
          }),
        );
        data = handshake.subarray(3073);
      }
      try {
        for (const m of reader.push(data)) onMessage(m);
      } catch {
        socket.destroy();
      }
    });
  }

  stop(): void {
    this.socket.destroy();
  }
}

/** A long-running HTTP MPEG-TS player: counts body bytes and 0x47-synced TS packets. */
export class HttpViewer {
  status: number | undefined;
  bytes = 0;
  closed = false;
  private readonly req: ReturnType<typeof httpRequest>;

  constructor(port: number, path: string, localAddress = '127.0.0.1') {
    this.req = httpRequest({ host: '127.0.0.1', port, path, localAddress, agent: false }, (res) => {
      this.status = res.statusCode;
      res.on('data', (d: Buffer) => (this.bytes += d.length));
      res.on('close', () => (this.closed = true));
      res.on('error', () => {});
    });
    this.req.on('error', () => (this.closed = true));
    this.req.on('close', () => (this.closed = true));
    this.req.end();
  }

  stop(): void {
    this.req.destroy();
  }
}

// ---- HTTP and RTSP ----------------------------------------------------------------------

export interface HttpAnswer {
  status: number;
  headers: IncomingMessage['headers'];
  body: Buffer;
}

/** One HTTP GET (no keep-alive) from `localAddress`; the body is read up to `maxBytes` or `ms`. */
export function httpGet(
  port: number,
  path: string,
  options: { localAddress?: string; headers?: Record<string, string>; ms?: number; maxBytes?: number } = {},
): Promise<HttpAnswer> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      {
        host: '127.0.0.1',
        port,
        path,
        localAddress: options.localAddress ?? '127.0.0.1',
        headers: options.headers ?? {},
        agent: false,
      },
      (res) => {
        const parts: Buffer[] = [];
        let size = 0;
        const finish = (): void => {
          clearTimeout(timer);
          req.destroy();
          resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(parts) });
        };
        res.on('data', (d: Buffer) => {
          parts.push(d);
          size += d.length;
          if (size >= (options.maxBytes ?? 1 << 20)) finish();
        });
        res.on('end', finish);
        res.on('error', finish);
        res.on('close', finish);
      },
    );
    const timer = setTimeout(() => {
      req.destroy(new Error(`GET ${path.slice(0, 80)} timed out`));
    }, options.ms ?? 10_000);
    req.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    req.end();
  });
}

/** Sends raw bytes on a fresh connection and collects the answer until close or `ms`. */
export async function rawExchange(
  port: number,
  bytes: string | Buffer,
  options: { localAddress?: string; ms?: number } = {},
): Promise<{ text: string; closed: boolean }> {
  const s = await tcpFrom(port, options.localAddress);
  const w = new Watched(s, true);
  s.write(bytes);
  await w.closedWithin(options.ms ?? 2000);
  s.destroy();
  return { text: w.text(), closed: w.isClosed };
}

/** The status code of the first RTSP/HTTP response line in `text`, or 0. */
export function statusOf(text: string): number {
  return Number(/^(?:RTSP|HTTP)\/1\.[01] (\d{3})/.exec(text)?.[1] ?? 0);
}

/** An RTSP request on an open socket; resolves with the response head and body once complete. */
export async function rtspAsk(
  w: Watched,
  lines: string[],
  ms = 5000,
): Promise<{ status: number; head: string; body: string }> {
  const start = w.chunks.length;
  w.socket.write(`${lines.join('\r\n')}\r\n\r\n`);
  const deadline = Date.now() + ms;
  for (;;) {
    const text = Buffer.concat(w.chunks.slice(start)).toString('latin1');
    const end = text.indexOf('\r\n\r\n');
    if (end >= 0) {
      const head = text.slice(0, end);
      const length = Number(/Content-Length:\s*(\d+)/i.exec(head)?.[1] ?? 0);
      if (text.length >= end + 4 + length) {
        return { status: statusOf(head), head, body: text.slice(end + 4, end + 4 + length) };
      }
    }
    if (w.isClosed || Date.now() > deadline) return { status: 0, head: text, body: '' };
    await sleep(20);
  }
}

// ---- a misbehaving authorization backend ---------------------------------------------------

/** How the evil backend answers one request, chosen by the request's `token`. */
export type EvilMode =
  | 'allow'
  | 'deny'
  | 'hang'
  | 'huge'
  | 'trickle'
  | 'max-sessions-abc'
  | 'duration-negative'
  | 'duration-huge'
  | 'cut';

export interface EvilBackend {
  port: number;
  url: string;
  /** Query of every request received, in order. */
  calls: URLSearchParams[];
  /** Decides per request; by default by the token's prefix (see `modeForToken`). */
  mode: (q: URLSearchParams) => EvilMode;
  close(): Promise<void>;
}

/** `good…` allow, `hang…`, `huge…`, `trickle…`, `maxabc…`, `durneg…`, `durhuge…`, `cut…`; anything else deny. */
export function modeForToken(q: URLSearchParams): EvilMode {
  const t = q.get('token') ?? '';
  const table: [string, EvilMode][] = [
    ['good', 'allow'],
    ['hang', 'hang'],
    ['huge', 'huge'],
    ['trickle', 'trickle'],
    ['maxabc', 'max-sessions-abc'],
    ['durneg', 'duration-negative'],
    ['durhuge', 'duration-huge'],
    ['cut', 'cut'],
  ];
  return table.find(([prefix]) => t.startsWith(prefix))?.[1] ?? 'deny';
}

/**
 * An HTTP/1.1 backend written on raw sockets, so it can do what no well-behaved server does:
 * never answer, answer 10 MB, trickle its headers, send garbage headers, or hang up halfway.
 */
export async function startEvilBackend(): Promise<EvilBackend> {
  const sockets = new Set<Socket>();
  const timers = new Set<NodeJS.Timeout>();
  const answer = (s: Socket, mode: EvilMode): void => {
    const ok = (headers: string[]): void => {
      s.write(['HTTP/1.1 200 OK', 'Content-Length: 0', ...headers, '', ''].join('\r\n'));
    };
    switch (mode) {
      case 'allow':
        return ok([]);
      case 'deny':
        s.write('HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n');
        return;
      case 'hang':
        return;
      case 'huge': {
        const size = 10 * 1024 * 1024;
        s.write(
          `HTTP/1.1 403 Forbidden\r\nContent-Type: application/json\r\nContent-Length: ${size}\r\n\r\n`,
        );
        s.write(Buffer.alloc(size, 0x20));
        return;
      }
      case 'trickle': {
        const text = Buffer.from('HTTP/1.1 200 OK\r\nX-UserId: trickler\r\nContent-Length: 0\r\n\r\n');
        let i = 0;
        const t = setInterval(() => {
          if (s.destroyed || i >= text.length) {
            clearInterval(t);
            timers.delete(t);
            return;
          }
          s.write(text.subarray(i, ++i));
        }, 400);
        timers.add(t);
        return;
      }
      case 'max-sessions-abc':
        return ok(['X-UserId: garbage-max', 'X-Max-Sessions: abc']);
      case 'duration-negative':
        return ok(['X-UserId: garbage-neg', 'X-AuthDuration: -5']);
      case 'duration-huge':
        return ok(['X-UserId: garbage-huge', 'X-AuthDuration: 1e12']);
      case 'cut':
        s.write('HTTP/1.1 200 OK\r\nX-UserId: cu');
        s.destroy();
        return;
    }
  };
  const server: Server = createServer((s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    s.on('error', () => {});
    let buf = '';
    s.on('data', (d: Buffer) => {
      buf += d.toString('latin1');
      for (;;) {
        const end = buf.indexOf('\r\n\r\n');
        if (end < 0) return;
        const head = buf.slice(0, end);
        const length = Number(/content-length:\s*(\d+)/i.exec(head)?.[1] ?? 0);
        if (buf.length < end + 4 + length) return;
        buf = buf.slice(end + 4 + length);
        const target = head.split(' ')[1] ?? '/';
        const q = new URL(target, 'http://x').searchParams;
        backend.calls.push(q);
        answer(s, backend.mode(q));
      }
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const port = (server.address() as AddressInfo).port;
  const backend: EvilBackend = {
    port,
    url: `http://127.0.0.1:${port}/auth`,
    calls: [],
    mode: modeForToken,
    close: () =>
      new Promise<void>((resolve) => {
        for (const t of timers) clearInterval(t);
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
  return backend;
}
