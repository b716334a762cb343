/**
 * Session decisions per second (issues 3 and 9). Two cases, each compared with a bare loop of
 * the same backend HTTP calls made with undici alone, in the same process and run:
 *  (a) a cached HLS request: the identity is already granted, so open() answers from memory;
 *  (b) a new session: open() makes one backend GET to a local keep-alive node:http server,
 *      then close() writes the session's history row to a SQLite file in WAL mode (the
 *      default `history sqlite://data/history.db`, here in a temporary directory).
 * The ratio is ours / peer: (a) shows how far above an HTTP round trip a reuse answer sits,
 * (b) shows what the manager adds on top of the HTTP call it cannot avoid (issue 9: ≥ 0.8).
 *
 * Rates are operations per CPU second of this process, which runs the backend, the client
 * and the manager: on a shared machine, wall-clock rates move with the other tenants' load
 * while CPU per operation moves much less. Peer and ours alternate over ROUNDS rounds and
 * each side's median is reported. Log lines are off (a silent logger) on both sides.
 *
 * Standalone: node --import tsx bench/sessions.bench.ts
 */
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
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
const ROUNDS = 3;

/**
 * Runs `op(i)` for i in [from, from + total) with `CONCURRENCY` in flight; returns operations
 * per CPU second of this process (user + system).
 */
async function rate(total: number, op: (i: number) => Promise<unknown>, from = 0): Promise<number> {
  let next = from;
  const end = from + total;
  const cpu = process.cpuUsage();
  const worker = async (): Promise<void> => {
    while (next < end) await op(next++);
  };
  await Promise.all(Array.from({ length: CONCURRENCY }, worker));
  const used = process.cpuUsage(cpu);
  return total / ((used.user + used.system) / 1e6);
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? (s[m] as number) : ((s[m - 1] as number) + (s[m] as number)) / 2;
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
    // A loaded machine must not turn a slow answer into a refusal that ends the run.
    timeoutSec: 30,
    extra: {},
    loc: { file: 'bench', line: 1, col: 1 },
  };
  const dir = mkdtempSync(join(tmpdir(), 'streamgate-bench-'));
  const historyUrl = `sqlite://${join(dir, 'history.db')}`;
  const config: Config = {
    ...defaultConfig('<bench>', process.cwd()),
    history: historyUrl,
    // Every request comes from one address: a per-address budget would measure the limiter.
    limits: { ...DEFAULT_LIMITS, new_sessions_per_ip_burst: 1_000_000 },
  };
  const history = new SqliteHistory(historyUrl);
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

    const peers: number[] = [];
    const freshes: number[] = [];
    const fresh = async (i: number): Promise<void> => {
      const d = await manager.open(req(`new${i}`));
      if (!d.allow) throw new Error(`new session refused: ${d.reason}`);
      d.session.close('client_closed');
    };
    for (let round = 0; round < ROUNDS; round++) {
      peers.push(await rate(10_000, peerCall, round * 10_000));
      freshes.push(await rate(10_000, fresh, round * 10_000));
    }
    const peer = median(peers);
    const freshRate = median(freshes);

    const cachedDecision = await manager.open(req('cached'));
    if (!cachedDecision.allow) throw new Error('bench backend refused the cached identity');
    const cached = await rate(300_000, async () => {
      const d = await manager.open(req('cached'));
      if (!d.allow) throw new Error('cached identity refused');
    });

    return [
      {
        name: 'sessions: cached HLS request (identity granted)',
        ours: Math.round(cached),
        peer: Math.round(peer),
        ratio: cached / peer,
        note: `per CPU second: open() answered from memory vs one undici GET per request; concurrency ${CONCURRENCY}`,
      },
      {
        name: 'sessions: new session with HTTP backend',
        ours: Math.round(freshRate),
        peer: Math.round(peer),
        ratio: freshRate / peer,
        note:
          `per CPU second, median of ${ROUNDS} alternating rounds: open()+close() with one backend GET ` +
          `and a history row in a WAL file vs the bare GET; concurrency ${CONCURRENCY}; target ≥ 0.8`,
      },
    ];
  } finally {
    manager.closeAll('server_shutdown');
    manager.close();
    history.close();
    rmSync(dir, { recursive: true, force: true });
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
