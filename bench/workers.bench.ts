/**
 * `workers N` (issue 9, "use every core when asked"): the same RTMP fan-out served by one
 * process and by `workers 2`, in the same run. One ffmpeg publisher (lands on one worker),
 * raw-socket viewers that only count bytes (the cluster deals them round-robin, so with two
 * workers about half are served through the relay from the publisher's worker).
 *
 * Reported: server CPU per viewer-second for each (the primary, every worker and their
 * children counted), their ratio, and the viewers a machine with at least two cores serves at
 * the same CPU budget per core: one process can use one core, two workers two, so the
 * capacity ratio is 2 × (CPU per viewer with 1) / (CPU per viewer with 2). That is a projection
 * from CPU per viewer at this load, not a measurement at saturation (which on a shared two-core
 * machine would measure the neighbours). Viewers that got less than half the mean are counted
 * as starved: the CPU figures mean something only when both deliver the whole stream.
 *
 * Standalone: `node --import tsx bench/workers.bench.ts` (needs ffmpeg). BENCH_VIEWERS (100), BENCH_SECONDS (10).
 */
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { startStreamgate, type RunningStreamgate } from '../test/helpers/streamgate.js';
import { sleep, stopProcess } from '../test/helpers/clients.js';
import { cpuSeconds, have, openViewer, type BenchRow } from './util.js';

const VIEWERS = Number(process.env['BENCH_VIEWERS'] ?? 100);
const SECONDS = Number(process.env['BENCH_SECONDS'] ?? 10);

interface Run {
  cpuPerViewerMs: number;
  bytesPerViewer: number;
  starved: number;
  /** CPU seconds per second of each worker (with workers), to show the split. */
  perWorker: number[];
}

async function measure(workers: number, media: string): Promise<Run> {
  const sg: RunningStreamgate = await startStreamgate(
    `${workers > 1 ? `workers ${workers};\n` : ''}template live { prefix live; input publish://; }`,
    { listeners: 'rtmp 127.0.0.1:0;\n', env: { LOG_LEVEL: 'info' } },
  );
  const port = sg.ports['rtmp'] ?? 0;
  const publisher = spawn(
    'ffmpeg',
    ['-hide_banner', '-loglevel', 'error', '-re', '-stream_loop', '-1', '-i', media, '-c', 'copy', '-f', 'flv',
      `rtmp://127.0.0.1:${port}/live/bench`], // prettier-ignore
    { stdio: 'ignore' },
  );
  try {
    await sleep(2000);
    const viewers = Array.from({ length: VIEWERS }, () => openViewer(port, 'live', 'bench'));
    await sleep(2000);
    const workerPids = sg.logs
      .filter((l) => l.includes('"worker ready"') || l.includes('"worker restarted"'))
      .map((l) => (JSON.parse(l) as { pid: number }).pid);
    const pid = sg.proc.pid ?? 0;
    const cpu0 = cpuSeconds(pid);
    const perWorker0 = workerPids.map(cpuSeconds);
    const bytes0 = viewers.map((v) => v.bytes);
    const t0 = performance.now();
    await sleep(SECONDS * 1000);
    const elapsed = (performance.now() - t0) / 1000;
    const cpu = cpuSeconds(pid) - cpu0;
    const perWorker = workerPids.map((p, i) => (cpuSeconds(p) - (perWorker0[i] ?? 0)) / elapsed);
    const got = viewers.map((v, i) => v.bytes - (bytes0[i] ?? 0));
    for (const v of viewers) v.socket.destroy();
    const mean = got.reduce((a, b) => a + b, 0) / got.length;
    return {
      cpuPerViewerMs: ((cpu / elapsed) * 1000) / VIEWERS,
      bytesPerViewer: mean,
      starved: got.filter((b) => b < mean / 2).length,
      perWorker,
    };
  } finally {
    await stopProcess(publisher);
    await sg.stop();
  }
}

export async function runWorkersBench(): Promise<BenchRow[]> {
  if (!have('ffmpeg')) {
    return [{ name: 'workers 2 vs 1', ours: 0, peer: 0, ratio: 0, note: 'skipped: ffmpeg missing' }];
  }
  const dir = mkdtempSync(join(tmpdir(), 'workers-bench-'));
  const media = join(dir, 'media.flv');
  // The RTMP fan-out bench's stream: 720p30 at ~2.5 Mbit/s with a 2 s GOP.
  spawnSync('ffmpeg', ['-hide_banner', '-loglevel', 'error', '-f', 'lavfi', '-i', 'testsrc2=size=1280x720:rate=30', '-f', 'lavfi', '-i', 'sine=frequency=1000:sample_rate=48000',
    '-t', '10', '-c:v', 'libx264', '-preset', 'veryfast', '-g', '60', '-b:v', '2500k', '-pix_fmt', 'yuv420p', '-c:a', 'aac', '-b:a', '128k', media]); // prettier-ignore
  try {
    const one = await measure(1, media);
    const two = await measure(2, media);
    const split = two.perWorker.map((c) => `${(c * 1000).toFixed(0)}`).join('+');
    const note =
      `${VIEWERS} viewers, ${SECONDS} s, 720p30 2.5 Mbit/s; MB/viewer 1w=${(one.bytesPerViewer / 1e6).toFixed(2)} ` +
      `2w=${(two.bytesPerViewer / 1e6).toFixed(2)}; starved 1w=${one.starved} 2w=${two.starved}; ` +
      `2w CPU ms/s per worker ${split}`;
    const cpuRatio = one.cpuPerViewerMs / Math.max(two.cpuPerViewerMs, 1e-6);
    return [
      {
        name: `workers: CPU µs per viewer-second (${VIEWERS} viewers)`,
        ours: Math.round(two.cpuPerViewerMs * 1000),
        peer: Math.round(one.cpuPerViewerMs * 1000),
        ratio: Number(cpuRatio.toFixed(3)),
        note: `ours = workers 2, peer = workers 1; ratio = 1w / 2w (above 1: 2 workers are cheaper per viewer). ${note}`,
      },
      {
        name: 'workers: viewers per machine, same CPU/core',
        ours: Math.round((2 * 1000) / Math.max(two.cpuPerViewerMs, 1e-6)),
        peer: Math.round(1000 / Math.max(one.cpuPerViewerMs, 1e-6)),
        ratio: Number((2 * cpuRatio).toFixed(3)),
        note: 'projected: viewers one core (1 worker) or two cores (2 workers) serve at this CPU per viewer',
      },
    ];
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  runWorkersBench().then(
    (rows) => {
      console.table(rows);
      process.exit(0);
    },
    (err: unknown) => {
      console.error(err);
      process.exit(1);
    },
  );
}
