/**
 * Cluster-wide session state in Redis (SPEC §7, AUTH-SPEC A29): origins that point at the
 * same `session_store redis://…` share bans, per-user session counts and X-Unique kicks.
 *
 * Every node keeps its own sessions in memory as before and mirrors what limits need:
 * - a ban is also `SET sg:ban:<idKey> … PX ttl`, so another node refuses that identity;
 * - a session with a user id is a member `<openedAt>:<sessionId>` of the sorted set
 *   `sg:user:<kind>:<userId>` scored by its expiry; the node refreshes the score every
 *   HEARTBEAT_MS, so the entries of a node that died expire instead of counting forever;
 * - an X-Unique grant is published on `sg:unique`; every node kicks its own older sessions.
 * Redis errors never refuse or close a session: limits then hold per node, and it is logged.
 */
import { Redis } from 'ioredis';
import type { Logger } from 'pino';
import type { SessionKind } from '../core/proto.js';
import type { BanEntry } from './store.js';

/** How often a node re-announces its sessions, and how long an entry outlives a silent node. */
const HEARTBEAT_MS = 10_000;
const ENTRY_TTL_MS = 30_000;
const UNIQUE_CHANNEL = 'sg:unique';

export interface ClusterSession {
  id: string;
  kind: SessionKind;
  userId: string;
  openedAt: number;
}

export interface UniqueKick {
  kind: SessionKind;
  userId: string;
  /** The session that stays: the newest, possibly on another node. */
  winner: string;
}

/** What the session manager needs from a shared store; RedisCluster is the implementation. */
export interface ClusterStore {
  register(s: ClusterSession): Promise<{ total: number; newer: number } | undefined>;
  unregister(id: string): void;
  setBan(entry: BanEntry): void;
  getBan(idKey: string): Promise<BanEntry | undefined>;
  clearBan(idKey: string): void;
  publishUnique(kick: UniqueKick): void;
  close(): void;
}

const userKey = (kind: SessionKind, userId: string): string => `sg:user:${kind}:${userId}`;
const member = (s: ClusterSession): string => `${s.openedAt}:${s.id}`;

export class RedisCluster implements ClusterStore {
  private readonly redis: Redis;
  private readonly sub: Redis;
  private readonly local = new Map<string, ClusterSession>();
  private readonly heartbeat: NodeJS.Timeout;

  constructor(
    url: string,
    private readonly log: Logger,
    onUnique: (kick: UniqueKick) => void,
  ) {
    const options = { maxRetriesPerRequest: 1, enableOfflineQueue: false, lazyConnect: false };
    this.redis = new Redis(url, options);
    this.sub = new Redis(url, { ...options, enableOfflineQueue: true });
    const warn = (err: Error): void => this.log.warn({ err: err.message }, 'session store (redis) error');
    this.redis.on('error', warn);
    this.sub.on('error', warn);
    void this.sub.subscribe(UNIQUE_CHANNEL).catch(warn);
    this.sub.on('message', (_channel: string, text: string) => {
      try {
        onUnique(JSON.parse(text) as UniqueKick);
      } catch {
        // a foreign publisher on our channel: ignore it
      }
    });
    this.heartbeat = setInterval(() => void this.refresh(), HEARTBEAT_MS);
    this.heartbeat.unref();
  }

  /** Records a granted session and returns how many open sessions of that user and kind, cluster-wide, are older. */
  async register(s: ClusterSession): Promise<{ total: number; newer: number } | undefined> {
    this.local.set(s.id, s);
    const key = userKey(s.kind, s.userId);
    const now = Date.now();
    try {
      const [, , members] = (await this.redis
        .multi()
        .zremrangebyscore(key, '-inf', now)
        .zadd(key, now + ENTRY_TTL_MS, member(s))
        .zrangebyscore(key, now, '+inf')
        .pexpire(key, ENTRY_TTL_MS * 2)
        .exec()
        .then((r) => (r ?? []).map(([err, v]) => (err ? undefined : v)))) as [
        unknown,
        unknown,
        string[] | undefined,
      ];
      if (!members) return undefined;
      // Newer = opened later, ties broken by id, the same order every node computes.
      const newer = members.filter((m) => m > member(s)).length;
      return { total: members.length, newer };
    } catch (err) {
      this.log.warn(
        { err: (err as Error).message },
        'session store (redis) unreachable; limits hold per node',
      );
      return undefined;
    }
  }

  unregister(id: string): void {
    const s = this.local.get(id);
    if (!s) return;
    this.local.delete(id);
    this.redis.zrem(userKey(s.kind, s.userId), member(s)).catch(() => undefined);
  }

  setBan(entry: BanEntry): void {
    const ttl = entry.until - Date.now();
    if (ttl <= 0) return;
    this.redis.set(`sg:ban:${entry.idKey}`, JSON.stringify(entry), 'PX', ttl).catch(() => undefined);
  }

  async getBan(idKey: string): Promise<BanEntry | undefined> {
    try {
      const text = await this.redis.get(`sg:ban:${idKey}`);
      return text ? (JSON.parse(text) as BanEntry) : undefined;
    } catch {
      return undefined;
    }
  }

  clearBan(idKey: string): void {
    this.redis.del(`sg:ban:${idKey}`).catch(() => undefined);
  }

  publishUnique(kick: UniqueKick): void {
    this.redis.publish(UNIQUE_CHANNEL, JSON.stringify(kick)).catch(() => undefined);
  }

  private async refresh(): Promise<void> {
    if (this.local.size === 0) return;
    const expiry = Date.now() + ENTRY_TTL_MS;
    const pipe = this.redis.pipeline();
    for (const s of this.local.values()) {
      const key = userKey(s.kind, s.userId);
      pipe.zadd(key, expiry, member(s));
      pipe.pexpire(key, ENTRY_TTL_MS * 2);
    }
    await pipe.exec().catch(() => undefined);
  }

  close(): void {
    clearInterval(this.heartbeat);
    const pipe = this.redis.pipeline();
    for (const s of this.local.values()) pipe.zrem(userKey(s.kind, s.userId), member(s));
    this.local.clear();
    void pipe
      .exec()
      .catch(() => undefined)
      .finally(() => {
        this.redis.disconnect();
        this.sub.disconnect();
      });
  }
}
