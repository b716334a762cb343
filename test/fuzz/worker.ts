/**
 * One target's fuzzing, in a worker thread so that run.ts can stop an execution that never
 * returns (a synchronous loop cannot be interrupted from its own thread).
 *
 * Fuzz mode: fast-check runs in batches with fresh random seeds until the time is up. Before
 * each execution the worker bumps a shared counter, which is how run.ts sees progress, and it
 * announces each batch's seed, so a hang is reported as a seed and a path that replay mode
 * reproduces. Replay mode saves the input before running it, so even a hanging input is kept.
 */
import { randomInt } from 'node:crypto';
import { parentPort, workerData } from 'node:worker_threads';
import fc from 'fast-check';
import { findTarget, propertyOf } from './registry.js';
import { saveInput } from './save.js';

export interface WorkerJob {
  target: string;
  /** Fuzz for this long; ignored in replay mode. */
  seconds: number;
  /** [0]: executions started in the current batch (its path is the count − 1); [1]: all executions. */
  progress: Int32Array;
  replay?: { seed: number; path: string };
}

export type WorkerMessage =
  | { kind: 'batch'; seed: number }
  | { kind: 'failure'; seed: number; path: string; error: string; counterexample: string; saved: string[] }
  | { kind: 'saved'; paths: string[] }
  | { kind: 'done'; runs: number };

/** Executions per seed: enough for fast-check's size ramp-up, short enough to re-seed often. */
const BATCH_RUNS = 500;
/** Distinct failures reported per target; later ones are usually the same bug again. */
const MAX_FAILURES = 3;

const job = workerData as WorkerJob;
const port = parentPort;
const target = findTarget(job.target);
if (!port || !target) throw new Error(`no fuzz target ${job.target}`);
const post = (m: WorkerMessage): void => port.postMessage(m);

if (job.replay) {
  const { seed, path } = job.replay;
  let saved = false;
  const property = propertyOf(target, (input) => {
    if (saved) return;
    saved = true;
    post({
      kind: 'saved',
      paths: saveInput(target.name, `replay-${seed}-${path.replace(/:/g, '_')}`, input),
    });
  });
  const r = fc.check(property, { seed, path, numRuns: 1, endOnFailure: true });
  if (r.failed) report(r, seed);
  post({ kind: 'done', runs: r.numRuns });
} else {
  const deadline = Date.now() + job.seconds * 1000;
  let runs = 0;
  let failures = 0;
  const property = propertyOf(target, () => {
    Atomics.add(job.progress, 0, 1);
    Atomics.add(job.progress, 1, 1);
  });
  while (Date.now() < deadline && failures < MAX_FAILURES) {
    const seed = randomInt(0x7fffffff);
    Atomics.store(job.progress, 0, 0);
    post({ kind: 'batch', seed });
    const r = fc.check<[unknown]>(property, {
      seed,
      numRuns: BATCH_RUNS,
      plugins: [fc.interruptAfterTimeLimit(Math.max(1, deadline - Date.now()))],
    });
    runs += r.numRuns;
    if (r.failed) {
      failures++;
      report(r, seed);
    }
  }
  post({ kind: 'done', runs });
}

function report(r: fc.RunDetails<[unknown]>, seed: number): void {
  const input = r.counterexample?.[0];
  const path = r.counterexamplePath ?? '';
  const error = r.errorInstance instanceof Error ? errorText(r.errorInstance) : String(r.errorInstance);
  const shown = fc.stringify(input);
  post({
    kind: 'failure',
    seed,
    path,
    error,
    counterexample: shown.length > 2000 ? `${shown.slice(0, 2000)}…` : shown,
    saved: saveInput(job.target, `failure-${seed}`, input),
  });
}

function errorText(e: Error): string {
  const cause = e.cause instanceof Error ? `\n  cause: ${e.cause.stack ?? e.cause.message}` : '';
  return `${e.message}${cause}`;
}
