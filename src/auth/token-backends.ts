/**
 * The built-in signed-token verifiers as auth backends (SPEC §6, AUTH-SPEC §10.7, §10.8):
 * `ks://PARTNER?secret=S1,S2`, `jwt://?secret=S` / `jwt://?jwks=FILE|URL` and
 * `securetoken://KEY?no_check_ip=true`. They answer like any backend, so the session manager
 * gives them single-flight, denial caching, limits and re-checks for free (§10.8: "treat
 * signed-URL verifiers as backends"). The auth duration is capped by the token's remaining
 * lifetime, which makes the re-check that follows expiry refuse and close the session.
 *
 * Parameters may sit in the URL query or as `key=value` options after it
 * (`on_play ks://123 secrets=a,b`), which keeps secrets out of URLs shown in logs.
 */
import type { AuthSpec, Config } from '../config/types.js';
import { tokenHash } from '../core/secrets.js';
import { JwksSource } from '../tokens/jwks.js';
import { checkJwt, decodeJwt, type JwtKeys } from '../tokens/jwt.js';
import { checkKs } from '../tokens/ks.js';
import { checkSecureToken } from '../tokens/securetoken.js';
import type { AuthBackend, AuthDecision, AuthRequest } from './backend.js';
import { parseUserId } from './backend.js';

export interface TokenBackendOptions {
  /** Milliseconds since the epoch; the session manager passes its clock. */
  now?: () => number;
  warn?: (msg: string) => void;
}

/** A parsed `scheme://HOST?k=v&…` plus the spec's extra options; later values do not override. */
export interface TokenUrl {
  host: string;
  params: Map<string, string>;
}

function decode(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}

/**
 * Splits the URL by hand rather than with `URL`: secrets may contain `+` (which form decoding
 * would turn into a space) and the host of `ks://123` is a number `URL` would not keep verbatim.
 */
export function parseTokenUrl(spec: Pick<AuthSpec, 'url' | 'extra'>): TokenUrl {
  const rest = spec.url.slice(spec.url.indexOf('://') + 3);
  const q = rest.indexOf('?');
  const host = decode((q < 0 ? rest : rest.slice(0, q)).replace(/\/+$/, ''));
  const params = new Map<string, string>();
  if (q >= 0) {
    for (const pair of rest.slice(q + 1).split('&')) {
      if (pair === '') continue;
      const eq = pair.indexOf('=');
      const k = decode(eq < 0 ? pair : pair.slice(0, eq));
      if (!params.has(k)) params.set(k, eq < 0 ? '' : decode(pair.slice(eq + 1)));
    }
  }
  for (const [k, v] of Object.entries(spec.extra)) if (!params.has(k)) params.set(k, v);
  return { host, params };
}

function list(v: string | undefined): string[] {
  return (v ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');
}

function flag(v: string | undefined): boolean {
  return v !== undefined && (v === '' || v.toLowerCase() === 'true' || v === '1');
}

/** A misconfigured verifier refuses new sessions (like an unknown scheme) instead of allowing. */
function refusing(warn: TokenBackendOptions['warn'], msg: string): AuthBackend {
  warn?.(msg);
  return { check: () => Promise.resolve({ kind: 'unavailable', reason: 'unsupported' }) };
}

/** `auth_duration = min(default, remaining lifetime)`, at least 1 (AUTH-SPEC §10.7). */
function duration(config: Config, remainingSec: number): number {
  return Math.max(1, Math.min(config.defaultAuthDuration, Math.floor(remainingSec)));
}

function denied(config: Config, reason: string): AuthDecision {
  return { kind: 'deny', status: 403, authDurationSec: config.defaultAuthDuration, reason };
}

function queryParam(req: AuthRequest, name: string): string | undefined {
  if (req.qs === undefined || req.qs === '') return undefined;
  const v = new URLSearchParams(req.qs).get(name);
  return v === null || v === '' ? undefined : v;
}

/** Where the KS sits (AUTH-SPEC §10.7): the `ks` query parameter, else the `token` one. */
export function ksFromRequest(req: AuthRequest): string | undefined {
  return queryParam(req, 'ks') ?? req.token;
}

/**
 * `ks://PARTNER?secret=S1,S2` (also `secrets=`). The KS partner must equal PARTNER; an empty
 * PARTNER accepts any partner signed by the secrets.
 */
export function createKsBackend(spec: AuthSpec, config: Config, opts: TokenBackendOptions = {}): AuthBackend {
  const { host, params } = parseTokenUrl(spec);
  const secrets = [...list(params.get('secret')), ...list(params.get('secrets'))];
  if (secrets.length === 0) return refusing(opts.warn, `${spec.url.split('?')[0] ?? 'ks://'} has no secret=`);
  const require = params.get('require') ?? 'sview';
  if (require !== 'sview') {
    return refusing(opts.warn, `ks:// require=${require} is not supported (only sview)`);
  }
  const now = opts.now ?? Date.now;
  return {
    check(req): Promise<AuthDecision> {
      const ks = ksFromRequest(req);
      if (ks === undefined) return Promise.resolve(denied(config, 'INVALID_STR'));
      const r = checkKs(ks, {
        secrets,
        partnerId: host,
        now: now(),
        ip: req.ip,
        uri: `/${req.name}`,
        stream: req.name,
      });
      if (!r.ok) return Promise.resolve(denied(config, r.reason));
      if (r.ignored.length > 0) {
        // AUTH-SPEC A28: actionslimit needs shared state the local verifier does not have.
        opts.warn?.(`ks token ${tokenHash(ks) ?? ''}: ${r.ignored.join(',')} ignored`);
      }
      const d: AuthDecision = { kind: 'allow', authDurationSec: duration(config, r.remainingSec) };
      // AUTH-SPEC §10.1: '' and '0' are Kaltura's anonymous (widget) user, not one shared user.
      const userId = r.info.userId === '0' ? undefined : parseUserId(r.info.userId);
      if (userId !== undefined) d.userId = userId;
      return Promise.resolve(d);
    },
  };
}

/** `jwt://?secret=S1,S2` (HS256/384/512) and/or `jwt://?jwks=FILE|URL` (RS/ES/EdDSA). */
export function createJwtBackend(
  spec: AuthSpec,
  config: Config,
  opts: TokenBackendOptions = {},
): AuthBackend {
  const { params } = parseTokenUrl(spec);
  const secrets = [...list(params.get('secret')), ...list(params.get('secrets'))];
  const jwksSource = params.get('jwks');
  if (secrets.length === 0 && (jwksSource === undefined || jwksSource === '')) {
    return refusing(opts.warn, 'jwt:// needs secret= or jwks=');
  }
  const now = opts.now ?? Date.now;
  const jwks =
    jwksSource !== undefined && jwksSource !== '' ? new JwksSource(jwksSource, { now }) : undefined;
  return {
    async check(req): Promise<AuthDecision> {
      const token = req.token;
      if (token === undefined || token === '') return denied(config, 'jwt_malformed');
      const keys: JwtKeys = { secrets };
      if (jwks !== undefined) {
        const header = decodeJwt(token)?.header;
        // An HS token never needs the JWKS; fetching it for one would be wasted work. A non-string
        // alg is refused by checkJwt below; String() on a hostile object could throw here.
        const alg = header?.['alg'];
        if (typeof alg === 'string' && !alg.startsWith('HS')) {
          try {
            keys.jwks = await jwks.keys(typeof header?.['kid'] === 'string' ? header['kid'] : undefined);
          } catch (err) {
            opts.warn?.(
              `jwks ${jwks.source} unavailable: ${err instanceof Error ? err.message : String(err)}`,
            );
            return { kind: 'unavailable', reason: 'error' };
          }
        }
      }
      const r = checkJwt(token, keys, { now: now(), stream: req.name, ip: req.ip, proto: req.proto });
      if (!r.ok) return denied(config, `jwt_${r.reason}`);
      const d: AuthDecision = { kind: 'allow', authDurationSec: duration(config, r.grant.remainingSec) };
      if (r.grant.userId !== undefined) d.userId = r.grant.userId;
      if (r.grant.maxSessions !== undefined) d.maxSessions = r.grant.maxSessions;
      if (r.grant.unique === true) d.unique = true;
      return d;
    },
  };
}

/** `securetoken://KEY?no_check_ip=true` (AUTH-SPEC §10.8); `user_id` from the query joins the hash. */
export function createSecureTokenBackend(
  spec: AuthSpec,
  config: Config,
  opts: TokenBackendOptions = {},
): AuthBackend {
  const { host, params } = parseTokenUrl(spec);
  const key = host !== '' ? host : (params.get('key') ?? '');
  if (key === '') return refusing(opts.warn, 'securetoken:// has no KEY');
  const noCheckIp = flag(params.get('no_check_ip'));
  const now = opts.now ?? Date.now;
  return {
    check(req): Promise<AuthDecision> {
      const token = req.token;
      if (token === undefined || token === '') {
        return Promise.resolve(denied(config, 'securetoken_malformed'));
      }
      const userId = queryParam(req, 'user_id');
      const r = checkSecureToken(token, {
        key,
        stream: req.name,
        ip: req.ip,
        noCheckIp,
        now: now(),
        ...(userId !== undefined ? { userId } : {}),
      });
      if (!r.ok) return Promise.resolve(denied(config, `securetoken_${r.reason}`));
      const d: AuthDecision = { kind: 'allow', authDurationSec: duration(config, r.remainingSec) };
      if (r.userId !== undefined) d.userId = r.userId;
      return Promise.resolve(d);
    },
  };
}

export type TokenBackendFactory = (spec: AuthSpec, config: Config, opts: TokenBackendOptions) => AuthBackend;

/** The schemes `createBackend` knows without any extra wiring. */
export const TOKEN_SCHEMES: Record<string, TokenBackendFactory> = {
  ks: createKsBackend,
  jwt: createJwtBackend,
  securetoken: createSecureTokenBackend,
};

/** The built-in factory for `scheme`; own keys only, so `constructor://` is not a scheme. */
export function tokenBackendFactory(scheme: string): TokenBackendFactory | undefined {
  return Object.hasOwn(TOKEN_SCHEMES, scheme) ? TOKEN_SCHEMES[scheme] : undefined;
}
