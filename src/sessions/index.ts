/**
 * Builds the session side of the core: the manager, its history store and its API
 * routes, and connects backend config overrides to the streams they change.
 */
import type { Logger } from 'pino';
import type { Config } from '../config/types.js';
import type { CloseReason } from '../core/reasons.js';
import type { HttpRouter } from '../http/router.js';
import type { StreamRegistry } from '../streams/registry.js';
import { registerSessionRoutes } from '../api/sessions-api.js';
import { registerTokenRoutes } from '../api/tokens-api.js';
import { AdminView } from '../tokens/admin-view.js';
import { openHistory } from './history.js';
import { RedisCluster } from './cluster.js';
import { Sessions } from './manager.js';

export interface SessionCore {
  manager: Sessions;
  reconfigure(config: Config): void;
  closeAll(reason: CloseReason): void;
  close(): void;
}

export function createSessionCore(deps: {
  config: () => Config;
  registry: StreamRegistry;
  router: HttpRouter;
  log: Logger;
}): SessionCore {
  const history = openHistory(deps.config().history);
  const storeUrl = deps.config().sessionStore;
  // SPEC §7: with a shared store, bans, per-user limits and X-Unique hold across origins.
  const cluster =
    storeUrl === undefined
      ? undefined
      : new RedisCluster(storeUrl, deps.log, (kick) => manager.uniqueHandler()(kick));
  if (storeUrl !== undefined) {
    deps.log.info(
      { session_store: storeUrl.replace(/\/\/[^/@]*@/, '//[redacted]@') },
      'sharing session state',
    );
  }
  // AUTH-SPEC §7.5: one secret per process (or STREAMGATE_ADMIN_VIEW_SECRET) for ADM1 tokens.
  const adminView = new AdminView();
  const manager: Sessions = new Sessions({
    config: deps.config(),
    policy: (name) => deps.registry.configFor(name),
    log: deps.log,
    history,
    adminView,
    ...(cluster ? { cluster } : {}),
    onConfigOverride: (name, partial) => {
      const stream = deps.registry.resolve(name);
      if (!stream) return;
      const r = stream.applyOverride(partial);
      if (!r.ok) {
        deps.log.warn({ stream: name, err: r.error }, 'backend config override ignored');
        return;
      }
      if (!r.changed) return;
      deps.log.info(
        { stream: name, closedProtocols: r.closedProtocols },
        'stream config overridden by backend',
      );
      for (const proto of r.closedProtocols) manager.closeProtocol(name, proto, 'config_changed');
    },
  });
  registerSessionRoutes(deps.router, manager, history);
  registerTokenRoutes(deps.router, adminView, deps.config);
  return {
    manager,
    reconfigure: (config) => manager.reconfigure(config),
    closeAll: (reason) => manager.closeAll(reason),
    close: () => {
      manager.close();
      cluster?.close();
      history.close();
    },
  };
}
