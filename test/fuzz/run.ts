/**
 * `npm run fuzz -- --seconds N`: runs every fuzz target for N seconds, one after the other,
 * and prints one line per target with its executions and failures.
 *
 *   --seconds N          time per target (default 10)
 *   --target a,b         only these targets
 *   --list               print the targets and their properties
 *   --seed S --path P    replay one input (with --target), saving it first
 *
 * Each target runs in a worker thread (worker.ts). An execution that makes no progress for
 * HANG_SECONDS is a hang: the worker is stopped, and the input is regenerated from its seed and
 * path in a second worker that saves it before running it. Failing and hanging inputs are saved
 * under test-artifacts/fuzz/<target>/. The exit code is 1 when any target failed.
 */
import { Worker } from 'node:worker_threads';
import { parseArgs } from 'node:util';
import { targets } from './registry.js';
import type { WorkerJob, WorkerMessage } from './worker.js';

/**
 * No new execution for this long means one never returned. The slowest legitimate execution
 * (a 60-packet TS fixture prefix cut into 1-byte pieces) takes well under a second.
 */
const HANG_SECONDS = 30;

/**
 * Workers do not inherit the `--import tsx` loader hooks of this thread, so a worker first
 * registers tsx itself and then imports the TypeScript worker module.
 */
const WORKER_BOOT = `import(${JSON.stringify(import.meta.resolve('tsx/esm/api'))}).then(({ register }) => {
  register();
  return import(${JSON.stringify(new URL('./worker.ts', import.meta.url).href)});
});`;

const { values } = parseArgs({
  options: {
    seconds: { type: 'string', default: '10' },
    target: { type: 'string' },
    list: { type: 'boolean', default: false },
    seed: { type: 'string' },
    path: { type: 'string' },
  },
});

interface Outcome {
  runs: number;
  failures: number;
  hang?: string;
  notes: string[];
}

function startWorker(
  job: Omit<WorkerJob, 'progress'>,
  onMessage: (m: WorkerMessage) => void,
): { worker: Worker; progress: Int32Array } {
  const progress = new Int32Array(new SharedArrayBuffer(8));
  const worker = new Worker(WORKER_BOOT, { eval: true, workerData: { ...job, progress } });
  worker.on('message', onMessage);
  return { worker, progress };
}

/** Runs one target for `seconds`, watching for hangs. */
function fuzzTarget(name: string, seconds: number): Promise<Outcome> {
  return new Promise((resolve) => {
    const outcome: Outcome = { runs: 0, failures: 0, notes: [] };
    let batchSeed: number | undefined;
    const { worker, progress } = startWorker({ target: name, seconds }, (m) => {
      if (m.kind === 'batch') batchSeed = m.seed;
      else if (m.kind === 'done') outcome.runs = m.runs;
      else if (m.kind === 'failure') {
        outcome.failures++;
        outcome.notes.push(
          `failure (replay: npm run fuzz -- --target ${name} --seed ${m.seed} --path ${m.path})\n    ${m.error.replace(/\n/g, '\n    ')}\n    input: ${m.counterexample}\n    saved: ${m.saved.join(' ')}`,
        );
      }
    });
    let lastTotal = -1;
    let lastChange = Date.now();
    const watchdog = setInterval(() => {
      const total = Atomics.load(progress, 1);
      if (total !== lastTotal) {
        lastTotal = total;
        lastChange = Date.now();
        return;
      }
      if (Date.now() - lastChange < HANG_SECONDS * 1000) return;
      clearInterval(watchdog);
      const index = Atomics.load(progress, 0) - 1;
      outcome.runs = total;
      outcome.failures++;
      outcome.hang = batchSeed === undefined ? 'before the first batch' : `seed ${batchSeed} path ${index}`;
      void worker.terminate().then(async () => {
        const inShrink = index >= 500;
        outcome.notes.push(
          `hang: no execution finished for ${HANG_SECONDS} s (seed ${batchSeed} path ${index}${inShrink ? ', while shrinking: the path is approximate' : ''})`,
        );
        if (batchSeed !== undefined && !inShrink) {
          const saved = await saveHangInput(name, batchSeed, String(index));
          outcome.notes.push(
            `    replay: npm run fuzz -- --target ${name} --seed ${batchSeed} --path ${index}; saved: ${saved.join(' ')}`,
          );
        }
        resolve(outcome);
      });
    }, 1000);
    worker.on('exit', () => {
      clearInterval(watchdog);
      if (outcome.hang === undefined) resolve(outcome);
    });
    worker.on('error', (err) => {
      outcome.failures++;
      outcome.notes.push(`worker crashed: ${err.stack ?? err.message}`);
    });
  });
}

/** Regenerates a hanging input in a fresh worker, which saves it before running it; then stops that worker. */
function saveHangInput(name: string, seed: number, path: string): Promise<string[]> {
  return new Promise((resolve) => {
    const { worker } = startWorker({ target: name, seconds: 0, replay: { seed, path } }, (m) => {
      if (m.kind === 'saved') {
        void worker.terminate();
        resolve(m.paths);
      }
    });
    worker.on('exit', () => resolve([]));
  });
}

function replay(name: string, seed: number, path: string): Promise<number> {
  return new Promise((resolve) => {
    let failed = false;
    const { worker } = startWorker({ target: name, seconds: 0, replay: { seed, path } }, (m) => {
      if (m.kind === 'saved') console.log(`input saved: ${m.paths.join(' ')}`);
      if (m.kind === 'failure') {
        failed = true;
        console.log(`${name}: fails\n  ${m.error}\n  input: ${m.counterexample}`);
      }
      if (m.kind === 'done' && !failed) console.log(`${name}: passes`);
    });
    worker.on('exit', () => resolve(failed ? 1 : 0));
  });
}

async function main(): Promise<number> {
  const wanted = values.target?.split(',').filter((t) => t !== '');
  const unknown = wanted?.filter((w) => !targets.some((t) => t.name === w)) ?? [];
  if (unknown.length > 0) {
    console.error(`unknown target ${unknown.join(', ')}; --list shows them`);
    return 2;
  }
  const selected = targets.filter((t) => wanted === undefined || wanted.includes(t.name));
  const width = Math.max(...selected.map((t) => t.name.length));
  if (values.list) {
    for (const t of selected) console.log(`${t.name.padEnd(width)}  ${t.property}`);
    return 0;
  }
  if (values.seed !== undefined) {
    const [only] = selected;
    if (selected.length !== 1 || !only || values.path === undefined) {
      console.error('--seed needs --path and exactly one --target');
      return 2;
    }
    return replay(only.name, Number(values.seed), values.path);
  }
  const seconds = Number(values.seconds);
  if (!(seconds > 0)) {
    console.error(`--seconds must be a positive number, not ${values.seconds}`);
    return 2;
  }
  let failed = 0;
  for (const t of selected) {
    const o = await fuzzTarget(t.name, seconds);
    const status = o.hang !== undefined ? `  HANG (${o.hang})` : '';
    console.log(
      `${t.name.padEnd(width)}  ${String(o.runs).padStart(8)} executions  ${o.failures} failures${status}`,
    );
    for (const note of o.notes) console.log(`  ${note}`);
    if (o.failures > 0) failed++;
  }
  return failed > 0 ? 1 : 0;
}

process.exitCode = await main();
