/**
 * Builds the session side of the core: the manager, its history store and its API
 * routes, and connects backend config overrides to the streams they change.
 */
import type { Logger } from 'pino';
import type { Config } from '../config/types.js';
import type { HttpRouter } from '../http/router.js';
import type { StreamRegistry } from '../streams/registry.js';
import { registerSessionRoutes } from '../api/sessions-api.js';
import { openHistory } from './history.js';
import { Sessions } from './manager.js';

export interface SessionCore {
  manager: Sessions;
  reconfigure(config: Config): void;
  closeAll(reason: string): void;
  close(): void;
}

export function createSessionCore(deps: {
  config: () => Config;
  registry: StreamRegistry;
  router: HttpRouter;
  log: Logger;
}): SessionCore {
  const history = openHistory(deps.config().history);
  const manager: Sessions = new Sessions({
    config: deps.config(),
    policy: (name) => deps.registry.configFor(name),
    log: deps.log,
    history,
    onConfigOverride: (name, partial) => {
      const stream = deps.registry.resolve(name);
      if (!stream) return;
      stream.applyOverride(partial).then(
        ({ changed, closedProtocols }) => {
          if (!changed) return;
          deps.log.info({ stream: name, closedProtocols }, 'stream config overridden by backend');
          for (const proto of closedProtocols) manager.closeProtocol(name, proto, 'config_changed');
        },
        (err: unknown) =>
          deps.log.warn({ stream: name, err: (err as Error).message }, 'backend config override ignored'),
      );
    },
  });
  registerSessionRoutes(deps.router, manager, history);
  return {
    manager,
    reconfigure: (config) => manager.reconfigure(config),
    closeAll: (reason) => manager.closeAll(reason),
    close: () => {
      manager.close();
      history.close();
    },
  };
}
