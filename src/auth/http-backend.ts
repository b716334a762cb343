/**
 * The HTTP authorization backend (AUTH-SPEC §1.2–§2.3): `on_play` as a GET with the §1.3
 * parameters in the query, `on_publish` as a POST with the same parameters in the query and
 * as a JSON body (A4). One keep-alive undici Agent is shared by every backend so a burst of
 * new sessions reuses warm connections, and each call is bounded by one deadline covering
 * connect and response (3 s by default, §1.2); a slow backend only delays its own callers.
 */
import { packageVersion } from '../package-info.js';
import type { Agent, Dispatcher } from 'undici';
import type { AuthSpec } from '../config/types.js';
import {
  MAX_BODY_BYTES,
  decideHttp,
  parseJsonBody,
  requestParams,
  type AuthBackend,
  type AuthContext,
  type AuthDecision,
  type AuthRequest,
} from './backend.js';

/** AUTH-SPEC §1.2: an identifiable User-Agent towards the backend. */
export const USER_AGENT = `streamgate/${packageVersion()}`;

const sharedAgents = new Map<number, Agent>();

/**
 * The process-wide pool for backends with this timeout. Keep-alive connections idle for up
 * to 30 s so a steady trickle of new sessions does not pay a TCP handshake each. The connect
 * timeout lives on the pool (undici has none per request), hence one pool per timeout value.
 * undici is loaded with the first pool: a server without HTTP backends never needs it.
 */
async function sharedDispatcher(timeoutMs: number): Promise<Agent> {
  let agent = sharedAgents.get(timeoutMs);
  if (!agent) {
    const { Agent } = await import('undici');
    agent = sharedAgents.get(timeoutMs);
    if (agent) return agent;
    agent = new Agent({
      keepAliveTimeout: 30_000,
      keepAliveMaxTimeout: 60_000,
      pipelining: 1,
      connect: { timeout: timeoutMs },
    });
    sharedAgents.set(timeoutMs, agent);
  }
  return agent;
}

export interface HttpBackendOptions {
  /** Fallback auth duration for responses without a valid X-AuthDuration (seconds). */
  defaultAuthDuration: number;
  dispatcher?: Dispatcher;
}

/** Errors carry at most a code: undici messages can quote the URL, and the URL carries the token. */
export function errorCode(err: unknown): string {
  if (typeof err === 'object' && err !== null) {
    const code = (err as { code?: unknown }).code;
    if (typeof code === 'string') return code;
    const name = (err as { name?: unknown }).name;
    if (typeof name === 'string') return name;
  }
  return 'unknown';
}

/** Characters URLSearchParams leaves as they are (application/x-www-form-urlencoded). */
const FORM_SAFE = /^[A-Za-z0-9*\-._]*$/;

/**
 * One value form-encoded exactly as URLSearchParams writes it (spaces as `+`, everything but
 * `*-._` and alphanumerics percent-encoded), without building a URLSearchParams per request:
 * most values (names, addresses, ids, counts) need no encoding at all.
 */
export function formValue(v: string): string {
  if (FORM_SAFE.test(v)) return v;
  return new URLSearchParams([['', v]]).toString().slice(1);
}

/** Form encoding as URLSearchParams writes it. */
function formEncode(pairs: Iterable<[string, string]>): string {
  let out = '';
  for (const [k, v] of pairs) {
    if (out) out += '&';
    out += `${formValue(k)}=${formValue(v)}`;
  }
  return out;
}

export class HttpBackend implements AuthBackend {
  private readonly origin: string;
  /** Path plus the configured query, ending in `?` or `&` so parameters can be appended. */
  private readonly pathPrefix: string;
  /** `extra` options, encoded once (they never change). */
  private readonly extraQuery: string;
  private readonly timeoutMs: number;
  private dispatcher: Dispatcher | undefined;
  /** Request headers, built once: they never change for a backend. */
  private readonly getHeaders: Record<string, string>;
  private readonly postHeaders: Record<string, string>;

  constructor(
    private readonly spec: AuthSpec,
    private readonly opts: HttpBackendOptions,
  ) {
    const base = new URL(spec.url);
    this.origin = base.origin;
    this.pathPrefix = base.pathname + (base.search ? `${base.search}&` : '?');
    this.extraQuery = formEncode(Object.entries(spec.extra));
    this.timeoutMs = Math.max(1, spec.timeoutSec) * 1000;
    this.dispatcher = opts.dispatcher;
    const headers: Record<string, string> = { 'user-agent': USER_AGENT, accept: 'application/json' };
    if (spec.bearer !== undefined) headers['authorization'] = `Bearer ${spec.bearer}`;
    this.getHeaders = Object.freeze(headers);
    this.postHeaders = Object.freeze({ ...headers, 'content-type': 'application/json' });
  }

  /** The URL for one request: configured query first, then §1.3 parameters, then `extra` (§1.2). */
  buildUrl(req: AuthRequest): URL {
    return new URL(this.origin + this.path(req));
  }

  private path(req: AuthRequest): string {
    return this.pathPrefix + formEncode(requestParams(req)) + (this.extraQuery ? `&${this.extraQuery}` : '');
  }

  async check(req: AuthRequest, ctx: AuthContext): Promise<AuthDecision> {
    const publish = ctx.kind === 'publish';
    const headers = publish ? this.postHeaders : this.getHeaders;
    const body = publish ? JSON.stringify(req) : undefined;
    // Connect, headers and body each have the deadline in undici itself; the session manager
    // bounds the whole decision on its own clock. A per-request AbortController and timer
    // cost about 15 % of a backend call, so there is none.
    let res: Dispatcher.ResponseData;
    try {
      this.dispatcher ??= await sharedDispatcher(this.timeoutMs);
      res = await this.dispatcher.request({
        origin: this.origin,
        path: this.path(req),
        method: publish ? 'POST' : 'GET',
        headers,
        body,
        headersTimeout: this.timeoutMs,
        bodyTimeout: this.timeoutMs,
      });
    } catch (err) {
      const code = errorCode(err);
      return { kind: 'unavailable', reason: /timeout/i.test(code) ? 'timeout' : 'connect' };
    }
    // The status decides; a body that is late, too big or malformed is dropped (AUTH-SPEC §2.3).
    const text = await readBody(res, MAX_BODY_BYTES).catch(() => undefined);
    const header = (name: string): string | undefined => {
      const v = res.headers[name];
      return Array.isArray(v) ? v[0] : v;
    };
    const parsed = text === undefined ? undefined : parseJsonBody(text, header('content-type'));
    return decideHttp(res.statusCode, header, parsed, this.opts.defaultAuthDuration);
  }
}

/**
 * The response body as text, or undefined when it is larger than `limit`. The usual
 * answer has no body, so an announced empty one skips stream iteration altogether.
 */
async function readBody(res: Dispatcher.ResponseData, limit: number): Promise<string | undefined> {
  const length = res.headers['content-length'];
  if (length === '0') {
    await res.body.dump();
    return '';
  }
  return readLimited(res.body, limit);
}

/** Reads a body up to `limit` bytes; returns undefined (and discards the rest) when it is larger. */
async function readLimited(
  body: Dispatcher.ResponseData['body'],
  limit: number,
): Promise<string | undefined> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of body) {
    const b = chunk as Buffer;
    size += b.length;
    if (size > limit) {
      body.destroy();
      return undefined;
    }
    chunks.push(b);
  }
  return Buffer.concat(chunks).toString('utf8');
}
