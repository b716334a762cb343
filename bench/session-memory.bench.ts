/**
 * Memory per open session (issue 9): 100 000 HLS sessions opened in-process against the
 * session manager, each from its own address with its own token, the way the HLS front hands
 * them over (a ClientRequest per request with the parsed URL's query and fresh header strings,
 * as Node's HTTP parser makes them). The stream allows without a backend (`on_play` absent),
 * so what is measured is the manager: the session object, its indexes, its idle check.
 *
 * Bytes per session = (heapUsed after opening − heapUsed before) / N, each after a forced full
 * GC, in a child process started with `--expose-gc`. No peer publishes a comparable figure for
 * an in-process session table, so the row compares with the target: 1 KiB per session, as the
 * ratio target / ours (≥ 1 meets it).
 *
 * Standalone: node --import tsx bench/session-memory.bench.ts [N]
 */
import { spawnSync } from 'node:child_process';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { pino } from 'pino';
import { defaultConfig } from '../src/config/build.js';
import { DEFAULT_LIMITS } from '../src/core/limits.js';
import { SqliteHistory } from '../src/sessions/history.js';
import { Sessions } from '../src/sessions/manager.js';
import type { ClientRequest } from '../src/sessions/types.js';
import type { BenchRow } from './util.js';

const SESSIONS = 100_000;
const TARGET_BYTES = 1024;
const USER_AGENT =
  'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36';

/** A new string with the same characters, as a parser would allocate it per request. */
const fresh = (s: string): string => Buffer.from(s, 'latin1').toString('latin1');

function request(i: number): ClientRequest {
  const token = `tok${i.toString(36).padStart(8, '0')}QmVuY2hUb2tlbg`;
  const url = new URL(`http://127.0.0.1:8080/hls/bench/s1/index.m3u8?token=${token}`);
  return {
    kind: 'play',
    proto: 'hls',
    name: 'bench/s1',
    ip: `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`,
    qs: url.search.slice(1),
    query: url.searchParams,
    token: url.searchParams.get('token') ?? '',
    userAgent: fresh(USER_AGENT),
    host: fresh('127.0.0.1:8080'),
  };
}

interface ChildResult {
  n: number;
  bytesPerSession: number;
  heapBeforeMb: number;
  heapAfterMb: number;
  openMs: number;
}

async function measure(n: number): Promise<ChildResult> {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (gc === undefined) throw new Error('run with --expose-gc');
  const history = new SqliteHistory('sqlite://:memory:');
  const manager = new Sessions({
    config: { ...defaultConfig('<bench>', process.cwd()), limits: { ...DEFAULT_LIMITS } },
    policy: () => ({}),
    log: pino({ level: 'silent' }),
    history,
  });
  // Warm the code paths (and the manager's lazily built structures) outside the measurement.
  for (let i = 0; i < 1000; i++) {
    const d = await manager.open(request(n + i));
    if (d.allow) d.session.close('client_closed');
  }
  history.flush();
  gc();
  gc();
  const before = process.memoryUsage().heapUsed;
  const started = performance.now();
  for (let i = 0; i < n; i++) {
    const d = await manager.open(request(i));
    if (!d.allow) throw new Error(`session ${i} refused: ${d.reason}`);
  }
  const openMs = performance.now() - started;
  gc();
  gc();
  const after = process.memoryUsage().heapUsed;
  const open = manager.list().length;
  if (open !== n) throw new Error(`${open} sessions open, expected ${n}`);
  manager.closeAll('server_shutdown');
  manager.close();
  history.close();
  return {
    n,
    bytesPerSession: (after - before) / n,
    heapBeforeMb: before / 2 ** 20,
    heapAfterMb: after / 2 ** 20,
    openMs,
  };
}

export function runSessionMemoryBench(n = SESSIONS): Promise<BenchRow[]> {
  const child = spawnSync(
    process.execPath,
    ['--expose-gc', '--import', 'tsx', fileURLToPath(import.meta.url), '--child', String(n)],
    { encoding: 'utf8', timeout: 300_000, maxBuffer: 1 << 20 },
  );
  if (child.status !== 0) throw new Error(`memory bench child failed: ${child.stderr || child.signal}`);
  const r = JSON.parse(child.stdout.trim().split('\n').pop() ?? '{}') as ChildResult;
  return Promise.resolve([
    {
      name: `sessions: heap per open HLS session (${(r.n / 1000).toFixed(0)}k)`,
      ours: r.bytesPerSession,
      peer: TARGET_BYTES,
      ratio: TARGET_BYTES / r.bytesPerSession,
      note:
        `bytes per session (ours) vs the ${TARGET_BYTES} B target; ratio = target/ours; ` +
        `heap ${r.heapBeforeMb.toFixed(0)} → ${r.heapAfterMb.toFixed(0)} MB, opened in ${(r.openMs / 1000).toFixed(1)} s`,
    },
  ]);
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const i = process.argv.indexOf('--child');
  if (i >= 0) {
    process.stdout.write(JSON.stringify(await measure(Number(process.argv[i + 1] ?? SESSIONS))) + '\n');
  } else {
    const n = Number(process.argv[2] ?? SESSIONS);
    for (const r of await runSessionMemoryBench(n)) {
      console.log(
        `${r.name}: ${r.ours.toFixed(0)} B per session (target ${r.peer} B, ratio ${r.ratio.toFixed(2)}) — ${r.note}`,
      );
    }
  }
}
