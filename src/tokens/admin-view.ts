/**
 * Admin view tokens (AUTH-SPEC §7.5, A23): `ADM1-<unix_expiry>-<hex HMAC-SHA1(secret, "ADM1-" +
 * expiry)>`, valid 6 h, minted for the admin UI so it can play protected streams without the
 * stream's backend. A token that merely starts with `ADM` but does not verify is an ordinary token.
 *
 * The server secret comes from `STREAMGATE_ADMIN_VIEW_SECRET` when set (several origins behind
 * one admin UI share it, and `streamgate token mint --kind admin --secret S` can mint for them);
 * otherwise it is 32 random bytes per process, so tokens die with a restart — acceptable for a
 * UI that mints a fresh one per page load.
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import type { Clock } from '../clock.js';
import { systemClock } from '../clock.js';
import type { Config } from '../config/types.js';

export const ADMIN_VIEW_PREFIX = 'ADM1-';
export const ADMIN_VIEW_LIFETIME_SEC = 6 * 3600;
export const ADMIN_VIEW_USER_ID = 'admin';
export const ADMIN_VIEW_SECRET_ENV = 'STREAMGATE_ADMIN_VIEW_SECRET';
export const ADMIN_VIEW_DISABLED_ENV = 'STREAMER_ADMIN_VIEW_DISABLED';

function mac(secret: string | Buffer, expiry: number): string {
  return createHmac('sha1', secret).update(`${ADMIN_VIEW_PREFIX}${expiry}`, 'utf8').digest('hex');
}

/** `now` in milliseconds since the epoch. */
export function mintAdminViewToken(
  secret: string | Buffer,
  now: number,
  lifetimeSec = ADMIN_VIEW_LIFETIME_SEC,
): { token: string; expiresAt: number } {
  const expiry = Math.floor(now / 1000) + lifetimeSec;
  return { token: `${ADMIN_VIEW_PREFIX}${expiry}-${mac(secret, expiry)}`, expiresAt: expiry };
}

export type AdminViewCheck =
  | { ok: true; expiresAt: number; remainingSec: number }
  | { ok: false; reason: 'not_admin_token' | 'malformed' | 'bad_hmac' | 'expired'; expiresAt?: number };

const FORMAT = /^ADM1-(\d{1,12})-([0-9a-f]{40})$/;

export function verifyAdminViewToken(token: string, secret: string | Buffer, now: number): AdminViewCheck {
  if (!token.startsWith('ADM')) return { ok: false, reason: 'not_admin_token' };
  const m = FORMAT.exec(token);
  if (m === null) return { ok: false, reason: 'malformed' };
  const expiry = Number(m[1]);
  const given = Buffer.from(m[2] ?? '', 'utf8');
  const want = Buffer.from(mac(secret, expiry), 'utf8');
  if (!timingSafeEqual(want, given)) return { ok: false, reason: 'bad_hmac', expiresAt: expiry };
  const nowSec = Math.floor(now / 1000);
  if (expiry <= nowSec) return { ok: false, reason: 'expired', expiresAt: expiry };
  return { ok: true, expiresAt: expiry, remainingSec: expiry - nowSec };
}

/** AUTH-SPEC §7.5: the config directive or the Flussonic environment variable turns it off. */
export function adminViewDisabled(
  config: Pick<Config, 'adminViewDisabled'>,
  env: NodeJS.ProcessEnv,
): boolean {
  return config.adminViewDisabled || (env[ADMIN_VIEW_DISABLED_ENV] ?? '').trim().toLowerCase() === 'true';
}

/** The server side: one secret, one clock, the disable switch read at every use. */
export class AdminView {
  private readonly secret: string | Buffer;
  private readonly clock: Clock;
  private readonly env: NodeJS.ProcessEnv;

  constructor(opts: { secret?: string | Buffer; clock?: Clock; env?: NodeJS.ProcessEnv } = {}) {
    this.env = opts.env ?? process.env;
    const fromEnv = this.env[ADMIN_VIEW_SECRET_ENV];
    this.secret = opts.secret ?? (fromEnv !== undefined && fromEnv !== '' ? fromEnv : randomBytes(32));
    this.clock = opts.clock ?? systemClock;
  }

  disabled(config: Pick<Config, 'adminViewDisabled'>): boolean {
    return adminViewDisabled(config, this.env);
  }

  /** Undefined when admin view is disabled (the API answers 405). */
  mint(config: Pick<Config, 'adminViewDisabled'>): { token: string; expiresAt: number } | undefined {
    if (this.disabled(config)) return undefined;
    return mintAdminViewToken(this.secret, this.clock.now());
  }

  /** True only for an enabled server and a token whose HMAC verifies and has not expired. */
  verify(token: string, config: Pick<Config, 'adminViewDisabled'>): boolean {
    if (!token.startsWith('ADM') || this.disabled(config)) return false;
    return verifyAdminViewToken(token, this.secret, this.clock.now()).ok;
  }
}
