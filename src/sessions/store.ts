/**
 * Where this node's open sessions, cached denials and bans, and per-user counts live (SPEC §7).
 *
 * The interface is synchronous on purpose: a decision reads counts and writes a session in
 * one turn of the event loop, so two concurrent grants cannot both squeeze under a limit
 * (STYLE §7.3). Sharing across origins is a separate, asynchronous layer (cluster.ts) that
 * the enforcement room consults beside this store; the hot path never waits on the network.
 */
import { perRequest, PROTOS, type Proto, type SessionKind } from '../core/proto.js';

/** What the store needs to index a session. */
export interface StoredSession {
  readonly id: string;
  readonly idKey: string;
  readonly kind: SessionKind;
  readonly proto: Proto;
  readonly name: string;
  readonly userId: string | undefined;
}

/** A cached denial or ban, keyed by identity key (AUTH-SPEC §4.5). */
export interface BanEntry {
  idKey: string;
  /** Epoch ms after which the entry no longer applies. */
  until: number;
  /** `backend_denied`, `recheck_denied`, `session_limit`, `duplicated_user_id`, `rule_denied_*`. */
  reason: string;
  /** True for limiter / X-Unique bans, false for backend denials. */
  ban: boolean;
  name: string;
  userId?: string;
  tokenHash?: string;
  createdAt: number;
}

export interface ProtoCounts {
  total: number;
  byProto: Record<Proto, number>;
  publishers: number;
}

export interface SessionStore<S extends StoredSession> {
  add(s: S): void;
  remove(s: S): void;
  /** Re-indexes a session whose user id changed on an update grant. */
  reindexUser(s: S, previousUserId?: string): void;
  get(id: string): S | undefined;
  /** The open per-request (HLS) play session of an identity key (AUTH-SPEC §3.5 reuse). */
  perRequestByIdKey(idKey: string): S | undefined;
  all(): S[];
  /** Open sessions of one user id and kind, for X-Max-Sessions and X-Unique. */
  byUser(kind: SessionKind, userId: string): S[];
  /** `byUser(...).length` without building the list. */
  userCount(kind: SessionKind, userId: string): number;
  byName(name: string): S[];
  /** Open play sessions of a stream (`stream_clients`). */
  streamClients(name: string): number;
  /** Open play sessions on this node (`total_clients`). */
  totalClients(): number;
  counts(name: string): ProtoCounts;

  setBan(entry: BanEntry): void;
  /** The entry in force at `now`; expired entries are dropped on the way. */
  getBan(idKey: string, now: number): BanEntry | undefined;
  clearBan(idKey: string): boolean;
  bans(now: number): BanEntry[];
  /** Drops expired entries; returns how many. */
  sweep(now: number): number;
}

function emptyByProto(): Record<Proto, number> {
  return Object.fromEntries(PROTOS.map((p) => [p, 0])) as Record<Proto, number>;
}

/** The default single-node store: maps with incrementally kept counters. */
export class MemoryStore<S extends StoredSession> implements SessionStore<S> {
  private readonly sessions = new Map<string, S>();
  private readonly perRequest = new Map<string, S>();
  private readonly users = new Map<string, Set<S>>();
  private readonly names = new Map<string, Set<S>>();
  private readonly banMap = new Map<string, BanEntry>();
  private readonly playByName = new Map<string, number>();
  private playTotal = 0;

  private userKey(kind: SessionKind, userId: string): string {
    return `${kind}\n${userId}`;
  }

  add(s: S): void {
    if (this.sessions.has(s.id)) return;
    this.sessions.set(s.id, s);
    if (s.kind === 'play') {
      this.playTotal++;
      this.playByName.set(s.name, (this.playByName.get(s.name) ?? 0) + 1);
      if (perRequest(s.proto)) this.perRequest.set(s.idKey, s);
    }
    let byName = this.names.get(s.name);
    if (!byName) this.names.set(s.name, (byName = new Set()));
    byName.add(s);
    if (s.userId !== undefined) {
      const k = this.userKey(s.kind, s.userId);
      let set = this.users.get(k);
      if (!set) this.users.set(k, (set = new Set()));
      set.add(s);
    }
  }

  remove(s: S): void {
    if (this.sessions.get(s.id) !== s) return;
    this.sessions.delete(s.id);
    if (s.kind === 'play') {
      this.playTotal--;
      const n = (this.playByName.get(s.name) ?? 1) - 1;
      if (n > 0) this.playByName.set(s.name, n);
      else this.playByName.delete(s.name);
      if (this.perRequest.get(s.idKey) === s) this.perRequest.delete(s.idKey);
    }
    const byName = this.names.get(s.name);
    byName?.delete(s);
    if (byName?.size === 0) this.names.delete(s.name);
    this.dropUser(s);
  }

  /** Removes `s` from its user index; keyed by its current user id (reindexUser keeps that true). */
  private dropUser(s: S): void {
    if (s.userId === undefined) return;
    const k = this.userKey(s.kind, s.userId);
    const set = this.users.get(k);
    if (set?.delete(s) && set.size === 0) this.users.delete(k);
  }

  reindexUser(s: S, previousUserId?: string): void {
    if (previousUserId !== undefined) {
      const k = this.userKey(s.kind, previousUserId);
      const set = this.users.get(k);
      if (set?.delete(s) && set.size === 0) this.users.delete(k);
    }
    if (s.userId !== undefined && this.sessions.get(s.id) === s) {
      const k = this.userKey(s.kind, s.userId);
      let set = this.users.get(k);
      if (!set) this.users.set(k, (set = new Set()));
      set.add(s);
    }
  }

  get(id: string): S | undefined {
    return this.sessions.get(id);
  }

  perRequestByIdKey(idKey: string): S | undefined {
    return this.perRequest.get(idKey);
  }

  all(): S[] {
    return [...this.sessions.values()];
  }

  byUser(kind: SessionKind, userId: string): S[] {
    return [...(this.users.get(this.userKey(kind, userId)) ?? [])];
  }

  byName(name: string): S[] {
    return [...(this.names.get(name) ?? [])];
  }

  userCount(kind: SessionKind, userId: string): number {
    return this.users.get(this.userKey(kind, userId))?.size ?? 0;
  }

  streamClients(name: string): number {
    return this.playByName.get(name) ?? 0;
  }

  totalClients(): number {
    return this.playTotal;
  }

  counts(name: string): ProtoCounts {
    const out: ProtoCounts = { total: 0, byProto: emptyByProto(), publishers: 0 };
    for (const s of this.names.get(name) ?? []) {
      if (s.kind === 'publish') {
        out.publishers++;
        continue;
      }
      out.total++;
      out.byProto[s.proto]++;
    }
    return out;
  }

  setBan(entry: BanEntry): void {
    const prev = this.banMap.get(entry.idKey);
    // A longer ban already in force is not shortened by a later, shorter denial.
    if (prev !== undefined && prev.until > entry.until) return;
    this.banMap.set(entry.idKey, entry);
  }

  getBan(idKey: string, now: number): BanEntry | undefined {
    const e = this.banMap.get(idKey);
    if (e === undefined) return undefined;
    if (e.until <= now) {
      this.banMap.delete(idKey);
      return undefined;
    }
    return e;
  }

  clearBan(idKey: string): boolean {
    return this.banMap.delete(idKey);
  }

  bans(now: number): BanEntry[] {
    this.sweep(now);
    return [...this.banMap.values()];
  }

  sweep(now: number): number {
    let n = 0;
    for (const [k, e] of this.banMap) {
      if (e.until <= now) {
        this.banMap.delete(k);
        n++;
      }
    }
    return n;
  }
}
