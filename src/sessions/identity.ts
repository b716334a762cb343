/**
 * Session identity (AUTH-SPEC §3): the local identity key that decides whether two requests
 * belong to the same session, the generated token for clients that bring none, and the short
 * token hash that logs and history carry instead of the token itself. Pure apart from the
 * random source used by `generateToken`.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { SessionKey } from '../config/types.js';
import type { SessionKind } from './types.js';

/** AUTH-SPEC §3.1 / A2: the keys used when a spec names none. */
export const DEFAULT_SESSION_KEYS: readonly SessionKey[] = ['name', 'ip', 'proto', 'token'];

/** The values a session key can read (AUTH-SPEC §3.2 `value_of`). */
export interface IdentityValues {
  name: string;
  ip: string;
  proto: string;
  token: string | undefined;
  query?: URLSearchParams;
}

/**
 * Checks AUTH-SPEC §3.1 constraint 1: `ip`, `name` and `proto` must all be present.
 * Returns a message for the config parser, or undefined when the list is valid.
 */
export function validateSessionKeys(keys: readonly string[]): string | undefined {
  for (const k of keys) {
    if (k !== 'ip' && k !== 'name' && k !== 'proto' && k !== 'token' && !/^query:.+$/.test(k)) {
      return `unknown session key '${k}' (expected ip, name, proto, token or query:<param>)`;
    }
  }
  const missing = ['ip', 'name', 'proto'].filter((k) => !keys.includes(k));
  if (missing.length > 0) {
    return `session_keys must contain ip, name and proto (missing ${missing.join(', ')})`;
  }
  return undefined;
}

function valueOf(key: SessionKey, v: IdentityValues): string | undefined {
  switch (key) {
    case 'name':
      return v.name;
    case 'ip':
      return v.ip;
    case 'proto':
      return v.proto;
    case 'token':
      return v.token;
    default:
      return v.query?.get(key.slice('query:'.length)) ?? undefined;
  }
}

/** `=`, newline and `%` are the separators of the hashed text; escaping them prevents collisions. */
const NEEDS_ESCAPE = /[%=\n]/;

function escapeValue(s: string): string {
  // Every HLS request hashes its identity; most values have nothing to escape.
  if (!NEEDS_ESCAPE.test(s)) return s;
  return s.replace(/[%=\n]/g, (c) => '%' + c.charCodeAt(0).toString(16).toUpperCase().padStart(2, '0'));
}

const ASCII = /^[\x00-\x7f]*$/;

/** UTF-8 byte order; for ASCII strings (the usual case) that is plain code-unit order. */
function byteCompare(a: string, b: string): number {
  if (a === b) return 0;
  if (ASCII.test(a) && ASCII.test(b)) return a < b ? -1 : 1;
  return Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));
}

/**
 * AUTH-SPEC §3.2: SHA-1 over the sorted multiset of `key=value` pairs. Order of the keys does not
 * matter, duplicates do, and an absent value contributes the literal `undefined`.
 *
 * Publish sessions add one extra pair (`@kind=publish`, a name no session key can have) so that
 * a publisher and a viewer with the same ip, name, proto and token never share a denial cache
 * entry; play identity keys are exactly the §3.2 value.
 */
export function identityKey(
  keys: readonly SessionKey[],
  v: IdentityValues,
  kind: SessionKind = 'play',
): string {
  const pairs: [string, string][] = keys.map((k) => [k, valueOf(k, v) ?? 'undefined']);
  if (kind === 'publish') pairs.push(['@kind', 'publish']);
  pairs.sort((a, b) => byteCompare(a[0], b[0]) || byteCompare(a[1], b[1]));
  const input = pairs.map(([k, val]) => `${k}=${escapeValue(val)}`).join('\n');
  return createHash('sha1').update(input, 'utf8').digest('hex');
}

/** AUTH-SPEC §3.4: `base64url(random 16 bytes)` for a client that brings no token. */
export function generateToken(): string {
  return randomBytes(16).toString('base64url');
}

/** SPEC §7: the short hash stored and logged in place of a token (first 12 hex of SHA-256). */
export function tokenHash(token: string | undefined): string | undefined {
  if (token === undefined) return undefined;
  return createHash('sha256').update(token, 'utf8').digest('hex').slice(0, 12);
}

/**
 * Constant-time string equality (AUTH-SPEC §7.3 publish password). Both sides are hashed
 * first so that the comparison time does not leak the expected length either.
 */
export function safeEqual(a: string, b: string): boolean {
  const ha = createHash('sha256').update(a, 'utf8').digest();
  const hb = createHash('sha256').update(b, 'utf8').digest();
  return timingSafeEqual(ha, hb) && a.length === b.length;
}
