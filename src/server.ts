/**
 * The composition root: builds the core (stream registry, session manager, history, HTTP
 * front) from a Config, wires what crosses rooms (backend overrides into streams, API and
 * admin routes) and starts the protocol adapters it is given. It never imports an adapter
 * itself; src/main.ts passes them in, which keeps the core protocol-blind.
 */
import type { Logger } from 'pino';
import type { AdapterFactory, Core, ProtocolAdapter } from './adapter.js';
import type { Config, Listen } from './config/types.js';
import { HttpRouter } from './http/router.js';
import { createHttpFront, type HttpFront } from './http/server.js';
import { registerStreamRoutes } from './api/streams-api.js';
import { registerAdminRoutes } from './admin/index.js';
import { StreamRegistry } from './streams/registry.js';
import { ffmpegPath } from './streams/ffmpeg-input.js';
import { registerSessionRoutes } from './api/sessions-api.js';
import { registerTokenRoutes } from './api/tokens-api.js';
import { createSessionCore, type SessionCore } from './sessions/index.js';
import { AdminView } from './tokens/admin-view.js';
import { createSqlServer, type SqlServer } from './sql/server.js';
import { historyPath } from './sessions/history.js';
import { packageVersion } from './package-info.js';

export interface RunningServer {
  core: Core;
  /** Bound addresses by listener name (`http`, `rtmp`, …). */
  addresses(): Record<string, { host: string; port: number }>;
  reload(config: Config): Promise<unknown>;
  stop(): Promise<void>;
}

export async function startServer(
  initial: Config,
  options: { log: Logger; adapters: AdapterFactory[]; reloadFromDisk?: () => Promise<Config> },
): Promise<RunningServer> {
  let config = initial;
  const log = options.log;
  const router = new HttpRouter();
  const registry = new StreamRegistry(config, { log, ffmpeg: ffmpegPath() });
  // AUTH-SPEC §7.5: one secret per process (or STREAMGATE_ADMIN_VIEW_SECRET) for ADM1 tokens.
  const adminView = new AdminView();
  const sessionCore: SessionCore = await createSessionCore({
    config,
    log,
    adminView,
    policy: (name) => registry.configFor(name),
    onConfigOverride: (name, partial) => registry.resolve(name)?.applyOverride(partial),
  });
  const core: Core = { config: () => config, log, registry, sessions: sessionCore.manager, router };

  const reload = async (next: Config): Promise<unknown> => {
    config = next;
    const result = await registry.reload(next);
    sessionCore.reconfigure(next);
    log.info(result, 'config reloaded');
    return result;
  };

  registerStreamRoutes(router, {
    registry,
    sessions: sessionCore.manager,
    cacheStats: () => sessionCore.manager.cacheStats(),
    reload: async () => {
      if (!options.reloadFromDisk) {
        throw new Error('running on the embedded config; there is no file to reload');
      }
      return reload(await options.reloadFromDisk());
    },
  });

  registerSessionRoutes(router, sessionCore.manager, sessionCore.history);
  registerTokenRoutes(router, adminView, () => config);
  registerAdminRoutes(router);

  const adapters = options.adapters.map((f) => f(core)).filter((a): a is ProtocolAdapter => a !== undefined);
  const http: HttpFront | undefined = config.http
    ? createHttpFront(config.http, router, { config: () => config, log })
    : undefined;
  // AUTH-SPEC §9.2: the read-only SQL statistics endpoint, only when `mysql` is configured.
  const sql: SqlServer | undefined = config.mysql
    ? createSqlServer({
        listen: config.mysql,
        config: () => config,
        log,
        sessions: sessionCore.manager,
        registry,
        serverVersion: `8.0.0-streamgate-${packageVersion()}`,
        historyPath: ((p) => (p === ':memory:' ? null : p))(historyPath(config.history)),
      })
    : undefined;

  registry.start();
  try {
    if (http) await http.start();
    for (const a of adapters) await a.start();
    if (sql) await sql.start();
  } catch (err) {
    await Promise.allSettled([http?.stop(), ...adapters.map((a) => a.stop()), sql?.stop(), registry.stop()]);
    sessionCore.close();
    throw err;
  }

  return {
    core,
    addresses() {
      const out: Record<string, { host: string; port: number }> = {};
      const h = http?.address();
      if (h) out['http'] = h;
      for (const a of adapters) {
        const addr = a.address();
        if (addr) out[a.name] = addr;
      }
      const s = sql?.address();
      if (s) out['mysql'] = s;
      return out;
    },
    reload,
    async stop() {
      await Promise.allSettled([http?.stop(), ...adapters.map((a) => a.stop()), sql?.stop()]);
      sessionCore.closeAll('server_shutdown');
      await registry.stop();
      sessionCore.close();
    },
  };
}

/** `host:port` for log lines and URLs; `0.0.0.0`/`::` shown as the loopback a newcomer can open. */
export function displayHost(listen: Listen | undefined): string {
  const host = listen?.host;
  if (!host || host === '0.0.0.0' || host === '::') return '127.0.0.1';
  return host.includes(':') ? `[${host}]` : host;
}
