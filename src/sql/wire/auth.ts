/**
 * The two password plugins MySQL clients use by default, checked against the plain-text
 * `edit_auth` password the server holds.
 *
 * - `mysql_native_password` (MariaDB's default): the client sends
 *   SHA1(pw) XOR SHA1(scramble ‖ SHA1(SHA1(pw))).
 * - `caching_sha2_password` (MySQL 8's default): the client sends
 *   SHA256(pw) XOR SHA256(SHA256(SHA256(pw)) ‖ scramble). A MySQL server can check this only
 *   while its cache holds the account's SHA256(SHA256(pw)); otherwise it asks for "full
 *   authentication", the password itself, which over a connection without TLS needs an RSA
 *   key exchange. This server always holds the password, so the fast path always decides:
 *   a right scramble is "fast auth success", a wrong one is access denied, and full
 *   authentication (and with it any RSA key) is never needed.
 *
 * An empty password is an empty response in both plugins.
 */
import { createHash, timingSafeEqual } from 'node:crypto';

export const NATIVE = 'mysql_native_password';
export const SHA2 = 'caching_sha2_password';
export type AuthPlugin = typeof NATIVE | typeof SHA2;

export function isKnownPlugin(p: string | undefined): p is AuthPlugin {
  return p === NATIVE || p === SHA2;
}

function digest(alg: 'sha1' | 'sha256', ...parts: Buffer[]): Buffer {
  const h = createHash(alg);
  for (const p of parts) h.update(p);
  return h.digest();
}

function xor(a: Buffer, b: Buffer): Buffer {
  const out = Buffer.alloc(a.length);
  for (let i = 0; i < a.length; i++) out[i] = (a[i] as number) ^ (b[i] as number);
  return out;
}

/** What a client holding `password` sends for `plugin` and `scramble` (also used by tests). */
export function scrambleResponse(plugin: AuthPlugin, password: string, scramble: Buffer): Buffer {
  if (password === '') return Buffer.alloc(0);
  const pw = Buffer.from(password, 'utf8');
  if (plugin === NATIVE) {
    const s1 = digest('sha1', pw);
    return xor(s1, digest('sha1', scramble, digest('sha1', s1)));
  }
  const s1 = digest('sha256', pw);
  return xor(s1, digest('sha256', digest('sha256', s1), scramble));
}

/** Whether `response` proves knowledge of `password` for this scramble; constant time. */
export function checkScramble(
  plugin: AuthPlugin,
  password: string,
  scramble: Buffer,
  response: Buffer,
): boolean {
  const expected = scrambleResponse(plugin, password, scramble);
  // Clients may append a NUL to the response; a scramble is 20 or 32 bytes.
  const got =
    response.length === expected.length + 1 && response[expected.length] === 0
      ? response.subarray(0, expected.length)
      : response;
  if (got.length !== expected.length) return false;
  return expected.length === 0 || timingSafeEqual(got, expected);
}
