/**
 * The real composition root in-process (src/server.ts with the HLS and HTTP MPEG-TS adapters)
 * on 127.0.0.1 port 0 with an in-memory history: what the operator-surface tests talk to.
 */
import type { TestContext } from 'node:test';
import { createDvrAdapter } from '../../../protocols/dvr/index.js';
import { createHlsAdapter } from '../../../protocols/hls/index.js';
import { createMpegtsAdapter } from '../../../protocols/mpegts/index.js';
import { parseConfig } from '../../../src/config/parse.js';
import type { Config } from '../../../src/config/types.js';
import { startServer, type RunningServer } from '../../../src/server.js';
import { captureLog } from '../sessions/helpers.js';

export interface Running {
  server: RunningServer;
  base: string;
  lines: string[];
  call(
    method: string,
    path: string,
    options?: { body?: unknown; headers?: Record<string, string> },
  ): Promise<{ status: number; type: string; body: unknown; text: string }>;
}

export function configOf(text: string): Config {
  const parsed = parseConfig(`http 127.0.0.1:0;\nhistory sqlite://:memory:;\n${text}`, 'operator.conf');
  if (!('config' in parsed)) throw new Error(JSON.stringify(parsed.errors));
  return parsed.config;
}

export async function startRunning(t: TestContext, text: string): Promise<Running> {
  const { log, lines } = captureLog();
  const server = await startServer(configOf(text), {
    log,
    adapters: [
      (core) => createHlsAdapter(core),
      (core) => createMpegtsAdapter(core),
      (core) => createDvrAdapter(core),
    ],
  });
  t.after(() => server.stop());
  const base = `http://127.0.0.1:${server.addresses()['http']?.port ?? 0}`;
  return {
    server,
    base,
    lines,
    async call(method, path, options = {}) {
      const res = await fetch(base + path, {
        method,
        headers: {
          ...(options.body !== undefined ? { 'content-type': 'application/json' } : {}),
          ...options.headers,
        },
        ...(options.body !== undefined
          ? { body: typeof options.body === 'string' ? options.body : JSON.stringify(options.body) }
          : {}),
      });
      const text = await res.text();
      const type = res.headers.get('content-type') ?? '';
      let body: unknown = undefined;
      if (type.startsWith('application/json')) body = JSON.parse(text) as unknown;
      return { status: res.status, type, body, text };
    },
  };
}

/** The value of `name{labels…}` in a text exposition (labels may be a subset); undefined when absent. */
export function sample(text: string, name: string, labels: Record<string, string> = {}): number | undefined {
  for (const line of text.split('\n')) {
    if (!line.startsWith(name)) continue;
    const m = /^([a-zA-Z_:][\w:]*)(\{.*\})? (\S+)$/.exec(line);
    if (!m || m[1] !== name) continue;
    const set = m[2] ?? '';
    if (Object.entries(labels).every(([k, v]) => set.includes(`${k}="${v}"`))) return Number(m[3]);
  }
  return undefined;
}
