/**
 * Helpers shared by the HTTP media adapters (HLS, HTTP MPEG-TS): turning a request into
 * a ClientRequest, answering a denial the way AUTH-SPEC §5.3 prescribes, matching
 * `/NAME/<resource>` paths, and the stream's CORS `playback_headers` (§7.2).
 *
 * They live in the core because adapters may not import each other, and both HTTP
 * adapters need exactly the same answers so a player sees one behaviour.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { PlaybackHeaders } from '../config/types.js';
import type { Proto, SessionKind } from '../core/proto.js';
import { refusalText } from '../core/reasons.js';
import type { ClientRequest, Denial } from '../sessions/types.js';
import { isValidStreamName } from '../streams/names.js';
import type { RouteContext, RouteMatcher } from './router.js';
import { sendText } from './server.js';

/** `/ks/<KS>/` anywhere before the last path segment. */
const KS_SEGMENT = /^(.*?)\/ks\/([^/]+)(\/.*)$/;

/**
 * Matches `/NAME/<last>` where `last` satisfies `resource` and NAME is a valid stream name.
 * Reserved first segments (`api`, `admin`, …) are never valid names, so these routes cannot
 * shadow the API whatever order they were registered in.
 */
export function streamResourceMatcher(resource: RegExp): RouteMatcher {
  return (fullPath) => {
    // SPEC §6: a Kaltura-style `/ks/<KS>/` path segment carries the token; relative playlist
    // URIs resolve under it, so every later request of the player carries it too.
    const ksSegment = KS_SEGMENT.exec(fullPath);
    const pathname = ksSegment ? `${ksSegment[1] ?? ''}${ksSegment[3] ?? ''}` : fullPath;
    const slash = pathname.lastIndexOf('/');
    if (slash <= 0) return undefined;
    const name = pathname.slice(1, slash);
    const last = pathname.slice(slash + 1);
    const m = resource.exec(last);
    if (!m || !isValidStreamName(name)) return undefined;
    const params: Record<string, string> = { name, resource: last };
    if (ksSegment?.[2]) params['ks'] = decodeURIComponent(ksSegment[2]);
    m.slice(1).forEach((v, i) => {
      if (v !== undefined) params[`p${i + 1}`] = v;
    });
    return params;
  };
}

/** The ClientRequest of an HTTP play or publish; `token` is the `token` query parameter. */
export function httpClientRequest(
  req: IncomingMessage,
  ctx: RouteContext,
  kind: SessionKind,
  proto: Proto,
  name: string,
): ClientRequest {
  const query = ctx.url.searchParams;
  const token = query.get('token') ?? ctx.params['ks'] ?? null;
  const h = req.headers;
  return {
    kind,
    proto,
    name,
    ip: ctx.ip,
    qs: ctx.url.search.startsWith('?') ? ctx.url.search.slice(1) : ctx.url.search,
    query,
    ...(token !== null && token !== '' ? { token } : {}),
    ...(typeof h.referer === 'string' ? { referer: h.referer } : {}),
    ...(typeof h['user-agent'] === 'string' ? { userAgent: h['user-agent'] } : {}),
    ...(typeof h.host === 'string' ? { host: h.host } : {}),
  };
}

/**
 * AUTH-SPEC §5.3: 403/404 with a short diagnostic body, 302 with the backend's Location, or
 * 429 with Retry-After (RFC 6585 §4) when the client's address is over its new-session budget.
 */
export function sendDenial(res: ServerResponse, denial: Denial, headers: Record<string, string> = {}): void {
  if (denial.status === 302 && denial.location) {
    sendText(res, 302, `302 ${refusalText(denial)}\n`, {
      ...headers,
      Location: denial.location,
      'Cache-Control': 'no-cache',
    });
    return;
  }
  const status = denial.status === 302 ? 403 : denial.status;
  const retry: Record<string, string> =
    status === 429 ? { 'Retry-After': String(denial.retryAfterSec ?? 1) } : {};
  sendText(res, status, `${status} ${refusalText(denial)}\n`, {
    ...headers,
    ...retry,
    'Cache-Control': 'no-cache',
  });
}

/**
 * The CORS headers for a playback response (AUTH-SPEC §7.2): the stream's `playback_headers`
 * when its `protocols`/`playback` filters select this response, otherwise
 * `Access-Control-Allow-Origin: *`, because segments and playlists are gated by the token in
 * the URL, not by the embedding origin, and browser players (hls.js) need CORS to fetch them.
 */
export function playbackCors(
  configured: PlaybackHeaders | undefined,
  protocol: string,
  playback = 'live',
): Record<string, string> {
  const applies =
    configured !== undefined &&
    configured.headers.length > 0 &&
    (configured.protocols === undefined || configured.protocols.includes(protocol)) &&
    (configured.playback === undefined || configured.playback.includes(playback));
  if (!applies) return { 'Access-Control-Allow-Origin': '*' };
  const out: Record<string, string> = {};
  for (const [k, v] of configured.headers) out[k] = v;
  return out;
}

/** Answers a CORS preflight with the playback headers plus the methods a player may use. */
export function sendPreflight(
  req: IncomingMessage,
  res: ServerResponse,
  cors: Record<string, string>,
  methods: string,
): void {
  const requested = req.headers['access-control-request-headers'];
  res.writeHead(204, {
    ...cors,
    'Access-Control-Allow-Methods': methods,
    ...(typeof requested === 'string' && requested !== ''
      ? { 'Access-Control-Allow-Headers': requested }
      : {}),
    'Access-Control-Max-Age': '600',
    'Content-Length': '0',
  });
  res.end();
}
