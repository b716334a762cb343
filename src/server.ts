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
import type { ClusterStore, UniqueKick } from './sessions/cluster.js';
import type { StreamDeps } from './streams/stream.js';
import { AdminView } from './tokens/admin-view.js';
import { combineObservers, Metrics } from './metrics/metrics.js';
import { EventSink } from './events/sink.js';
import { eventsObserver, StreamWatcher } from './events/lifecycle.js';
import { registerExplainRoutes } from './api/explain-api.js';
import { LiveFeed, registerLiveRoutes } from './api/live-api.js';
import { registerOpenApiRoute } from './http/openapi.js';
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
  options: {
    log: Logger;
    adapters: AdapterFactory[];
    reloadFromDisk?: () => Promise<Config>;
    /** With `workers N` (src/cluster/worker.ts): the shared session store and the stream hooks. */
    worker?: {
      sharedStore: (onUnique: (kick: UniqueKick) => void) => ClusterStore;
      streams: Pick<StreamDeps, 'onPublisher' | 'onStart' | 'runsPulledInput'>;
      /** Routes that take precedence over the single-process session API (the cluster-wide one). */
      routes?: (router: HttpRouter, manager: SessionCore['manager']) => void;
    };
  },
): Promise<RunningServer> {
  let config = initial;
  const log = options.log;
  const router = new HttpRouter();
  const registry = new StreamRegistry(config, { log, ffmpeg: ffmpegPath(), ...options.worker?.streams });
  // AUTH-SPEC §7.5: one secret per process (or STREAMGATE_ADMIN_VIEW_SECRET) for ADM1 tokens.
  const adminView = new AdminView();
  const sessionCore: SessionCore = await createSessionCore({
    config,
    log,
    adminView,
    ...(options.worker ? { sharedStore: options.worker.sharedStore } : {}),
    policy: (name) => registry.configFor(name),
    onConfigOverride: (name, partial) => registry.resolve(name)?.applyOverride(partial),
  });
  const core: Core = { config: () => config, log, registry, sessions: sessionCore.manager, router };

  // Lifecycle events (README "Events"): a sink while `events` is configured, fed by the manager.
  let sink: EventSink | undefined;
  const watcher = new StreamWatcher(registry, { emit: (type, data) => sink?.emit(type, data) });
  const setEvents = (next: Config): void => {
    if (next.events && sink) sink.reconfigure(next.events);
    else if (next.events) {
      sink = new EventSink(next.events, { log });
      watcher.start();
    } else if (sink) {
      sink.stop();
      sink = undefined;
      watcher.stop();
    }
  };
  setEvents(config);
  // Built now (it reads the router per request), started once every route is registered.
  const http: HttpFront | undefined = config.http
    ? createHttpFront(config.http, router, { config: () => config, log })
    : undefined;
  const metrics = new Metrics({
    config: () => config,
    streams: () => registry.list(),
    sessions: () => sessionCore.manager.list(),
    cacheStats: () => sessionCore.manager.cacheStats(),
    httpConnections: () => http?.connections() ?? 0,
    events: () => sink?.stats,
  });
  core.metrics = metrics;
  sessionCore.manager.observer = combineObservers(
    metrics,
    eventsObserver({ emit: (type, data) => sink?.emit(type, data) }),
  );
  const live = new LiveFeed({ registry, sessions: sessionCore.manager });

  const reload = async (next: Config): Promise<unknown> => {
    config = next;
    const result = await registry.reload(next);
    sessionCore.reconfigure(next);
    setEvents(next);
    log.info(result, 'config reloaded');
    return result;
  };

  registerOpenApiRoute(router);
  registerStreamRoutes(router, {
    metrics,
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

  options.worker?.routes?.(router, sessionCore.manager);
  registerSessionRoutes(router, sessionCore.manager, sessionCore.history, () => config.limits);
  registerExplainRoutes(router, {
    config: () => config,
    policy: (name) => registry.configFor(name),
    manager: sessionCore.manager,
    adminView,
  });
  registerLiveRoutes(router, live);
  registerTokenRoutes(router, adminView, () => config);
  registerAdminRoutes(router);

  const adapters = options.adapters.map((f) => f(core)).filter((a): a is ProtocolAdapter => a !== undefined);
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
    live.close();
    watcher.stop();
    sink?.stop();
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
      live.close();
      await Promise.allSettled([http?.stop(), ...adapters.map((a) => a.stop()), sql?.stop()]);
      sessionCore.closeAll('server_shutdown');
      await registry.stop();
      // The last session.closed and stream.stopped events get a moment to reach the receiver.
      watcher.tick();
      await sink?.drain(2000);
      sink?.stop();
      watcher.stop();
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
