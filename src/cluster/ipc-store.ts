/**
 * A worker's session store when `workers N` runs without `session_store`: the ClusterStore
 * the session manager already speaks (bans, per-user counts, X-Unique), answered by the
 * primary's SharedSessions over the cluster channel instead of by Redis. Like RedisCluster,
 * a store that does not answer in time never refuses or closes a session: the limit then
 * holds per worker, and it is logged.
 */
import type { Logger } from 'pino';
import type { ClusterSession, ClusterStore, UniqueKick } from '../sessions/cluster.js';
import type { BanEntry } from '../sessions/store.js';
import type { WorkerMessage } from './messages.js';

/** The primary answers from memory; this long means it is gone or stuck. */
const REPLY_TIMEOUT_MS = 2_000;

/** Requests with ids and replies, over a one-way `send`. */
export class Requests {
  private next = 1;
  private readonly pending = new Map<number, { resolve: (v: unknown) => void; timer: NodeJS.Timeout }>();

  constructor(
    private readonly send: (m: WorkerMessage) => void,
    private readonly timeoutMs = REPLY_TIMEOUT_MS,
  ) {}

  /** Sends the message built with a fresh id; resolves with the reply, or `timedOut` after the deadline. */
  ask<T>(build: (rid: number) => WorkerMessage, timedOut: T): Promise<T> {
    const rid = this.next++;
    return new Promise<T>((resolve) => {
      const timer = setTimeout(() => {
        this.pending.delete(rid);
        resolve(timedOut);
      }, this.timeoutMs);
      timer.unref();
      this.pending.set(rid, { resolve: resolve as (v: unknown) => void, timer });
      try {
        this.send(build(rid));
      } catch {
        // The channel is closed (the primary is gone): answer as a timeout would, now.
        clearTimeout(timer);
        this.pending.delete(rid);
        resolve(timedOut);
      }
    });
  }

  reply(rid: number, value: unknown): void {
    const p = this.pending.get(rid);
    if (!p) return; // answered after the deadline
    this.pending.delete(rid);
    clearTimeout(p.timer);
    p.resolve(value);
  }
}

export class IpcClusterStore implements ClusterStore {
  constructor(
    private readonly send: (m: WorkerMessage) => void,
    private readonly requests: Requests,
    private readonly log: Logger,
  ) {}

  async register(session: ClusterSession): Promise<{ total: number; newer: number } | undefined> {
    const r = await this.requests.ask<{ total: number; newer: number } | undefined>(
      (rid) => ({ t: 'register', rid, session }),
      undefined,
    );
    if (r === undefined) this.log.warn('primary did not answer the session count; limits hold per worker');
    return r;
  }

  unregister(id: string): void {
    this.post({ t: 'unregister', id });
  }

  setBan(entry: BanEntry): void {
    this.post({ t: 'set_ban', entry });
  }

  async getBan(idKey: string): Promise<BanEntry | undefined> {
    const r = await this.requests.ask<BanEntry | null | undefined>(
      (rid) => ({ t: 'get_ban', rid, idKey }),
      undefined,
    );
    return r ?? undefined;
  }

  clearBan(idKey: string): void {
    this.post({ t: 'clear_ban', idKey });
  }

  publishUnique(kick: UniqueKick): void {
    this.post({ t: 'unique', kick });
  }

  close(): void {
    // Sessions are unregistered one by one as the manager closes them; the primary also
    // drops whatever a worker leaves behind when it exits.
  }

  private post(m: WorkerMessage): void {
    try {
      this.send(m);
    } catch {
      // The primary is gone; this worker is about to be stopped with it.
    }
  }
}
