/**
 * The query worker thread: one SqlExecutor, one query at a time. It lives in a thread because
 * better-sqlite3 is synchronous and has no interrupt: the only way to stop a query that runs
 * too long is to terminate the thread running it (runner.ts does, and starts a new one).
 */
import { parentPort, workerData } from 'node:worker_threads';
import { SqlExecutor, type QueryRequest } from './executor.js';

const port = parentPort;
if (!port) throw new Error('query-worker.ts runs as a worker thread');
const executor = new SqlExecutor((workerData as { historyPath: string | null }).historyPath);
// The deadline of a query starts when it is handed over, so startup is not charged to it.
port.postMessage({ ready: true });
port.on('message', (msg: { id: number; req: QueryRequest }) => {
  let result;
  try {
    result = executor.run(msg.req);
  } catch (err) {
    result = { ok: false, err: { code: 1105, state: 'HY000', message: (err as Error).message } };
  }
  port.postMessage({ id: msg.id, result });
});
