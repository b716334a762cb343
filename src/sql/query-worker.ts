/**
 * The query process: one SqlExecutor, one query at a time, spoken to over IPC by runner.ts.
 * A process rather than a worker thread because better-sqlite3 cannot interrupt a statement
 * and a thread cannot be stopped while SQLite's C code runs (terminating a worker takes effect
 * only when JavaScript runs again, which an endless recursive query never does): the runner
 * stops an overdue query with SIGKILL and starts a new process.
 */
import { SqlExecutor, type QueryRequest, type QueryResult } from './executor.js';

const send = process.send?.bind(process);
if (!send) throw new Error('query-worker runs as a child process with an IPC channel');
const historyPath = process.env['STREAMGATE_SQL_HISTORY'] ?? '';
const executor = new SqlExecutor(historyPath === '' ? null : historyPath);
// The deadline of a query starts when it is handed over, so startup is not charged to it.
send({ ready: true });
process.on('message', (msg: { id: number; req: QueryRequest }) => {
  let result: QueryResult;
  try {
    result = executor.run(msg.req);
  } catch (err) {
    result = { ok: false, err: { code: 1105, state: 'HY000', message: (err as Error).message } };
  }
  send({ id: msg.id, result });
});
// The server went away (or closed the channel): so does this process.
process.on('disconnect', () => process.exit(0));
