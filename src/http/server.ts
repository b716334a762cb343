/**
 * The one HTTP listener (SPEC §2 `http`): HLS, HTTP MPEG-TS, the API, metrics, health
 * and the admin UI all route through it. `/api` and `/admin` (and `/metrics`, `/health`
 * unless `metrics_public;`) require `edit_auth` Basic credentials when configured, and are
 * reachable from loopback only otherwise.
 *
 * It is also where HTTP clients are bounded before any route runs (README "Limits"):
 * connections per listener and per address are refused at accept, a request head must
 * arrive within its deadline and size, a path that could walk out of its route is refused,
 * and API bodies are capped. A refusal is counted (`countLimitHit`) and logged at warn, at
 * most once per interval per kind, so a flood cannot flood the log too.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { isIP, type BlockList, type Socket } from 'node:net';
import type { Logger } from 'pino';
import type { Config, Listen } from '../config/types.js';
import { countLimitHit, limitMs, type LimitName, type Limits } from '../core/limits.js';
import { addressList, httpClientIp, normalizeIp } from '../net.js';
import { safeEqual } from '../core/secrets.js';
import { ThrottledWarn } from '../log.js';
import { pathProblem } from './bounds.js';
import { HttpError, type HttpRouter } from './router.js';
import { ApiError, isApiPath, sendError } from './api.js';

export interface HttpFront {
  start(): Promise<void>;
  stop(): Promise<void>;
  address(): { host: string; port: number } | undefined;
  /** Open connections (for `/metrics`). */
  connections(): number;
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

/** Whether a request may use /api and /admin (and /metrics, /health unless they are public). */
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

/** The operator's routes (JSON API, admin UI, metrics, health): small bodies at most. */
function isOperatorPath(path: string): boolean {
  return (
    path === '/api' ||
    path.startsWith('/api/') ||
    path === '/admin' ||
    path.startsWith('/admin/') ||
    path === '/metrics' ||
    path === '/health'
  );
}

/** Operator routes behind edit_auth or loopback; `metrics_public;` opens metrics and health. */
function needsAdmin(path: string, config: Config): boolean {
  if (!isOperatorPath(path)) return false;
  return !config.metricsPublic || (path !== '/metrics' && path !== '/health');
}

/** Refusals of one kind are logged at most this often, with a count. */
const WARN_INTERVAL_MS = 10_000;
/**
 * Between requests a connection may idle this long. Above the 60 s idle timeout of common
 * load balancers, so a balancer never reuses a connection we are closing at that moment.
 */
const KEEP_ALIVE_MS = 65_000;

const STATUS_TEXT: Record<number, string> = {
  400: 'Bad Request',
  408: 'Request Timeout',
  431: 'Request Header Fields Too Large',
};

interface Conn {
  /** Counted against max_connections_per_ip (a trusted proxy's connections are not). */
  perIp: boolean;
  /** Cut when the first request head has not arrived within handshake_timeout. */
  firstRequest: NodeJS.Timeout | undefined;
}

export function createHttpFront(
  listen: Listen,
  router: HttpRouter,
  deps: { config: () => Config; log: Logger },
): HttpFront {
  let server: Server | undefined;
  const conns = new Map<Socket, Conn>();
  const perIp = new Map<string, number>();
  const warns = new ThrottledWarn(deps.log, WARN_INTERVAL_MS);
  // Built once per loaded config, not per request.
  let trustedCache: { config: Config; list: BlockList | undefined } | undefined;
  const trustedFor = (config: Config): BlockList | undefined => {
    if (trustedCache?.config !== config) {
      const list = config.trustedProxies.length > 0 ? addressList(config.trustedProxies) : undefined;
      trustedCache = { config, list };
    }
    return trustedCache.list;
  };

  const limitHit = (name: LimitName, fields: object, msg: string): void => {
    countLimitHit(name);
    warns.warn(name, { limit: name, ...fields }, msg);
  };

  /** Node reads these per connection and per check, so a reload applies to the next ones. */
  const tune = (s: Server, limits: Limits): void => {
    s.maxConnections = limits.max_connections;
    // Node reads the property for each new connection; its types only know the constructor option.
    (s as Server & { maxHeaderSize: number }).maxHeaderSize = limits.request_head_bytes;
    // Node measures it from the first byte of each request head (from accept for the first).
    s.headersTimeout = limitMs(limits, 'request_head_timeout');
    s.keepAliveTimeout = KEEP_ALIVE_MS;
    // A request "completes" when its body does: an HTTP MPEG-TS publish never does, so any
    // whole-request deadline would cut every publisher. Heads are bounded by headersTimeout
    // and API bodies by readBody; live bodies are bounded by their sessions.
    s.requestTimeout = 0;
  };

  /** At accept, before Node's HTTP parser sees a byte: refuse an address over its share. */
  const onConnection = (socket: Socket): void => {
    const config = deps.config();
    if (server) tune(server, config.limits);
    const ip = normalizeIp(socket.remoteAddress ?? '');
    const trusted = trustedFor(config);
    const counted = !trusted?.check(ip, isIP(ip) === 6 ? 'ipv6' : 'ipv4');
    const open = perIp.get(ip) ?? 0;
    if (counted && open >= config.limits.max_connections_per_ip) {
      limitHit('max_connections_per_ip', { ip, open }, 'http connection refused: too many from this address');
      socket.destroy();
      return;
    }
    const conn: Conn = { perIp: counted, firstRequest: undefined };
    if (counted) perIp.set(ip, open + 1);
    conn.firstRequest = setTimeout(
      () => {
        limitHit('handshake_timeout', { ip }, 'http connection closed: no request head in time');
        socket.destroy();
      },
      limitMs(config.limits, 'handshake_timeout'),
    );
    conns.set(socket, conn);
    socket.once('close', () => {
      clearTimeout(conn.firstRequest);
      conns.delete(socket);
      if (!conn.perIp) return;
      const n = (perIp.get(ip) ?? 1) - 1;
      if (n > 0) perIp.set(ip, n);
      else perIp.delete(ip);
    });
  };

  /** The client's fault: answered with its status, logged at warn (throttled), never as an error. */
  const badRequest = (res: ServerResponse, status: number, why: string, req: IncomingMessage): void => {
    const path = (req.url ?? '').split('?')[0]?.slice(0, 200);
    warns.warn(`http_${status}`, { status, why, path, ip: req.socket.remoteAddress }, 'bad http request');
    if (path !== undefined && isApiPath(path)) {
      sendError(res, status, status === 413 ? 'body_too_large' : 'bad_request', why, { Connection: 'close' });
      return;
    }
    sendText(res, status, `${status} ${why}\n`, { Connection: 'close' });
  };

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const conn = conns.get(req.socket);
    if (conn?.firstRequest) {
      clearTimeout(conn.firstRequest);
      conn.firstRequest = undefined;
    }
    const config = deps.config();
    const trusted = trustedFor(config);
    const ip = httpClientIp(req.socket.remoteAddress ?? '', req.headers, trusted);
    const target = req.url ?? '/';
    const problem = pathProblem(target);
    let url: URL | undefined;
    if (problem === undefined) {
      try {
        url = new URL(target, 'http://streamgate.invalid');
      } catch {
        url = undefined;
      }
    }
    if (url === undefined) {
      badRequest(res, 400, problem ?? 'unreadable request target', req);
      return;
    }
    const path = url.pathname;
    // Whatever a handler leaves unread of a body is not drained for keep-alive: that would
    // let a client stream an endless body into any route.
    if (req.headers['transfer-encoding'] !== undefined || Number(req.headers['content-length'] ?? 0) > 0) {
      res.setHeader('Connection', 'close');
    }
    if (needsAdmin(path, config) && !adminAllowed(req, ip, config)) {
      const headers: Record<string, string> = config.editAuth
        ? { 'WWW-Authenticate': 'Basic realm="streamgate"' }
        : {};
      if (isApiPath(path)) {
        if (config.editAuth) sendError(res, 401, 'unauthorized', 'edit_auth credentials required', headers);
        else sendError(res, 403, 'forbidden', 'the API answers loopback only (no edit_auth configured)');
        return;
      }
      sendText(
        res,
        config.editAuth ? 401 : 403,
        config.editAuth ? 'authentication required\n' : 'loopback only\n',
        headers,
      );
      return;
    }
    if (
      isOperatorPath(path) &&
      Number(req.headers['content-length'] ?? 0) > config.limits.request_body_bytes
    ) {
      countLimitHit('request_body_bytes');
      badRequest(res, 413, `request body over ${config.limits.request_body_bytes} bytes`, req);
      return;
    }
    const found = router.find(req.method ?? 'GET', path);
    if (!('handler' in found)) {
      if (isApiPath(path)) {
        if (found.methodMismatch) {
          sendError(res, 405, 'method_not_allowed', `${req.method ?? ''} is not allowed here`);
        } else {
          sendError(res, 404, 'not_found', 'no such API route');
        }
        return;
      }
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
      const limits = deps.config().limits;
      server = createServer(
        {
          // How often Node looks for heads over headersTimeout: a tenth of it, so a deadline
          // holds to within 10 % instead of Node's default 30 s granularity.
          connectionsCheckingInterval: Math.min(
            1000,
            Math.max(50, limitMs(limits, 'request_head_timeout') / 10),
          ),
        },
        (req, res) => {
          handle(req, res).catch((err: unknown) => {
            if (err instanceof ApiError) {
              sendError(res, err.status, err.code, err.message);
              return;
            }
            if (err instanceof HttpError || err instanceof URIError) {
              const status = err instanceof HttpError ? err.status : 400;
              badRequest(res, status, err.message, req);
              return;
            }
            deps.log.error(
              { err: (err as Error).message, url: req.url?.split('?')[0] },
              'http handler failed',
            );
            if (res.headersSent) res.destroy();
            else if (isApiPath((req.url ?? '').split('?')[0] ?? '')) {
              sendError(res, 500, 'internal_error', 'the server failed to answer; see its log');
            } else sendText(res, 500, 'internal error\n');
          });
        },
      );
      tune(server, limits);
      // Ahead of Node's own listener, so a refused socket never gets an HTTP parser.
      server.prependListener('connection', onConnection);
      server.on('drop', (data?: { remoteAddress?: string }) => {
        limitHit(
          'max_connections',
          { ip: normalizeIp(data?.remoteAddress ?? ''), open: conns.size },
          'http connection refused: listener full',
        );
      });
      server.on('clientError', (err: NodeJS.ErrnoException, socket: Socket) => {
        const ip = normalizeIp(socket.remoteAddress ?? '');
        let status: number;
        if (err.code === 'HPE_HEADER_OVERFLOW') {
          status = 431;
          limitHit('request_head_bytes', { ip }, 'http request head too large');
        } else if (err.code === 'ERR_HTTP_REQUEST_TIMEOUT') {
          status = 408;
          limitHit('request_head_timeout', { ip }, 'http request head not complete in time');
        } else {
          status = 400;
          if (err.code !== 'ECONNRESET') {
            warns.warn('http_malformed', { ip, code: err.code, why: err.message }, 'malformed http request');
          }
        }
        if (socket.writable && err.code !== 'ECONNRESET') {
          // Destroyed once written: a client that never closes its side must not keep the socket.
          socket.end(
            `HTTP/1.1 ${status} ${STATUS_TEXT[status] ?? ''}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`,
            () => socket.destroy(),
          );
        } else {
          socket.destroy();
        }
      });
      await new Promise<void>((resolve, reject) => {
        server?.once('error', reject);
        server?.listen(listen.port, listen.host, () => resolve());
      });
    },
    connections() {
      return conns.size;
    },
    address() {
      const a = server?.address();
      return a && typeof a === 'object' ? { host: a.address, port: a.port } : undefined;
    },
    async stop() {
      warns.stop();
      await new Promise<void>((resolve) => {
        if (!server) return resolve();
        server.close(() => resolve());
        for (const s of conns.keys()) s.destroy();
      });
    },
  };
}
