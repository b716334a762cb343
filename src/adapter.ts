/**
 * The adapter contract: what a protocol adapter receives from the core and what the
 * composition root (src/server.ts) needs back from it. Adapters import this module and the
 * core's interfaces, never the composition root.
 */
import type { Logger } from 'pino';
import type { Config } from './config/types.js';
import type { HttpRouter } from './http/router.js';
import type { MetricsExtension } from './metrics/metrics.js';
import type { SessionManager } from './sessions/types.js';
import type { StreamRegistry } from './streams/registry.js';

/** What an adapter factory gets: core services only, never another adapter. */
export interface Core {
  config: () => Config;
  log: Logger;
  registry: StreamRegistry;
  sessions: SessionManager;
  router: HttpRouter;
  /** Series an adapter adds to `/metrics`; absent in tests that build a Core by hand. */
  metrics?: MetricsExtension;
}

export interface ProtocolAdapter {
  readonly name: string;
  start(): Promise<void>;
  /** Stops accepting, ends every client of this protocol (sessions close with history rows). */
  stop(): Promise<void>;
  /** The bound address once started (port 0 in tests becomes the real port). */
  address(): { host: string; port: number } | undefined;
}

export type AdapterFactory = (core: Core) => ProtocolAdapter | undefined;
