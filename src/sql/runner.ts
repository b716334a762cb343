/**
 * Runs queries in a child process (query-worker.ts), one at a time in arrival order, each
 * under a deadline. better-sqlite3 cannot interrupt a statement, and a worker thread cannot be
 * stopped while SQLite's C code runs, so a query over its deadline ends with SIGKILL to the
 * process; the next query starts a fresh one. A process that fails to start or dies fails
 * only the query it was running.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { Logger } from 'pino';
import type { QueryRequest, QueryResult } from './executor.js';
import { ER, sqlError } from './wire/machine.js';

interface Job {
  req: QueryRequest;
  timeoutMs: number;
  resolve: (r: QueryResult & { timedOut?: boolean }) => void;
}

/** Under tsx (sources, tests) the child loads tsx first; the build runs plain JS. */
function spawnWorker(historyPath: string | null): ChildProcess {
  const here = import.meta.url;
  const ts = here.endsWith('.ts');
  return fork(fileURLToPath(new URL(ts ? './query-worker.ts' : './query-worker.js', here)), [], {
    // An absolute specifier: the server's working directory need not see node_modules.
    execArgv: ts ? ['--import', import.meta.resolve('tsx')] : [],
    env: { ...process.env, STREAMGATE_SQL_HISTORY: historyPath ?? '' },
    serialization: 'advanced',
    stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
  });
}

export class QueryRunner {
  private worker: ChildProcess | undefined;
  private workerReady = false;
  private readonly queue: Job[] = [];
  private current: { id: number; job: Job; timer: NodeJS.Timeout } | undefined;
  private nextId = 1;
  private closed = false;

  constructor(
    private readonly historyPath: string | null,
    private readonly log: Logger,
  ) {}

  run(req: QueryRequest, timeoutMs: number): Promise<QueryResult & { timedOut?: boolean }> {
    if (this.closed) {
      return Promise.resolve({ ok: false, err: sqlError(ER.INTERNAL, 'server is shutting down') });
    }
    return new Promise((resolve) => {
      this.queue.push({ req, timeoutMs, resolve });
      this.pump();
    });
  }

  /** Queries waiting or running. */
  get pending(): number {
    return this.queue.length + (this.current ? 1 : 0);
  }

  private ensureWorker(): ChildProcess {
    if (this.worker) return this.worker;
    const w = spawnWorker(this.historyPath);
    this.workerReady = false;
    w.on('message', (msg: { ready?: true; id: number; result: QueryResult }) => {
      if (msg.ready) {
        if (this.worker === w) this.workerReady = true;
        this.pump();
        return;
      }
      const cur = this.current;
      if (!cur || cur.id !== msg.id) return;
      this.finish(reviveBuffers(msg.result));
    });
    w.on('error', (err) => {
      this.log.error({ err: err.message }, 'SQL query process failed');
      this.drop(w, sqlError(ER.INTERNAL, `query process failed: ${err.message}`));
    });
    w.on('exit', (code, signal) => {
      if (this.worker === w) this.log.warn({ code, signal }, 'SQL query process exited');
      this.drop(w, sqlError(ER.INTERNAL, 'query process stopped; see the server log'));
    });
    this.worker = w;
    return w;
  }

  /** The worker `w` is gone: fail what it was running and let the next query start a new one. */
  private drop(w: ChildProcess, err: ReturnType<typeof sqlError>): void {
    if (this.worker !== w) return;
    const started = this.workerReady;
    this.worker = undefined;
    this.workerReady = false;
    if (this.current) this.finish({ ok: false, err });
    // A worker that died before it was ready (the history file cannot be opened) fails
    // the waiting queries instead of being restarted in a loop; the next query tries again.
    else if (!started) for (const job of this.queue.splice(0)) job.resolve({ ok: false, err });
  }

  private pump(): void {
    if (this.current || this.closed || this.queue.length === 0) return;
    const worker = this.ensureWorker();
    if (!this.workerReady) return;
    const job = this.queue.shift() as Job;
    const id = this.nextId++;
    const timer = setTimeout(() => {
      if (this.current?.id !== id) return;
      this.worker = undefined;
      this.workerReady = false;
      worker.kill('SIGKILL');
      this.finish({
        ok: false,
        timedOut: true,
        err: sqlError(
          ER.QUERY_TIMEOUT,
          `Query execution was interrupted, maximum statement execution time exceeded (${job.timeoutMs / 1000} s)`,
        ),
      });
    }, job.timeoutMs);
    this.current = { id, job, timer };
    worker.send({ id, req: job.req });
  }

  private finish(result: QueryResult & { timedOut?: boolean }): void {
    const cur = this.current;
    if (!cur) return;
    clearTimeout(cur.timer);
    this.current = undefined;
    cur.job.resolve(result);
    this.pump();
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const job of this.queue.splice(0)) {
      job.resolve({ ok: false, err: sqlError(ER.INTERNAL, 'server is shutting down') });
    }
    if (this.current) this.finish({ ok: false, err: sqlError(ER.INTERNAL, 'server is shutting down') });
    const w = this.worker;
    this.worker = undefined;
    if (w && w.exitCode === null && w.signalCode === null) {
      const gone = new Promise<void>((resolve) => w.once('exit', () => resolve()));
      w.kill('SIGKILL');
      await gone;
    }
  }
}

/** Buffers cross the process boundary as plain Uint8Arrays. */
function reviveBuffers(r: QueryResult): QueryResult {
  if (!r.ok) return r;
  for (const row of r.rows) {
    for (let i = 0; i < row.length; i++) {
      const v: unknown = row[i];
      if (v instanceof Uint8Array && !Buffer.isBuffer(v)) {
        row[i] = Buffer.from(v.buffer, v.byteOffset, v.byteLength);
      }
    }
  }
  return r;
}
