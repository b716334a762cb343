/**
 * Re-checks and idle closes (AUTH-SPEC §3.5, §4.1, §4.3, §4.4): each granted session asks its
 * backend again when its auth duration runs out — on a timer for sessions that live as long as
 * a connection, on the next request for per-request (HLS) sessions — and per-request sessions
 * close after `http_session_timeout` without a request. Unavailable answers back off without
 * touching the granted state; a denial ends the session and caches the denial.
 */
import type { Logger } from 'pino';
import type { Clock } from '../clock.js';
import type { Config } from '../config/types.js';
import { perRequest } from '../core/proto.js';
import type { CloseReason } from '../core/reasons.js';
import type { BackendCalls } from './backend-call.js';
import type { Enforcement } from './enforcement.js';
import { retryDelayMs } from './limits.js';
import type { ManagedSession } from './session.js';
import type { SessionStore } from './store.js';
import { IdleQueue } from './idle-queue.js';

export interface RecheckDeps {
  config: () => Config;
  store: SessionStore<ManagedSession>;
  clock: Clock;
  log: Logger;
  calls: BackendCalls;
  enforcement: Enforcement;
  /** A backend's `config` in an update grant (AUTH-SPEC §8.1). */
  applyOverride(name: string, partial: Record<string, unknown>): void;
  kill(s: ManagedSession, reason: CloseReason): void;
  closeSession(s: ManagedSession, reason: CloseReason): void;
}

export class Rechecks {
  private stopped = false;
  /** Every open per-request session, by when its idle check is due: one timer for all. */
  private readonly idle: IdleQueue<ManagedSession>;

  constructor(private readonly deps: RecheckDeps) {
    this.idle = new IdleQueue(deps.clock, (s, now) => this.idleDue(s, now));
  }

  /** Connection sessions get a timer; per-request sessions are checked by their next request. */
  schedule(s: ManagedSession, delayMs?: number): void {
    if (s.closed || this.stopped) return;
    const { clock } = this.deps;
    const delay = delayMs ?? s.authDurationSec * 1000;
    s.nextCheckAt = clock.now() + delay;
    if (s.recheckTimer !== undefined) clock.clearTimeout(s.recheckTimer);
    s.recheckTimer = undefined;
    if (perRequest(s.proto)) return;
    s.recheckTimer = clock.setTimeout(() => {
      s.recheckTimer = undefined;
      void this.recheck(s);
    }, delay);
  }

  /** Sends update_session and applies the answer; never throws. */
  async recheck(s: ManagedSession): Promise<void> {
    if (s.closed || s.checking || s.backend === undefined || s.spec === undefined || this.stopped) return;
    const { calls, clock, store, enforcement, log } = this.deps;
    s.checking = true;
    s.requestNumber++;
    const d = await calls.call(s.backend, s.spec, calls.updateRequest(s), s.kind);
    s.checking = false;
    if (s.closed || this.stopped) return;
    const now = clock.now();
    switch (d.kind) {
      case 'allow': {
        s.lastVerifyAt = now;
        s.failures = 0;
        s.authDurationSec = d.authDurationSec;
        if (d.userId !== undefined && d.userId !== s.userId) {
          const previous = s.userId;
          s.userId = d.userId;
          store.reindexUser(s, previous);
        }
        s.maxSessions = d.maxSessions ?? s.spec.maxSessions;
        if (s.dvr !== undefined) s.allowedDvrRanges = d.allowedDvrRanges;
        if (d.config !== undefined) this.deps.applyOverride(s.name, d.config);
        if (s.closed) return;
        this.schedule(s, d.retry === true ? retryDelayMs(1, d.authDurationSec) : undefined);
        // AUTH-SPEC §5.1: a re-check that lowers X-Max-Sessions is counted like a grant.
        enforcement.applyLimits(s, false);
        return;
      }
      case 'redirect':
        // A running session cannot follow a redirect; as in the historical code a 302 is a grant.
        s.lastVerifyAt = now;
        s.failures = 0;
        this.schedule(s);
        return;
      case 'deny':
        enforcement.remember({
          idKey: s.idKey,
          until: now + d.authDurationSec * 1000,
          reason: 'recheck_denied',
          ban: false,
          name: s.name,
          userId: s.userId,
          tokenHash: s.tokenHash,
          createdAt: now,
        });
        this.deps.kill(s, 'recheck_denied');
        return;
      case 'unavailable':
        // AUTH-SPEC §4.3: keep the state, do not advance last_verify, back off.
        s.failures++;
        log.warn(
          { event: 'recheck_unavailable', sid: s.id, idKey: s.idKey, reason: d.reason, failures: s.failures },
          'auth backend unavailable; session kept',
        );
        this.schedule(s, retryDelayMs(s.failures, s.authDurationSec));
        return;
    }
  }

  /**
   * A request of this session arrived. AUTH-SPEC §4.1: a per-request session past its due time
   * is re-checked in the background; this request is still answered from the granted state.
   */
  touch(s: ManagedSession): void {
    if (s.closed) return;
    const now = this.deps.clock.now();
    s.lastAccessAt = now;
    if (perRequest(s.proto) && now >= s.nextCheckAt && !s.checking && s.backend !== undefined) {
      void this.recheck(s);
    }
  }

  /** AUTH-SPEC §3.5 / A14: a per-request session closes after `httpSessionTimeout` without requests. */
  armIdle(s: ManagedSession): void {
    if (s.closed || this.stopped) return;
    this.idle.push(s, this.deps.clock.now() + this.deps.config().httpSessionTimeout * 1000);
  }

  private idleDue(s: ManagedSession, now: number): void {
    if (s.closed || this.stopped) return;
    const timeoutMs = this.deps.config().httpSessionTimeout * 1000;
    const idle = now - s.lastAccessAt;
    if (idle >= timeoutMs) {
      this.deps.closeSession(s, 'idle_timeout');
      return;
    }
    // touch() only stamps the time; the check comes back for the remainder, keeping requests cheap.
    this.idle.push(s, now + timeoutMs - idle);
  }

  /** Stops the session's timers (it closed, or the manager stops). */
  clearTimers(s: ManagedSession): void {
    if (s.recheckTimer !== undefined) this.deps.clock.clearTimeout(s.recheckTimer);
    s.recheckTimer = undefined;
    this.idle.remove(s);
  }

  close(): void {
    this.stopped = true;
    this.idle.close();
  }
}
