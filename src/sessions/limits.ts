/**
 * Pure decision tables of the session manager: retry timing after an unavailable backend
 * (AUTH-SPEC §4.3), which sessions lose to X-Max-Sessions (§5.1, newest loses) and X-Unique
 * (§5.2, newest wins) and the soft-limitation grace (A8). The
 * manager feeds them values and a clock reading and applies what they return.
 */
import { perRequest, type Proto } from '../core/proto.js';

/** AUTH-SPEC §4.3: never retry one session more often than this. */
export const MIN_RETRY_MS = 10_000;
/** AUTH-SPEC A8: soft-limitation grace when only persistent sessions are involved. */
export const SOFT_GRACE_PERSISTENT_MS = 30_000;
/** AUTH-SPEC A8: grace when any involved session is HLS (its idle close takes up to 60 s). */
export const SOFT_GRACE_HLS_MS = 90_000;

/**
 * Delay before retry number `failures` (1 = first failure) of a session whose backend was
 * unavailable: min(10 s, auth duration), doubling per failure, capped at the auth duration,
 * and never below 10 s (AUTH-SPEC §4.3, A12).
 */
export function retryDelayMs(failures: number, authDurationSec: number): number {
  const authMs = authDurationSec * 1000;
  const base = Math.min(MIN_RETRY_MS, authMs);
  const backoff = base * 2 ** Math.max(0, Math.min(failures - 1, 30));
  return Math.max(MIN_RETRY_MS, Math.min(backoff, authMs));
}

/** The fields the limit tables look at. */
export interface LimitCandidate {
  id: string;
  openedAt: number;
  /** Creation order; breaks ties between sessions opened in the same millisecond. */
  seq: number;
  proto: Proto;
}

function newestFirst(a: LimitCandidate, b: LimitCandidate): number {
  return b.openedAt - a.openedAt || b.seq - a.seq;
}

/**
 * AUTH-SPEC §5.1 / A10: with more than `max` granted sessions of one user, the newest ones (by
 * `opened_at`) are banned until `max` remain. Returns the losers, newest first.
 */
export function sessionsOverLimit<T extends LimitCandidate>(sessions: readonly T[], max: number): T[] {
  if (sessions.length <= max) return [];
  return [...sessions].sort(newestFirst).slice(0, sessions.length - max);
}

/** AUTH-SPEC §5.2 / A9: X-Unique keeps `winner` and closes every other session of the user. */
export function uniqueLosers<T extends LimitCandidate>(sessions: readonly T[], winner: T): T[] {
  return sessions.filter((s) => s.id !== winner.id);
}

/** AUTH-SPEC A8: 90 s if any session involved is per request (HLS), else 30 s. */
export function softGraceMs(sessions: readonly LimitCandidate[]): number {
  return sessions.some((s) => perRequest(s.proto)) ? SOFT_GRACE_HLS_MS : SOFT_GRACE_PERSISTENT_MS;
}
