/**
 * Session identity (AUTH-SPEC §3): the local identity key that decides whether two requests
 * belong to the same session, and the generated token for clients that bring none. Pure apart
 * from the random source used by `generateToken`.
 */
import { hash, randomBytes, randomFillSync } from 'node:crypto';
import type { SessionKind } from '../core/proto.js';
import type { SessionKey } from '../core/session-keys.js';

/** The values a session key can read (AUTH-SPEC §3.2 `value_of`). */
export interface IdentityValues {
  name: string;
  ip: string;
  proto: string;
  token: string | undefined;
  query?: URLSearchParams;
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
  dvr = false,
): string {
  const pairs: [string, string][] = keys.map((k) => [k, valueOf(k, v) ?? 'undefined']);
  if (kind === 'publish') pairs.push(['@kind', 'publish']);
  // An archive viewer is a session of its own, so a live grant never answers for the archive.
  if (dvr) pairs.push(['@dvr', 'true']);
  pairs.sort((a, b) => byteCompare(a[0], b[0]) || byteCompare(a[1], b[1]));
  const input = pairs.map(([k, val]) => `${k}=${escapeValue(val)}`).join('\n');
  // One-shot hash: no Hash object per request (every HLS request hashes its identity).
  return hash('sha1', input, 'hex');
}

/** AUTH-SPEC §3.4: `base64url(random 16 bytes)` for a client that brings no token. */
export function generateToken(): string {
  return randomBytes(16).toString('base64url');
}

/** Random bytes for session ids, drawn 16 at a time from one pool refilled when used up. */
const idPool = Buffer.allocUnsafe(16 * 256);
let idPoolUsed = idPool.length;
const idChars = Buffer.allocUnsafe(36);
const HEX = Buffer.from('0123456789abcdef', 'latin1');

/**
 * A random (version 4) UUID for `session_id`, as one flat string. `crypto.randomUUID()` builds
 * its result by concatenation, and V8 keeps that as a tree of about 14 string pieces (some
 * 450 bytes); a session keeps its id as long as it is open, so the id is written here as 36
 * characters into a buffer and read out once.
 */
export function sessionId(): string {
  if (idPoolUsed === idPool.length) {
    randomFillSync(idPool);
    idPoolUsed = 0;
  }
  let o = 0;
  for (let i = 0; i < 16; i++) {
    let b = idPool[idPoolUsed + i] as number;
    if (i === 6) b = (b & 0x0f) | 0x40;
    else if (i === 8) b = (b & 0x3f) | 0x80;
    if (i === 4 || i === 6 || i === 8 || i === 10) idChars[o++] = 0x2d;
    idChars[o++] = HEX[b >> 4] as number;
    idChars[o++] = HEX[b & 15] as number;
  }
  idPoolUsed += 16;
  return idChars.toString('latin1', 0, 36);
}

const LATIN1 = /^[\x00-\xff]*$/;

/**
 * The same characters in a string of their own. A value cut out of a longer string (the token
 * from the request URL, its query string) is kept by V8 as a slice that holds the whole URL;
 * a session that keeps it for its lifetime should not.
 */
export function ownString(s: string): string {
  return s.length >= 13 && LATIN1.test(s) ? Buffer.from(s, 'latin1').toString('latin1') : s;
}
