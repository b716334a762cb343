/**
 * Session decisions per second (issue 3). Two cases, each compared with a bare loop of the
 * same backend HTTP calls made with undici alone, in the same process and run:
 *  (a) a cached HLS request: the identity is already granted, so open() answers from memory;
 *  (b) new sessions: every open() makes one backend GET to a local keep-alive node:http server.
 * The ratio is ours / peer: (a) shows how far above an HTTP round trip a reuse answer sits,
 * (b) shows what the manager adds on top of the HTTP call it cannot avoid.
 *
 * Standalone: node --import tsx bench/sessions.bench.ts
 */
import { once } from 'node:events';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { pathToFileURL } from 'node:url';
import pino from 'pino';
import { Agent } from 'undici';
import type { AuthSpec, Config } from '../src/config/types.js';
import { defaultConfig } from '../src/config/build.js';
import { DEFAULT_LIMITS } from '../src/core/limits.js';
import { SqliteHistory } from '../src/sessions/history.js';
import { Sessions } from '../src/sessions/manager.js';
import type { ClientRequest } from '../src/sessions/types.js';
import type { BenchRow } from './util.js';

const CONCURRENCY = 32;

/** Runs `op(i)` `total` times with `CONCURRENCY` in flight; returns operations per second. */
async function rate(total: number, op: (i: number) => Promise<unknown>): Promise<number> {
  let next = 0;
  const started = process.hrtime.bigint();
  const worker = async (): Promise<void> => {
    while (next < total) await op(next++);
  };
  await Promise.all(Array.from({ length: CONCURRENCY }, worker));
  const secs = Number(process.hrtime.bigint() - started) / 1e9;
  return total / secs;
}

function req(token: string): ClientRequest {
  const qs = `token=${token}`;
  return {
    kind: 'play',
    proto: 'hls',
    name: 'bench/s1',
    ip: '10.0.0.1',
    token,
    qs,
    query: new URLSearchParams(qs),
  };
}

export async function runSessionBench(): Promise<BenchRow[]> {
  const server = createServer((r, res) => {
    r.resume();
    r.on('end', () => res.writeHead(200, { 'x-userid': 'u', 'content-length': '0' }).end());
  });
  server.keepAliveTimeout = 60_000;
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const onPlay: AuthSpec = {
    url: `${base}/auth`,
    sessionKeys: ['name', 'ip', 'proto', 'token'],
    softLimitation: false,
    domainsStrict: false,
    timeoutSec: 3,
    extra: {},
    loc: { file: 'bench', line: 1, col: 1 },
  };
  const config: Config = {
    ...defaultConfig('<bench>', process.cwd()),
    history: 'sqlite://:memory:',
    // Every request comes from one address: a per-address budget would measure the limiter.
    limits: { ...DEFAULT_LIMITS, new_sessions_per_ip_burst: 1_000_000 },
  };
  const history = new SqliteHistory('sqlite://:memory:');
  const manager = new Sessions({
    config,
    policy: () => ({ onPlay }),
    log: pino({ level: 'silent' }),
    history,
  });

  // The peer: the same GET the backend receives for a new session, with undici and nothing else.
  const agent = new Agent({ keepAliveTimeout: 30_000 });
  const peerPath = (i: number): string =>
    `/auth?name=bench%2Fs1&proto=hls&ip=10.0.0.1&request_type=new_session&request_number=0` +
    `&session_id=00000000-0000-4000-8000-${String(i).padStart(12, '0')}&stream_clients=0&total_clients=0` +
    `&token=peer${i}&qs=token%3Dpeer${i}`;
  const peerCall = async (i: number): Promise<void> => {
    const res = await agent.request({ origin: base, path: peerPath(i), method: 'GET' });
    await res.body.dump();
  };

  try {
    // Warm both paths so JIT and connection set-up are outside the measurement.
    await rate(2000, peerCall);
    for (let i = 0; i < 2000; i++) {
      const d = await manager.open(req(`warm${i}`));
      if (d.allow) d.session.close('client_closed');
    }

    const peer = await rate(20_000, peerCall);

    const cachedDecision = await manager.open(req('cached'));
    if (!cachedDecision.allow) throw new Error('bench backend refused the cached identity');
    const cached = await rate(300_000, async () => {
      const d = await manager.open(req('cached'));
      if (!d.allow) throw new Error('cached identity refused');
    });

    const fresh = await rate(20_000, async (i) => {
      const d = await manager.open(req(`new${i}`));
      if (!d.allow) throw new Error('new session refused');
      d.session.close('client_closed');
    });

    return [
      {
        name: 'sessions: cached HLS request (identity granted)',
        ours: Math.round(cached),
        peer: Math.round(peer),
        ratio: cached / peer,
        note: `open() answered from memory vs one undici GET per request; concurrency ${CONCURRENCY}`,
      },
      {
        name: 'sessions: new session with HTTP backend',
        ours: Math.round(fresh),
        peer: Math.round(peer),
        ratio: fresh / peer,
        note: `open()+close() with one backend GET each (and a history row) vs the bare GET; concurrency ${CONCURRENCY}`,
      },
    ];
  } finally {
    manager.closeAll('server_shutdown');
    manager.close();
    history.close();
    await agent.close();
    server.closeAllConnections();
    server.close();
  }
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const results = await runSessionBench();
  for (const r of results) {
    console.log(
      `${r.name}: ${r.ours.toLocaleString('en-US')} decisions/s vs undici ${r.peer.toLocaleString('en-US')} req/s ` +
        `(ratio ${r.ratio.toFixed(2)}) — ${r.note}`,
    );
  }
}
