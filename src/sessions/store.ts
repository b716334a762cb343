/**
 * Where this node's open sessions, cached denials and bans, and per-user counts live (SPEC §7).
 *
 * The interface is synchronous on purpose: a decision reads counts and writes a session in
 * one turn of the event loop, so two concurrent grants cannot both squeeze under a limit
 * (STYLE §7.3). Sharing across origins is a separate, asynchronous layer (cluster.ts) that
 * the enforcement room consults beside this store; the hot path never waits on the network.
 */
import { countLimitHit, DEFAULT_LIMITS } from '../core/limits.js';
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

/** What the denial and ban cache holds, for `/metrics`. */
export interface DenialCacheStats {
  /** Cached denials and bans together. */
  entries: number;
  /** Of `entries`, the limiter / X-Unique bans. */
  bans: number;
  /** Estimated memory of the entries (`denialEntryBytes`). */
  bytes: number;
  /** `denial_cache_bytes` in force. */
  maxBytes: number;
  /** Entries dropped to stay under `maxBytes` since the store was made. */
  evictions: number;
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
  denialCacheStats(): DenialCacheStats;
}

/**
 * What one cache entry costs beyond its strings, measured on V8 (Node 20, pointer compression)
 * with 200 000 entries: the entry object with its two heap-number times, its LRU slot and the
 * Map slot with its share of the table's spare capacity came to about 200 bytes.
 */
const ENTRY_OVERHEAD_BYTES = 200;

/** V8 keeps a string in one byte per character when every character fits, else two. */
function stringBytes(s: string | undefined): number {
  if (s === undefined) return 0;
  return 16 + s.length * (/[^\u0000-\u00ff]/.test(s) ? 2 : 1);
}

/** Estimated heap bytes of one cached denial or ban: its strings plus a fixed overhead. */
export function denialEntryBytes(e: BanEntry): number {
  return (
    ENTRY_OVERHEAD_BYTES +
    stringBytes(e.idKey) +
    stringBytes(e.reason) +
    stringBytes(e.name) +
    stringBytes(e.userId) +
    stringBytes(e.tokenHash)
  );
}

interface CachedEntry {
  readonly entry: BanEntry;
  /** Computed once on insert, so removal subtracts exactly what was added. */
  readonly bytes: number;
}

function emptyByProto(): Record<Proto, number> {
  return Object.fromEntries(PROTOS.map((p) => [p, 0])) as Record<Proto, number>;
}

export interface MemoryStoreOptions {
  /** `denial_cache_bytes`, read on every insert so that a reloaded config applies. */
  denialCacheBytes?: () => number;
}

/**
 * The default single-node store: maps with incrementally kept counters.
 *
 * Cached denials and bans are capped at `denial_cache_bytes` (AUTH-SPEC §4.5 says nothing
 * of memory; a flood of distinct bad tokens would otherwise grow the cache without bound).
 * Two Maps in least-recently-used order (a lookup or a renewal moves an entry to the end):
 * plain backend denials, and limiter / X-Unique bans. Over the cap, denials go first, oldest
 * first, and bans only once no denial is left: a forgotten denial costs one backend call
 * that answers no again, while a forgotten ban lets a user past X-Max-Sessions or X-Unique,
 * and bans come only from granted sessions, so a flood of bad tokens cannot push them out.
 */
export class MemoryStore<S extends StoredSession> implements SessionStore<S> {
  private readonly sessions = new Map<string, S>();
  private readonly perRequest = new Map<string, S>();
  private readonly users = new Map<string, Set<S>>();
  private readonly names = new Map<string, Set<S>>();
  private readonly denials = new Map<string, CachedEntry>();
  private readonly banned = new Map<string, CachedEntry>();
  private readonly playByName = new Map<string, number>();
  private playTotal = 0;
  private cacheBytes = 0;
  private evictions = 0;
  private readonly maxCacheBytes: () => number;

  constructor(opts: MemoryStoreOptions = {}) {
    this.maxCacheBytes = opts.denialCacheBytes ?? (() => DEFAULT_LIMITS.denial_cache_bytes);
  }

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
    const prev = this.cached(entry.idKey);
    if (prev !== undefined) {
      // A longer ban already in force is not shortened by a later, shorter denial.
      if (prev.entry.until > entry.until) {
        this.touch(prev);
        return;
      }
      this.drop(prev);
    }
    const c: CachedEntry = { entry, bytes: denialEntryBytes(entry) };
    (entry.ban ? this.banned : this.denials).set(entry.idKey, c);
    this.cacheBytes += c.bytes;
    this.evict();
  }

  getBan(idKey: string, now: number): BanEntry | undefined {
    const c = this.cached(idKey);
    if (c === undefined) return undefined;
    if (c.entry.until <= now) {
      this.drop(c);
      return undefined;
    }
    this.touch(c);
    return c.entry;
  }

  clearBan(idKey: string): boolean {
    const c = this.cached(idKey);
    if (c === undefined) return false;
    this.drop(c);
    return true;
  }

  bans(now: number): BanEntry[] {
    this.sweep(now);
    return [...this.banned.values(), ...this.denials.values()].map((c) => c.entry);
  }

  sweep(now: number): number {
    let n = 0;
    for (const map of [this.denials, this.banned]) {
      for (const c of map.values()) {
        if (c.entry.until <= now) {
          this.drop(c);
          n++;
        }
      }
    }
    return n;
  }

  denialCacheStats(): DenialCacheStats {
    return {
      entries: this.denials.size + this.banned.size,
      bans: this.banned.size,
      bytes: this.cacheBytes,
      maxBytes: this.maxCacheBytes(),
      evictions: this.evictions,
    };
  }

  private cached(idKey: string): CachedEntry | undefined {
    return this.banned.get(idKey) ?? this.denials.get(idKey);
  }

  private mapOf(c: CachedEntry): Map<string, CachedEntry> {
    return c.entry.ban ? this.banned : this.denials;
  }

  /** Moves an entry to the most recently used end. */
  private touch(c: CachedEntry): void {
    const map = this.mapOf(c);
    map.delete(c.entry.idKey);
    map.set(c.entry.idKey, c);
  }

  private drop(c: CachedEntry): void {
    if (this.mapOf(c).delete(c.entry.idKey)) this.cacheBytes -= c.bytes;
  }

  /** Least recently used denials first, then bans, until the cache fits its cap. */
  private evict(): void {
    const max = this.maxCacheBytes();
    while (this.cacheBytes > max) {
      const victim = first(this.denials) ?? first(this.banned);
      if (victim === undefined) return;
      this.drop(victim);
      this.evictions++;
      countLimitHit('denial_cache_bytes');
    }
  }
}

function first<V>(map: Map<string, V>): V | undefined {
  for (const v of map.values()) return v;
  return undefined;
}
