/**
 * How secrets are compared and how tokens are named in logs, history and the API: one
 * definition, so no layer grows its own (weaker) variant.
 */
import { createHash, hash, timingSafeEqual } from 'node:crypto';

/** SPEC §7: the short hash stored and logged in place of a token (first 12 hex of SHA-256). */
export function tokenHash(token: string | undefined): string | undefined {
  if (token === undefined) return undefined;
  // One-shot hash: no Hash object per call (every session's log lines and history row use it).
  return hash('sha256', token, 'hex').slice(0, 12);
}

/**
 * Constant-time string equality (publish password, edit_auth). Both sides are hashed first so
 * that the comparison time does not leak the expected length either.
 */
export function safeEqual(a: string, b: string): boolean {
  const ha = createHash('sha256').update(a, 'utf8').digest();
  const hb = createHash('sha256').update(b, 'utf8').digest();
  return timingSafeEqual(ha, hb) && a.length === b.length;
}
