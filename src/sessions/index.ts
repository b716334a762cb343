/**
 * Builds the session side of the core from a Config: the history store, the shared cluster
 * store when `session_store` is set, and the manager over them. The composition root
 * (src/server.ts) gives it what reaches outside sessions (stream policies, overrides, admin
 * view tokens) and registers the API routes.
 */
import type { Logger } from 'pino';
import type { Config } from '../config/types.js';
import type { CloseReason } from '../core/reasons.js';
import type { ClusterStore, UniqueKick } from './cluster.js';
import { openHistory, type HistoryStore } from './history.js';
import { Sessions, type SessionManagerOptions } from './manager.js';

export interface SessionCore {
  manager: Sessions;
  history: HistoryStore;
  reconfigure(config: Config): void;
  closeAll(reason: CloseReason): void;
  close(): void;
}

export async function createSessionCore(
  deps: {
    config: Config;
    log: Logger;
    /** With `workers N` and no `session_store`: the store the primary keeps over IPC (src/cluster/). */
    sharedStore?: (onUnique: (kick: UniqueKick) => void) => ClusterStore;
  } & Pick<SessionManagerOptions, 'policy' | 'onConfigOverride' | 'adminView'>,
): Promise<SessionCore> {
  const { config, log } = deps;
  const history = openHistory(config.history, {
    onError: (err, lostRows) =>
      log.error(
        { event: 'history_write_failed', lost_rows: lostRows, err: (err as Error)?.message ?? String(err) },
        'history write failed',
      ),
  });
  const storeUrl = config.sessionStore;
  // SPEC §7: with a shared store, bans, per-user limits and X-Unique hold across origins.
  // The Redis client (ioredis) is loaded only when a store is configured: it is a large share
  // of a single origin's memory otherwise.
  let cluster: ClusterStore | undefined;
  if (storeUrl !== undefined) {
    const { RedisCluster } = await import('./cluster.js');
    cluster = new RedisCluster(storeUrl, log, (kick) => manager.uniqueHandler()(kick));
  } else if (deps.sharedStore) {
    cluster = deps.sharedStore((kick) => manager.uniqueHandler()(kick));
  }
  if (storeUrl !== undefined) {
    log.info({ session_store: storeUrl.replace(/\/\/[^/@]*@/, '//[redacted]@') }, 'sharing session state');
  }
  const manager: Sessions = new Sessions({
    config,
    policy: deps.policy,
    log,
    history,
    ...(deps.onConfigOverride ? { onConfigOverride: deps.onConfigOverride } : {}),
    ...(deps.adminView ? { adminView: deps.adminView } : {}),
    ...(cluster ? { cluster } : {}),
  });
  return {
    manager,
    history,
    reconfigure: (next) => manager.reconfigure(next),
    closeAll: (reason) => manager.closeAll(reason),
    close: () => {
      manager.close();
      cluster?.close();
      history.close();
    },
  };
}
