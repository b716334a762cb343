/**
 * Flussonic-compatible `securetoken` (AUTH-SPEC §10.8): a middleware that shares KEY with the
 * origin builds `hash-salt-endtime-starttime` with
 * `hash = sha1_hex(stream + ip + starttime + endtime + KEY + salt [+ user_id])`, so existing
 * Flussonic token generators work unchanged. `no_check_ip` drops the IP from the hash (clients
 * behind changing NATs). Pure: time, salt and key are arguments.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';

/** The Flussonic example lets a token start up to 300 s "in the future" (clock skew). */
export const SECURETOKEN_SKEW_SEC = 300;

export interface SecureTokenParts {
  hash: string;
  salt: string;
  /** Unix seconds. */
  endtime: number;
  starttime: number;
}

export function secureTokenHash(
  stream: string,
  ip: string,
  starttime: number,
  endtime: number,
  key: string,
  salt: string,
  userId?: string,
): string {
  return createHash('sha1')
    .update(`${stream}${ip}${starttime}${endtime}${key}${salt}${userId ?? ''}`, 'utf8')
    .digest('hex');
}

export interface MintSecureTokenOptions {
  key: string;
  stream: string;
  /** Omitted (or '') for a verifier running with `no_check_ip=true`. */
  ip?: string;
  userId?: string;
  /** Milliseconds since the epoch. */
  now: number;
  /** Lifetime in seconds; default 3600. */
  expirySec?: number;
  salt?: string;
}

/** Mints like Flussonic's PHP example: starttime = now − 300 so a slightly slow origin accepts it. */
export function mintSecureToken(o: MintSecureTokenOptions): string {
  const nowSec = Math.floor(o.now / 1000);
  const starttime = nowSec - SECURETOKEN_SKEW_SEC;
  const endtime = nowSec + (o.expirySec ?? 3600);
  const salt = o.salt ?? randomBytes(16).toString('hex');
  const hash = secureTokenHash(o.stream, o.ip ?? '', starttime, endtime, o.key, salt, o.userId);
  return `${hash}-${salt}-${endtime}-${starttime}`;
}

export function parseSecureToken(token: string): SecureTokenParts | undefined {
  const parts = token.trim().split('-');
  if (parts.length !== 4) return undefined;
  const [hash, salt, end, start] = parts as [string, string, string, string];
  if (!/^[0-9a-fA-F]{40}$/.test(hash) || salt === '' || !/^\d+$/.test(end) || !/^\d+$/.test(start)) {
    return undefined;
  }
  return { hash: hash.toLowerCase(), salt, endtime: Number(end), starttime: Number(start) };
}

export type SecureTokenRefusal = 'malformed' | 'bad_hash' | 'expired' | 'not_yet_valid';

export interface SecureTokenCheckOptions {
  key: string;
  stream: string;
  ip: string;
  /** `securetoken://KEY?no_check_ip=true`. */
  noCheckIp?: boolean;
  /** The `user_id` query parameter, when the client sent one: it is part of the hash. */
  userId?: string;
  /** Milliseconds since the epoch. */
  now: number;
}

export type SecureTokenCheck =
  | { ok: true; parts: SecureTokenParts; remainingSec: number; userId?: string }
  | { ok: false; reason: SecureTokenRefusal; detail: string; parts?: SecureTokenParts };

export function checkSecureToken(token: string, o: SecureTokenCheckOptions): SecureTokenCheck {
  const parts = parseSecureToken(token);
  if (parts === undefined) {
    return { ok: false, reason: 'malformed', detail: 'expected hash-salt-endtime-starttime' };
  }
  const ip = o.noCheckIp === true ? '' : o.ip;
  const want = Buffer.from(
    secureTokenHash(o.stream, ip, parts.starttime, parts.endtime, o.key, parts.salt, o.userId),
    'utf8',
  );
  if (!timingSafeEqual(want, Buffer.from(parts.hash, 'utf8'))) {
    const what = o.noCheckIp === true ? 'stream' : 'stream and ip';
    return { ok: false, reason: 'bad_hash', detail: `hash does not match this ${what} and key`, parts };
  }
  const nowSec = Math.floor(o.now / 1000);
  if (parts.endtime <= nowSec) {
    return { ok: false, reason: 'expired', detail: `expired ${nowSec - parts.endtime} s ago`, parts };
  }
  if (parts.starttime > nowSec + SECURETOKEN_SKEW_SEC) {
    return { ok: false, reason: 'not_yet_valid', detail: `valid in ${parts.starttime - nowSec} s`, parts };
  }
  const r: SecureTokenCheck = { ok: true, parts, remainingSec: Math.max(1, parts.endtime - nowSec) };
  if (o.userId !== undefined && o.userId !== '') r.userId = o.userId;
  return r;
}
