/**
 * `npm run bench`: every benchmark, each measured against a peer in the same run, printed
 * as ratios (ours / peer). Absolute numbers depend on the machine; the ratios are the result.
 */
import { runSessionBench } from './sessions.bench.js';
import { runSessionMemoryBench } from './session-memory.bench.js';
import { runRssBench } from './rss.bench.js';
import { runSegmentListingBench } from './segment-listing.bench.js';
import { runHlsBench } from './hls.bench.js';
import { runRtmpBench } from './rtmp.bench.js';
import { runWorkersBench } from './workers.bench.js';
import type { BenchRow } from './util.js';

const rows: BenchRow[] = [];
for (const [label, run] of [
  ['sessions', runSessionBench],
  ['session memory', () => runSessionMemoryBench()],
  ['rss', runRssBench],
  ['segment listing', runSegmentListingBench],
  ['hls', runHlsBench],
  ['rtmp', runRtmpBench],
  ['workers', runWorkersBench],
] as const) {
  try {
    rows.push(...(await run()));
  } catch (err) {
    process.stderr.write(`${label} benchmark failed: ${(err as Error).message}\n`);
    process.exitCode = 1;
  }
}
// Rates print whole; small figures (ms per viewer-second, delays) keep three significant digits.
const num = (v: number): string => (Math.abs(v) >= 100 || v === 0 ? v.toFixed(0) : v.toPrecision(3));
process.stdout.write('\nbenchmark                                   ours        peer     ratio  peer\n');
for (const r of rows) {
  process.stdout.write(
    `${r.name.padEnd(42)} ${num(r.ours).padStart(9)} ${num(r.peer).padStart(11)} ${r.ratio.toFixed(2).padStart(7)}  ${r.note}\n`,
  );
}
