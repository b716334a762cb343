/**
 * The core in-process for the HTTP adapters' integration tests: the real registry, session
 * manager, router and HTTP front on 127.0.0.1 port 0, wired as src/server.ts wires them, but
 * with a scriptable FakeBackend instead of an HTTP auth service and no ffmpeg. Streams come
 * from a `live` template with a publish input, so a test feeds a stream's bus directly.
 */
import { request, type IncomingMessage } from 'node:http';
import { pino } from 'pino';
import type { Core, ProtocolAdapter } from '../../../src/adapter.js';
import { parseConfig } from '../../../src/config/parse.js';
import { createHttpFront } from '../../../src/http/server.js';
import { HttpRouter } from '../../../src/http/router.js';
import type { MediaBus } from '../../../src/media/bus.js';
import { SqliteHistory } from '../../../src/sessions/history.js';
import { Sessions } from '../../../src/sessions/manager.js';
import { StreamRegistry } from '../../../src/streams/registry.js';
import { FakeBackend } from '../sessions/helpers.js';

const CONFIG = `
http 127.0.0.1:0;
history sqlite://:memory:;
on_play http://backend.test/auth;
template live { prefix live; input publish://; }
`;

export interface HttpCore {
  url(path: string): string;
  backend: FakeBackend;
  manager: Sessions;
  registry: StreamRegistry;
  /** The bus of a stream, resolved (and for a template name created) as an adapter would. */
  bus(name: string): MediaBus;
  stop(): Promise<void>;
}

/** `extra` is appended to the config (a `limits { … }` block, say). */
export async function startHttpCore(adapter: (core: Core) => ProtocolAdapter, extra = ''): Promise<HttpCore> {
  const parsed = parseConfig(CONFIG + extra, 'test.conf');
  if (!('config' in parsed)) throw new Error(JSON.stringify(parsed.errors));
  const config = parsed.config;
  if (!config.http) throw new Error('no http listener in the test config');
  const log = pino({ level: 'silent' });
  const router = new HttpRouter();
  const registry = new StreamRegistry(config, { log, ffmpeg: 'ffmpeg' });
  const backend = new FakeBackend();
  const history = new SqliteHistory('sqlite://:memory:');
  const manager = new Sessions({
    config,
    policy: (name) => registry.configFor(name),
    log,
    history,
    backendFactory: () => backend,
  });
  const front = createHttpFront(config.http, router, { config: () => config, log });
  const protocol = adapter({ config: () => config, log, registry, sessions: manager, router });
  registry.start();
  await front.start();
  await protocol.start();
  const port = front.address()?.port;
  if (port === undefined) throw new Error('http front did not bind');
  return {
    url: (path) => `http://127.0.0.1:${port}${path}`,
    backend,
    manager,
    registry,
    bus(name) {
      const stream = registry.resolve(name);
      if (!stream) throw new Error(`no stream ${name}`);
      return stream.bus;
    },
    async stop() {
      await Promise.allSettled([front.stop(), protocol.stop()]);
      manager.closeAll('server_shutdown');
      await registry.stop();
      manager.close();
      history.close();
    },
  };
}

export interface Fetched {
  status: number;
  headers: IncomingMessage['headers'];
  body: Buffer;
}

/** Opens a GET on its own connection and resolves with the response head; the body is left to the caller. */
export function open(url: string): Promise<IncomingMessage> {
  return new Promise((resolve, reject) => {
    request(url, { agent: false }, resolve).on('error', reject).end();
  });
}

/** A complete GET. */
export async function get(url: string): Promise<Fetched> {
  const res = await open(url);
  const chunks: Buffer[] = [];
  for await (const c of res) chunks.push(c as Buffer);
  return { status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) };
}

/**
 * Resolves the next time something subscribes to the bus, which for an egress means it has
 * started listening: a test can feed the bus knowing the request it made is being served.
 */
export function nextListener(bus: MediaBus): Promise<void> {
  const subscribe = bus.subscribe.bind(bus);
  return new Promise((resolve) => {
    bus.subscribe = (listener) => {
      bus.subscribe = subscribe;
      const off = subscribe(listener);
      resolve();
      return off;
    };
  });
}

/** Whole MPEG-TS packets: a multiple of 188 bytes, each starting with the sync byte. */
export function isTs(b: Buffer): boolean {
  if (b.length === 0 || b.length % 188 !== 0) return false;
  for (let i = 0; i < b.length; i += 188) if (b[i] !== 0x47) return false;
  return true;
}

/** A refusal as AUTH-SPEC §5.3 has it: a one-line plain-text body and nothing else. */
export function refusal(r: Fetched): string {
  const text = r.body.toString('utf8');
  if (!/^text\/plain/.test(r.headers['content-type'] ?? '') || !/^\d{3} [^\n]*\n$/.test(text)) {
    throw new Error(
      `not a plain refusal: ${r.headers['content-type']} ${JSON.stringify(text.slice(0, 200))}`,
    );
  }
  return text;
}
