/**
 * Enforcement: what the manager does to sessions after they are granted, beyond re-checks —
 * X-Max-Sessions (newest loses, with the soft-limitation grace), X-Unique (newest wins), the
 * bans and cached denials that keep a loser out for its auth duration, and the same rules
 * across origins through the shared store (AUTH-SPEC §4.5, §5, SPEC §7). The decision tables
 * are pure (limits.ts); this module applies them to live sessions.
 */
import type { Logger } from 'pino';
import type { Clock, TimerHandle } from '../clock.js';
import type { SessionKind } from '../core/proto.js';
import type { BanReason, CloseReason } from '../core/reasons.js';
import type { ClusterStore, UniqueKick } from './cluster.js';
import { sessionsOverLimit, softGraceMs, uniqueLosers } from './limits.js';
import { counted, type ManagedSession } from './session.js';
import type { BanEntry, SessionStore } from './store.js';

export interface EnforcementDeps {
  store: SessionStore<ManagedSession>;
  cluster: ClusterStore | undefined;
  clock: Clock;
  log: Logger;
  /** Ends a session on the manager's initiative (the adapter drops the client). */
  kill(s: ManagedSession, reason: CloseReason): void;
}

export class Enforcement {
  private readonly graceTimers = new Map<string, TimerHandle>();
  private stopped = false;

  constructor(private readonly deps: EnforcementDeps) {}

  /** Caches a denial or ban here and, with a shared store, on every origin (AUTH-SPEC §4.5). */
  remember(entry: BanEntry): void {
    this.deps.store.setBan(entry);
    this.deps.cluster?.setBan(entry);
  }

  /**
   * Applies X-Unique and X-Max-Sessions to the user of `s` on this node. `isNew`: `s` was just
   * granted (a re-check that lowers the limit is counted like a grant, but is not "the newest").
   */
  applyLimits(s: ManagedSession, isNew: boolean): void {
    if (s.closed || s.userId === undefined || s.adminView) return;
    const { store } = this.deps;
    const userId = s.userId;
    // AUTH-SPEC A9: X-Unique (newest wins) takes precedence over X-Max-Sessions. Only a new
    // grant is "the newest"; an older session's re-check must not kick newer ones.
    if (s.unique) {
      if (isNew) {
        for (const o of uniqueLosers(counted(store.byUser(s.kind, userId)), s)) {
          this.ban(o, 'duplicated_user_id');
        }
      }
      return;
    }
    const max = s.maxSessions;
    // Counted first, listed only when over: most grants carry no limit or stay under it.
    if (max === undefined || store.userCount(s.kind, userId) <= max) return;
    const sessions = counted(store.byUser(s.kind, userId));
    if (sessions.length <= max) return;
    if (s.softLimitation) {
      this.startGrace(s.kind, userId, sessions);
      return;
    }
    for (const loser of sessionsOverLimit(sessions, max)) this.ban(loser, 'session_limit');
  }

  /** AUTH-SPEC §5.1 soft mode: wait, then recount and ban whatever is still in excess. */
  private startGrace(kind: SessionKind, userId: string, involved: ManagedSession[]): void {
    const key = `${kind}\n${userId}`;
    if (this.graceTimers.has(key)) return;
    const ms = softGraceMs(involved);
    this.deps.log.info(
      { event: 'soft_limit_grace', user_id: userId, grace_ms: ms },
      'session limit exceeded; grace started',
    );
    this.graceTimers.set(
      key,
      this.deps.clock.setTimeout(() => {
        this.graceTimers.delete(key);
        if (this.stopped) return;
        const now = counted(this.deps.store.byUser(kind, userId));
        const newest = [...now].sort((a, b) => b.openedAt - a.openedAt || b.seq - a.seq)[0];
        const max = newest?.maxSessions;
        if (max === undefined) return;
        for (const loser of sessionsOverLimit(now, max)) this.ban(loser, 'session_limit');
      }, ms),
    );
  }

  /**
   * SPEC §7: limits across every origin sharing the store. X-Unique tells the other origins to
   * kick their sessions of the user; X-Max-Sessions refuses this session when it is among the
   * newest beyond the limit cluster-wide (newest loses, §5.1). Returns false when it was refused.
   */
  async applyClusterLimits(s: ManagedSession): Promise<boolean> {
    const cluster = this.deps.cluster;
    if (cluster === undefined || s.userId === undefined || s.adminView) return true;
    const total = await cluster.register({ id: s.id, kind: s.kind, userId: s.userId, openedAt: s.openedAt });
    if (s.closed) return false;
    if (s.unique) {
      cluster.publishUnique({ kind: s.kind, userId: s.userId, winner: s.id });
      return true;
    }
    const max = s.maxSessions;
    if (total === undefined || max === undefined || total.total <= max) return true;
    if (total.newer >= total.total - max) return true;
    this.ban(s, 'session_limit');
    return false;
  }

  /** Another origin granted an X-Unique session: this origin's sessions of that user lose. */
  onUniqueKick(kick: UniqueKick): void {
    for (const o of this.deps.store.byUser(kick.kind, kick.userId)) {
      if (o.id !== kick.winner && !o.closed && !o.adminView) this.ban(o, 'duplicated_user_id');
    }
  }

  /** Ends a session and bars its identity for its auth duration (AUTH-SPEC §4.5, §5.1, §5.2). */
  private ban(s: ManagedSession, reason: BanReason): void {
    const now = this.deps.clock.now();
    this.remember({
      idKey: s.idKey,
      until: now + s.authDurationSec * 1000,
      reason,
      ban: true,
      name: s.name,
      userId: s.userId,
      tokenHash: s.tokenHash,
      createdAt: now,
    });
    const why = reason === 'session_limit' ? 'exceeded session limit' : 'unique user id';
    this.deps.log.warn(
      { event: 'session_ban', sid: s.id, idKey: s.idKey, user_id: s.userId, token_hash: s.tokenHash, reason },
      `Ban session_id ${s.idKey} for user_id ${s.userId ?? ''} and token_hash ${s.tokenHash} due to ${why}`,
    );
    this.deps.kill(s, reason);
  }

  close(): void {
    this.stopped = true;
    for (const t of this.graceTimers.values()) this.deps.clock.clearTimeout(t);
    this.graceTimers.clear();
  }
}
