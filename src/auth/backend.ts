/**
 * The authorization backend contract (AUTH-SPEC §11) and the pure rules that turn a backend's
 * answer into a decision: status classes (§2.1), header validation (§2.2) and body handling
 * (§2.3). HTTP, script and chain backends all produce an AuthDecision through these helpers,
 * so one table of tests covers every transport.
 */
import type { Proto, SessionKind } from '../core/proto.js';

/** The parameters of AUTH-SPEC §1.3, named as they go on the wire. */
export interface AuthRequest {
  name: string;
  proto: Proto;
  ip: string;
  request_type: 'new_session' | 'update_session';
  request_number: number;
  session_id: string;
  stream_clients: number;
  total_clients: number;
  token?: string;
  duration?: number;
  bytes?: number;
  qs?: string;
  user_agent?: string;
  referer?: string;
  host?: string;
  /** AUTH-SPEC §1.3: the session plays the DVR archive. */
  dvr?: boolean;
  /** AUTH-SPEC §1.3 legacy descriptor of the archive resource (`dvr_session-hls_mbr_playlist-FROM-DUR`). */
  media_request?: string;
}

/** AUTH-SPEC §2.3 `allowed_dvr_ranges`: the archive a user may see, Unix seconds. */
export interface DvrRange {
  openedAt: number;
  closedAt: number;
}

export type AuthDecision =
  | {
      kind: 'allow';
      userId?: string;
      maxSessions?: number;
      unique?: boolean;
      authDurationSec: number;
      /** Partial stream config from the body (AUTH-SPEC §8.1). */
      config?: Record<string, unknown>;
      /** AUTH-SPEC §2.3: archive ranges this user may play; absent means the whole archive. */
      allowedDvrRanges?: DvrRange[];
      /**
       * Set when a chain allowed only because every backend was down and `allow default` is on
       * (AUTH-SPEC §6.3): the manager re-checks on the retry schedule instead of auth duration.
       */
      retry?: boolean;
    }
  | { kind: 'deny'; status: number; authDurationSec: number; reason: string }
  | { kind: 'redirect'; location: string }
  | { kind: 'unavailable'; reason: 'timeout' | 'connect' | 'http5xx' | 'error' | 'unsupported' };

export interface AuthContext {
  /** `on_play` backends are asked with GET, `on_publish` ones with POST (AUTH-SPEC §1.2). */
  kind: SessionKind;
}

export interface AuthBackend {
  /** Never rejects: transport failures come back as `unavailable`. */
  check(req: AuthRequest, ctx: AuthContext): Promise<AuthDecision>;
  /** Releases pooled connections or loaded modules; optional. */
  close?(): Promise<void>;
}

/** AUTH-SPEC A30: the largest auth duration a backend may ask for. */
export const MAX_AUTH_DURATION_SEC = 86_400;
/** Largest body read from a backend (AUTH-SPEC §2.3); a bigger one is ignored, not fatal. */
export const MAX_BODY_BYTES = 1024 * 1024;

/** AUTH-SPEC §2.2: integer ≥ 1, clamped to 86 400; anything else falls back to the default. */
export function parseAuthDuration(raw: unknown, defaultSec: number): number {
  let n: number;
  if (typeof raw === 'number') n = raw;
  else if (typeof raw === 'string' && /^\s*\d+\s*$/.test(raw)) n = Number(raw.trim());
  else return defaultSec;
  if (!Number.isInteger(n) || n < 1) return defaultSec;
  return Math.min(n, MAX_AUTH_DURATION_SEC);
}

/** AUTH-SPEC §2.2: integer ≥ 1; 0, negative or garbage mean "no limit" (undefined). */
export function parseMaxSessions(raw: unknown): number | undefined {
  let n: number;
  if (typeof raw === 'number') n = raw;
  else if (typeof raw === 'string' && /^\s*\d+\s*$/.test(raw)) n = Number(raw.trim());
  else return undefined;
  return Number.isInteger(n) && n >= 1 ? n : undefined;
}

/** AUTH-SPEC §2.2 / A24: an opaque string, trimmed; empty means no user id. */
export function parseUserId(raw: unknown): string | undefined {
  if (typeof raw === 'number' && Number.isFinite(raw)) return String(raw);
  if (typeof raw !== 'string') return undefined;
  const s = raw.trim();
  return s === '' ? undefined : s;
}

/** AUTH-SPEC §2.2: only the literal `true`, case-insensitive (a JSON `true` for scripts). */
export function parseUnique(raw: unknown): boolean {
  if (raw === true) return true;
  return typeof raw === 'string' && raw.trim().toLowerCase() === 'true';
}

/** Picks `config` out of a parsed body; anything that is not a JSON object is ignored (§2.3). */
export function bodyConfig(body: unknown): Record<string, unknown> | undefined {
  if (!isPlainObject(body)) return undefined;
  const c = body['config'];
  return isPlainObject(c) ? c : undefined;
}

export function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Parses a backend body as JSON, returning undefined for anything unusable (§2.3 garbage rules). */
export function parseJsonBody(text: string, contentType: string | undefined): unknown {
  if (contentType !== undefined && contentType !== '' && !/json/i.test(contentType)) return undefined;
  if (text.trim() === '') return undefined;
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return undefined;
  }
}

/** Header lookup the way the historical code did it: case-insensitive (AUTH-SPEC §2.2). */
export type HeaderGetter = (lowerName: string) => string | undefined;

export type StatusClass = 'allow' | 'redirect' | 'unavailable' | 'deny';

/** AUTH-SPEC §2.1 / A11: 2xx allow, 302 redirect, 500/502/503/504 unavailable, the rest deny. */
export function classifyStatus(status: number): StatusClass {
  if (status >= 200 && status < 300) return 'allow';
  if (status === 302) return 'redirect';
  if (status === 500 || status === 502 || status === 503 || status === 504) return 'unavailable';
  return 'deny';
}

/** Builds the decision for an HTTP answer; `body` is the already parsed JSON (or undefined). */
export function decideHttp(
  status: number,
  header: HeaderGetter,
  body: unknown,
  defaultSec: number,
): AuthDecision {
  switch (classifyStatus(status)) {
    case 'allow':
      return grant(
        {
          userId: header('x-userid'),
          maxSessions: header('x-max-sessions'),
          unique: header('x-unique'),
          authDuration: header('x-authduration'),
          config: bodyConfig(body),
          allowedDvrRanges: isPlainObject(body) ? body['allowed_dvr_ranges'] : undefined,
        },
        defaultSec,
      );
    case 'redirect': {
      const location = header('location');
      // A 302 without a target cannot be followed by any client; treat it as a refusal.
      if (location === undefined || location === '') {
        return { kind: 'deny', status, authDurationSec: defaultSec, reason: 'redirect_without_location' };
      }
      return { kind: 'redirect', location };
    }
    case 'unavailable':
      return { kind: 'unavailable', reason: 'http5xx' };
    case 'deny':
      return {
        kind: 'deny',
        status,
        authDurationSec: parseAuthDuration(header('x-authduration'), defaultSec),
        reason: 'backend_denied',
      };
  }
}

/** The raw grant fields as headers or a script's JSON carry them. */
export interface RawGrant {
  userId?: unknown;
  maxSessions?: unknown;
  unique?: unknown;
  authDuration?: unknown;
  config?: Record<string, unknown> | undefined;
  allowedDvrRanges?: unknown;
}

/** Validates grant fields once, whatever transport they came from (AUTH-SPEC §2.2). */
export function grant(raw: RawGrant, defaultSec: number): AuthDecision {
  const d: AuthDecision = { kind: 'allow', authDurationSec: parseAuthDuration(raw.authDuration, defaultSec) };
  const userId = parseUserId(raw.userId);
  if (userId !== undefined) d.userId = userId;
  const max = parseMaxSessions(raw.maxSessions);
  if (max !== undefined) d.maxSessions = max;
  if (parseUnique(raw.unique)) d.unique = true;
  if (raw.config !== undefined) d.config = raw.config;
  const ranges = parseDvrRanges(raw.allowedDvrRanges);
  if (ranges !== undefined) d.allowedDvrRanges = ranges;
  return d;
}

/**
 * AUTH-SPEC §2.3 `allowed_dvr_ranges`: an array of `{opened_at, closed_at}` in Unix seconds.
 * A malformed entry is dropped rather than widening access; a list that had entries and loses
 * them all becomes an empty list, which allows no archive at all (absent means no restriction).
 */
export function parseDvrRanges(raw: unknown): DvrRange[] | undefined {
  if (!Array.isArray(raw)) return undefined;
  const out: DvrRange[] = [];
  for (const r of raw.slice(0, 1000)) {
    if (!isPlainObject(r)) continue;
    const from = Number(r['opened_at']);
    const to = Number(r['closed_at']);
    if (Number.isFinite(from) && Number.isFinite(to) && to > from) out.push({ openedAt: from, closedAt: to });
  }
  return out;
}

/**
 * The AuthRequest as flat string pairs, in AUTH-SPEC §1.3 order: the query string of an HTTP
 * backend and the JSON body of an `on_publish` POST carry exactly these.
 */
export function requestParams(req: AuthRequest): [string, string][] {
  const out: [string, string][] = [
    ['name', req.name],
    ['proto', req.proto],
    ['ip', req.ip],
    ['request_type', req.request_type],
    ['request_number', String(req.request_number)],
    ['session_id', req.session_id],
    ['stream_clients', String(req.stream_clients)],
    ['total_clients', String(req.total_clients)],
  ];
  const optional: (keyof AuthRequest)[] = [
    'token',
    'duration',
    'bytes',
    'qs',
    'user_agent',
    'referer',
    'host',
    'dvr',
    'media_request',
  ];
  for (const k of optional) {
    const v = req[k];
    if (v !== undefined) out.push([k, String(v)]);
  }
  return out;
}
