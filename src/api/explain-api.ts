/**
 * `POST /api/auth/explain`: what the server would do with a URL a client opens, without doing
 * it. From the URL as a player or encoder would use it (any protocol) and a client address it
 * derives what admission derives — stream name, protocol, token, the session keys in force and
 * the identity key — then shows the state held for that identity (an open session, a cached
 * denial, a ban), the local check that would refuse it, and the chain or backend that would be
 * asked with the exact request. No session is opened and no rate-limit budget is spent; the
 * backend is called only with `?call=true`, and then only that one call.
 *
 * It restates admission's order (src/sessions/admission.ts) on purpose rather than running it:
 * admission's steps change state (counts, caches, single-flight), which a dry run must not.
 */
import { randomUUID } from 'node:crypto';
import type { AuthDecision, AuthRequest } from '../auth/backend.js';
import { BackendCalls } from '../sessions/backend-call.js';
import { createBackend } from '../auth/index.js';
import { HttpBackend } from '../auth/http-backend.js';
import { isScriptPath } from '../auth/script-backend.js';
import { domainAllowed } from '../auth/rules.js';
import { systemClock } from '../clock.js';
import { protocolAllowed } from '../config/resolve.js';
import type { AuthSpec, Config } from '../config/types.js';
import { perRequest, type Proto, type SessionKind } from '../core/proto.js';
import type { DenyReason } from '../core/reasons.js';
import { tokenHash } from '../core/secrets.js';
import { DEFAULT_SESSION_KEYS } from '../core/session-keys.js';
import { canonicalIp } from '../net.js';
import { ApiError, apiRoute, readJsonObject, sendJson } from '../http/api.js';
import type { HttpRouter } from '../http/router.js';
import { pathPattern } from '../http/router.js';
import { identityKey } from '../sessions/identity.js';
import type { Sessions } from '../sessions/manager.js';
import type { StreamPolicy } from '../sessions/types.js';
import { backendLabel } from '../metrics/metrics.js';

export interface ExplainDeps {
  config: () => Config;
  policy: (name: string) => StreamPolicy | undefined;
  manager: Pick<Sessions, 'store' | 'list'>;
  adminView?: { verify(token: string, config: Config): boolean };
}

/** What a URL names, as the protocol adapters read it (SPEC §4). */
export interface ParsedTarget {
  proto: Proto;
  name: string;
  token: string | undefined;
  qs: string;
  query: URLSearchParams;
}

const HLS_RESOURCE = /^(?:index\.m3u8|mono\.m3u8|mono-\d{1,15}\.ts)$/;
const KS_SEGMENT = /^(.*?)\/ks\/([^/]+)(\/.*)$/;

function decode(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    throw new ApiError(400, 'bad_url', 'malformed percent-escape in the URL');
  }
}

/** Reads a play or publish URL of any protocol; ApiError 400 `bad_url` when it names no stream. */
export function parseTarget(raw: string): ParsedTarget {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new ApiError(400, 'bad_url', 'url must be an absolute rtmp://, rtsp:// or http(s):// URL');
  }
  const scheme = url.protocol.replace(/:$/, '').toLowerCase();
  const query = url.searchParams;
  const qs = url.search.replace(/^\?/, '');
  let proto: Proto;
  let name: string;
  let token = query.get('token') ?? query.get('ks') ?? undefined;
  if (scheme === 'rtmp' || scheme === 'rtmps') {
    // SPEC §4: `rtmp://HOST/app/stream`; the `static` (older: `rtmp`) app is discarded.
    const parts = url.pathname.split('/').filter(Boolean).map(decode);
    if (parts[0] === 'static' || parts[0] === 'rtmp') parts.shift();
    proto = 'rtmp';
    name = parts.join('/');
  } else if (scheme === 'rtsp' || scheme === 'rtsps') {
    proto = 'rtsp';
    name = decode(url.pathname).replace(/^\/+|\/+$/g, '');
  } else if (scheme === 'http' || scheme === 'https') {
    let path = url.pathname;
    const ks = KS_SEGMENT.exec(path);
    if (ks) {
      path = `${ks[1] ?? ''}${ks[3] ?? ''}`;
      token ??= decode(ks[2] ?? '');
    }
    const slash = path.lastIndexOf('/');
    const last = path.slice(slash + 1);
    name = decode(path.slice(1, Math.max(1, slash)));
    if (last === 'mpegts') proto = 'tshttp';
    else if (HLS_RESOURCE.test(last)) proto = 'hls';
    else throw new ApiError(400, 'bad_url', 'an HTTP URL ends in /index.m3u8, /mono.m3u8 or /mpegts');
  } else {
    throw new ApiError(400, 'bad_url', `unsupported scheme ${scheme}://`);
  }
  if (name === '') throw new ApiError(400, 'bad_url', 'the URL names no stream');
  return { proto, name, token: token === '' ? undefined : token, qs, query };
}

/** The request a backend would get, as text an operator can compare with the backend's log. */
function describeRequest(spec: AuthSpec, req: AuthRequest, kind: SessionKind, config: Config): unknown {
  const url = spec.url;
  const scheme = url.slice(0, Math.max(0, url.indexOf(':'))).toLowerCase();
  if (scheme === 'http' || scheme === 'https') {
    const backend = new HttpBackend(spec, { defaultAuthDuration: config.defaultAuthDuration });
    return {
      type: 'http',
      method: kind === 'publish' ? 'POST' : 'GET',
      url: backend.buildUrl(req).toString(),
      headers: {
        accept: 'application/json',
        ...(spec.bearer !== undefined ? { authorization: 'Bearer [redacted]' } : {}),
        ...(kind === 'publish' ? { 'content-type': 'application/json' } : {}),
      },
      ...(kind === 'publish' ? { body: req } : {}),
      timeout_sec: spec.timeoutSec,
    };
  }
  if (isScriptPath(url)) return { type: 'script', path: url, stdin: req, timeout_sec: spec.timeoutSec };
  if (scheme === 'auth') {
    const name = url.slice('auth://'.length).replace(/\/+$/, '');
    const chain = config.authBackends.get(name);
    if (chain === undefined) return { type: 'chain', name, error: 'auth_backend not defined; refused' };
    return {
      type: 'chain',
      name,
      rules: chain.rules.map((r) => `${r.action} ${r.kind} ${r.values.join(' ')}`),
      allow_default: chain.allowDefault,
      backends: chain.backends.map((b) => ({
        backend: backendLabel(b),
        request: describeRequest(b, req, kind, config),
      })),
    };
  }
  return {
    type: 'local',
    verifier: backendLabel(spec),
    note: 'verified in-process; no request leaves the server',
  };
}

function decisionView(d: AuthDecision): Record<string, unknown> {
  switch (d.kind) {
    case 'allow':
      return {
        kind: 'allow',
        user_id: d.userId ?? null,
        auth_duration: d.authDurationSec,
        max_sessions: d.maxSessions ?? null,
        unique: d.unique === true,
        config: d.config ?? null,
      };
    case 'deny':
      return { kind: 'deny', reason: d.reason, auth_duration: d.authDurationSec };
    case 'redirect':
      return { kind: 'redirect', location: d.location };
    case 'unavailable':
      return { kind: 'unavailable', reason: d.reason };
  }
}

export async function explain(
  deps: ExplainDeps,
  input: { url: string; ip: string; kind: SessionKind; referer?: string; userAgent?: string },
  call: boolean,
): Promise<Record<string, unknown>> {
  const config = deps.config();
  const target = parseTarget(input.url);
  const out: Record<string, unknown> = {
    request: {
      kind: input.kind,
      proto: target.proto,
      name: target.name,
      ip: input.ip,
      token: target.token ?? null,
      token_hash: tokenHash(target.token) ?? null,
      qs: target.qs,
    },
    session_opened: false,
    backend_called: false,
  };
  const verdict = (
    would: 'allow' | 'deny' | 'ask_backend',
    reason?: DenyReason | string,
  ): Record<string, unknown> => {
    out['would'] = reason === undefined ? would : { decision: would, reason };
    return out;
  };
  const policy = deps.policy(target.name);
  if (policy === undefined) return verdict('deny', 'stream_not_found');
  if (input.kind === 'play' && !protocolAllowed(policy.protocols, target.proto)) {
    return verdict('deny', 'protocol_disabled');
  }
  const spec =
    input.kind === 'play' ? (policy.onPlay ?? config.onPlay) : (policy.onPublish ?? config.onPublish);
  const needsBackend = spec !== undefined && spec.url !== 'true';
  out['auth'] =
    spec === undefined
      ? { on: 'none (allow without a backend call)' }
      : {
          url: backendLabel(spec),
          session_keys: spec.sessionKeys.length > 0 ? spec.sessionKeys : DEFAULT_SESSION_KEYS,
          max_sessions: spec.maxSessions ?? null,
          soft_limitation: spec.softLimitation,
          domains: spec.domains ?? null,
          timeout_sec: spec.timeoutSec,
        };
  if (input.kind === 'publish' && policy.password !== undefined) {
    const given = target.query.get('password');
    // Whether it matches is not shown: the explain API must not become a password oracle.
    out['password'] = given === null ? 'missing' : 'given (checked at publish)';
    if (given === null) return verdict('deny', 'wrong_password');
  }
  let token = target.token;
  if (token === undefined) {
    if (config.noAutoToken && needsBackend) return verdict('deny', 'no_token');
    token = '(generated per session)';
    out['token_note'] = 'no token in the URL: the server generates one per session (AUTH-SPEC §3.4)';
  }
  if (spec?.domains !== undefined && !domainAllowed(input.referer, spec.domains, spec.domainsStrict)) {
    return verdict('deny', 'domain_denied');
  }
  const keys = spec !== undefined && spec.sessionKeys.length > 0 ? spec.sessionKeys : DEFAULT_SESSION_KEYS;
  const idKey = identityKey(
    keys,
    { name: target.name, ip: input.ip, proto: target.proto, token, query: target.query },
    input.kind,
  );
  out['identity'] = { session_keys: keys, id_key: idKey };
  const store = deps.manager.store;
  const now = Date.now();
  const ban = store.getBan(idKey, now);
  const open = deps.manager
    .list({ name: target.name })
    .filter((s) => s.idKey === idKey && s.kind === input.kind);
  out['cached'] = {
    granted: open.map((s) => ({ session_id: s.id, opened_at: s.openedAt, user_id: s.userId ?? null })),
    denied_until: ban !== undefined && !ban.ban ? ban.until : null,
    banned_until: ban?.ban === true ? ban.until : null,
    reason: ban?.reason ?? null,
  };
  if (
    input.kind === 'play' &&
    target.token?.startsWith('ADM') === true &&
    deps.adminView?.verify(target.token, config) === true
  ) {
    return verdict('allow', 'admin_view');
  }
  if (ban !== undefined) return verdict('deny', ban.ban ? 'banned' : 'cached_negative');
  if (input.kind === 'play' && perRequest(target.proto) && store.perRequestByIdKey(idKey) !== undefined) {
    return verdict('allow', 'reuses the open HLS session of this identity');
  }
  if (!needsBackend) return verdict('allow', spec === undefined ? 'no on_play/on_publish' : 'on_* true');
  const calls = new BackendCalls(
    (s) => createBackend(s, config, { now: () => Date.now() }),
    systemClock,
    store,
  );
  const sessionId = `explain-${randomUUID()}`;
  const clientReq = {
    kind: input.kind,
    proto: target.proto,
    name: target.name,
    ip: input.ip,
    qs: target.qs,
    query: target.query,
    ...(target.token !== undefined ? { token: target.token } : {}),
    ...(input.referer !== undefined ? { referer: input.referer } : {}),
    ...(input.userAgent !== undefined ? { userAgent: input.userAgent } : {}),
  };
  const authReq = calls.newSessionRequest(clientReq, token, sessionId);
  out['backend_request'] = describeRequest(spec, authReq, input.kind, config);
  if (call) {
    if (target.token === undefined) {
      out['backend_answer'] = { skipped: 'no token in the URL; a real session would send a generated one' };
    } else {
      const d = await calls.call(calls.backendFor(spec), spec, authReq, input.kind);
      out['backend_called'] = true;
      out['backend_answer'] = decisionView(d);
    }
  }
  return verdict('ask_backend');
}

export function registerExplainRoutes(router: HttpRouter, deps: ExplainDeps): void {
  router.add(
    'POST',
    pathPattern('/api/auth/explain'),
    apiRoute(async (req, res, ctx) => {
      const body = await readJsonObject(req, deps.config().limits);
      const url = body['url'];
      if (typeof url !== 'string' || url === '') {
        throw new ApiError(400, 'url_required', 'url is the URL a client would open');
      }
      const rawIp = body['ip'] ?? ctx.ip;
      const ip = typeof rawIp === 'string' ? canonicalIp(rawIp) : undefined;
      if (ip === undefined) throw new ApiError(400, 'bad_ip', 'ip must be an IPv4 or IPv6 address');
      const kind = body['kind'] ?? 'play';
      if (kind !== 'play' && kind !== 'publish') {
        throw new ApiError(400, 'bad_kind', 'kind is play or publish');
      }
      const referer = body['referer'];
      const userAgent = body['user_agent'];
      const callParam = ctx.url.searchParams.get('call');
      const result = await explain(
        deps,
        {
          url,
          ip,
          kind,
          ...(typeof referer === 'string' ? { referer } : {}),
          ...(typeof userAgent === 'string' ? { userAgent } : {}),
        },
        callParam === 'true' || callParam === '1',
      );
      sendJson(res, 200, result);
    }),
  );
}
