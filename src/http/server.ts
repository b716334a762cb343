/**
 * The one HTTP listener (SPEC §2 `http`): HLS, HTTP MPEG-TS, the API, metrics, health
 * and the admin UI all route through it. `/api` and `/admin` require `edit_auth`
 * Basic credentials when configured, and are reachable from loopback only otherwise.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { BlockList, Socket } from 'node:net';
import type { Logger } from 'pino';
import type { Config, Listen } from '../config/types.js';
import { addressList, httpClientIp } from '../net.js';
import { safeEqual } from '../core/secrets.js';
import type { HttpRouter } from './router.js';

export interface HttpFront {
  start(): Promise<void>;
  stop(): Promise<void>;
  address(): { host: string; port: number } | undefined;
}

export function sendText(
  res: ServerResponse,
  status: number,
  text: string,
  headers: Record<string, string> = {},
): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  res.writeHead(status, {
    'Content-Type': 'text/plain; charset=utf-8',
    'Content-Length': Buffer.byteLength(text),
    ...headers,
  });
  res.end(text);
}

export function sendJson(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(text) });
  res.end(text);
}

function isLoopback(ip: string): boolean {
  return ip === '::1' || ip.startsWith('127.');
}

/** Whether a request may use /api and /admin. */
function adminAllowed(req: IncomingMessage, ip: string, config: Config): boolean {
  const auth = config.editAuth;
  if (!auth) return isLoopback(ip);
  const header = req.headers.authorization ?? '';
  if (!header.startsWith('Basic ')) return false;
  const decoded = Buffer.from(header.slice(6), 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  return (
    colon > 0 &&
    safeEqual(decoded.slice(0, colon), auth.user) &&
    safeEqual(decoded.slice(colon + 1), auth.password)
  );
}

export function createHttpFront(
  listen: Listen,
  router: HttpRouter,
  deps: { config: () => Config; log: Logger },
): HttpFront {
  let server: Server | undefined;
  const sockets = new Set<Socket>();
  // Built once per loaded config, not per request.
  let trustedCache: { config: Config; list: BlockList | undefined } | undefined;
  const trustedFor = (config: Config): BlockList | undefined => {
    if (trustedCache?.config !== config) {
      const list = config.trustedProxies.length > 0 ? addressList(config.trustedProxies) : undefined;
      trustedCache = { config, list };
    }
    return trustedCache.list;
  };

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const config = deps.config();
    const trusted = trustedFor(config);
    const ip = httpClientIp(req.socket.remoteAddress ?? '', req.headers, trusted);
    let url: URL;
    try {
      url = new URL(req.url ?? '/', 'http://streamgate.invalid');
    } catch {
      sendText(res, 400, 'bad request\n');
      return;
    }
    const path = url.pathname;
    if (
      (path.startsWith('/api/') || path === '/api' || path.startsWith('/admin')) &&
      !adminAllowed(req, ip, config)
    ) {
      const headers: Record<string, string> = config.editAuth
        ? { 'WWW-Authenticate': 'Basic realm="streamgate"' }
        : {};
      sendText(
        res,
        config.editAuth ? 401 : 403,
        config.editAuth ? 'authentication required\n' : 'loopback only\n',
        headers,
      );
      return;
    }
    const found = router.find(req.method ?? 'GET', path);
    if (!('handler' in found)) {
      sendText(
        res,
        found.methodMismatch ? 405 : 404,
        found.methodMismatch ? 'method not allowed\n' : 'not found\n',
      );
      return;
    }
    await found.handler(req, res, { url, params: found.params, ip });
  };

  return {
    async start() {
      server = createServer((req, res) => {
        handle(req, res).catch((err: unknown) => {
          deps.log.error({ err: (err as Error).message, url: req.url?.split('?')[0] }, 'http handler failed');
          if (!res.headersSent) sendText(res, 500, 'internal error\n');
          else res.destroy();
        });
      });
      server.keepAliveTimeout = 65_000;
      // HTTP MPEG-TS publishing sends one endless request body; Node's default 300 s
      // requestTimeout would cut every publisher after five minutes (headersTimeout still applies).
      server.requestTimeout = 0;
      server.on('connection', (s: Socket) => {
        sockets.add(s);
        s.on('close', () => sockets.delete(s));
      });
      server.on('clientError', (_err, socket) => {
        if (socket.writable) socket.end('HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n');
        else socket.destroy();
      });
      await new Promise<void>((resolve, reject) => {
        server?.once('error', reject);
        server?.listen(listen.port, listen.host, () => resolve());
      });
    },
    address() {
      const a = server?.address();
      return a && typeof a === 'object' ? { host: a.address, port: a.port } : undefined;
    },
    async stop() {
      await new Promise<void>((resolve) => {
        if (!server) return resolve();
        server.close(() => resolve());
        for (const s of sockets) s.destroy();
      });
    },
  };
}
