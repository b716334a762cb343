/**
 * The primary's side of the session store for `workers N` without `session_store`: what
 * RedisCluster (src/sessions/cluster.ts) keeps in Redis, kept here in memory and reached by
 * the workers over IPC (ipc-store.ts). Per-user open sessions with the same "newer" order
 * every node computes (`<openedAt>:<id>` as a string), and bans with their expiry. A worker
 * that exits takes its sessions with it, as a Redis entry of a dead node expires. Pure.
 */
import type { SessionKind } from '../core/proto.js';
import type { ClusterSession } from '../sessions/cluster.js';
import type { BanEntry } from '../sessions/store.js';

const MAX_BANS_BEFORE_SWEEP = 10_000;
const member = (s: ClusterSession): string => `${s.openedAt}:${s.id}`;
const userKey = (kind: SessionKind, userId: string): string => `${kind}\u0000${userId}`;

export class SharedSessions {
  private readonly sessions = new Map<string, { worker: number; s: ClusterSession }>();
  private readonly byUser = new Map<string, Set<string>>();
  private readonly bans = new Map<string, BanEntry>();

  constructor(private readonly now: () => number = Date.now) {}

  register(worker: number, s: ClusterSession): { total: number; newer: number } {
    this.sessions.set(s.id, { worker, s });
    const key = userKey(s.kind, s.userId);
    let ids = this.byUser.get(key);
    if (!ids) this.byUser.set(key, (ids = new Set()));
    ids.add(s.id);
    const mine = member(s);
    let newer = 0;
    for (const id of ids) {
      const other = this.sessions.get(id);
      if (other && member(other.s) > mine) newer++;
    }
    return { total: ids.size, newer };
  }

  unregister(id: string): void {
    const entry = this.sessions.get(id);
    if (!entry) return;
    this.sessions.delete(id);
    const key = userKey(entry.s.kind, entry.s.userId);
    const ids = this.byUser.get(key);
    ids?.delete(id);
    if (ids?.size === 0) this.byUser.delete(key);
  }

  setBan(entry: BanEntry): void {
    const now = this.now();
    if (entry.until <= now) return;
    // Expired bans go when read; a burst of bans nobody reads again is swept here.
    if (this.bans.size >= MAX_BANS_BEFORE_SWEEP) {
      for (const [k, b] of this.bans) if (b.until <= now) this.bans.delete(k);
    }
    this.bans.set(entry.idKey, entry);
  }

  getBan(idKey: string): BanEntry | undefined {
    const ban = this.bans.get(idKey);
    if (ban && ban.until <= this.now()) {
      this.bans.delete(idKey);
      return undefined;
    }
    return ban;
  }

  clearBan(idKey: string): void {
    this.bans.delete(idKey);
  }

  /** A worker exited: its sessions no longer count against anyone's limit. */
  workerGone(worker: number): number {
    let n = 0;
    for (const [id, e] of this.sessions) {
      if (e.worker === worker) {
        this.unregister(id);
        n++;
      }
    }
    return n;
  }

  /** Open sessions per worker (for the log and tests). */
  get size(): number {
    return this.sessions.size;
  }
}
