/**
 * RTMP fan-out (issue 9): one publisher, N RTMP viewers, on streamgate, nginx-rtmp (Debian's
 * libnginx-mod-rtmp, 1 worker) and node-media-server (npm, the Node server users would pick) in
 * the same run. Every server gets the same FLV file published in real time by bench/rtmp-probe.ts
 * (a child process that also measures publish-to-viewer delay); the N viewers are raw sockets in
 * this process that only count bytes, so the client side costs the same for every server.
 *
 * Per server and viewer count: server CPU ms per delivered viewer-second (user and sys apart), RSS, viewers
 * that kept up (received ≥ 90% of the published bytes), and the delay from the publisher's write
 * of a video frame to its arrival at a viewer that joined before the N (early) and after them
 * (late: last in the fan-out order), p50/p99. Servers alternate within a round; each figure is
 * the median over BENCH_RUNS rounds. Ratios are ours / peer: below 1 means streamgate costs less.
 *
 * Standalone: `node --import tsx bench/rtmp.bench.ts`. Env: BENCH_VIEWERS (comma list, default
 * 50,200,500), BENCH_SECONDS (window per measurement, default 10), BENCH_RUNS (default 2),
 * BENCH_SERVERS (subset of streamgate,nginx,nms), BENCH_NMS_DIR (where node-media-server is
 * installed from bench/peers/nms on first use; default $TMPDIR/streamgate-bench-nms),
 * BENCH_STRACE_DIR (strace -c each server over the window into DIR/<server>-<viewers>.txt),
 * BENCH_CPU_PROF_DIR (a CPU profile of streamgate's whole run, DIR/<pid>.cpuprofile).
 * Needs ffmpeg (to make the media) and nginx with the rtmp module; nms needs npm once.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { startStreamgate, type RunningStreamgate } from '../test/helpers/streamgate.js';
import { sleep } from '../test/helpers/clients.js';
import { cpuTimes, family, freePort, have, median, openViewer, rssBytes, type BenchRow } from './util.js';

const VIEWER_COUNTS = (process.env['BENCH_VIEWERS'] ?? '50,200,500').split(',').map(Number);
const SECONDS = Number(process.env['BENCH_SECONDS'] ?? 10);
const RUNS = Number(process.env['BENCH_RUNS'] ?? 2);
const SERVERS = (process.env['BENCH_SERVERS'] ?? 'streamgate,nginx,nms').split(',');
const NGINX_RTMP_MODULE = '/usr/lib/nginx/modules/ngx_rtmp_module.so';
const HERE = fileURLToPath(new URL('.', import.meta.url));
const NMS_DIR = process.env['BENCH_NMS_DIR'] ?? join(tmpdir(), 'streamgate-bench-nms');
/** A viewer kept up if it received at least this share of the published bytes. */
const KEPT_UP = 0.9;
const STRACE_DIR = process.env['BENCH_STRACE_DIR'];
const PROF_DIR = process.env['BENCH_CPU_PROF_DIR'];

interface Server {
  label: string;
  pid: number;
  port: number;
  app: string;
  stop(): Promise<void>;
}

interface Delay {
  p50: number;
  p99: number;
  n: number;
}

interface Measurement {
  /** CPU ms per viewer-second. */
  user: number;
  sys: number;
  total: number;
  rssMb: number;
  keptUp: number;
  bytesPerViewer: number;
  early: Delay;
  late: Delay;
}

/** One line from the probe's stdout. */
function nextLine(probe: ChildProcess): Promise<string> {
  return new Promise((resolve, reject) => {
    const lines = createInterface({ input: probe.stdout! });
    lines.once('line', (l) => {
      lines.close();
      resolve(l);
    });
    probe.once('exit', (code) => reject(new Error(`rtmp probe exited with ${code}`)));
  });
}

async function measure(server: Server, name: string, viewers: number, media: string): Promise<Measurement> {
  const probe = spawn(
    process.execPath,
    ['--import', 'tsx', join(HERE, 'rtmp-probe.ts'), String(server.port), server.app, name, media],
    { stdio: ['pipe', 'pipe', 'inherit'] },
  );
  try {
    const started = await Promise.race([nextLine(probe), sleep(15_000).then(() => 'timeout')]);
    if (started !== 'publishing') {
      throw new Error(`${server.label}: the probe could not publish (${started})`);
    }
    await sleep(1500);
    const open = Array.from({ length: viewers }, () => openViewer(server.port, server.app, name));
    await sleep(1000);
    probe.stdin!.write('late\n');
    await sleep(1500);
    probe.stdin!.write('mark\n');
    // BENCH_STRACE_DIR: count the server's syscalls over the window (strace slows the server,
    // so the CPU figures of such a run are not comparable; the counts are).
    const strace = STRACE_DIR
      ? spawn('strace', ['-c', '-f', '-o', join(STRACE_DIR, `${server.label}-${viewers}.txt`), ...family(server.pid).flatMap((p) => ['-p', String(p)])], { stdio: 'ignore' }) // prettier-ignore
      : undefined;
    const cpu0 = cpuTimes(server.pid);
    const bytes0 = open.map((v) => v.bytes);
    const t0 = performance.now();
    await sleep(SECONDS * 1000);
    const elapsed = (performance.now() - t0) / 1000;
    if (strace) {
      strace.kill('SIGINT');
      await once(strace, 'exit');
    }
    const cpu1 = cpuTimes(server.pid);
    const rss = rssBytes(server.pid);
    const got = open.map((v, i) => v.bytes - (bytes0[i] ?? 0));
    const reporting = nextLine(probe);
    probe.stdin!.write('report\n');
    const report = JSON.parse(await reporting) as {
      publishedBytesPerSecond: number;
      early: Delay;
      late: Delay;
    };
    for (const v of open) v.socket.destroy();
    const expected = report.publishedBytesPerSecond * elapsed;
    // Viewer-seconds actually delivered: a viewer that fell behind (the server, or this
    // client on a loaded machine, could not keep up) counts for the share it received, so a
    // server is not made cheaper by sending less. With every viewer kept up, this is elapsed × N.
    const delivered = Math.min(
      got.reduce((a, b) => a + b, 0) / report.publishedBytesPerSecond,
      elapsed * viewers,
    );
    const perViewerSecond = (s: number): number => (s * 1000) / delivered;
    const user = perViewerSecond(cpu1.user - cpu0.user);
    const sys = perViewerSecond(cpu1.sys - cpu0.sys);
    return {
      user,
      sys,
      total: user + sys,
      rssMb: rss / 1e6,
      keptUp: got.filter((b) => b >= KEPT_UP * expected).length,
      bytesPerViewer: got.reduce((a, b) => a + b, 0) / viewers,
      early: report.early,
      late: report.late,
    };
  } finally {
    if (probe.exitCode === null) {
      probe.kill('SIGTERM');
      await once(probe, 'exit');
    }
  }
}

async function stopChild(proc: ChildProcess): Promise<void> {
  if (proc.exitCode !== null || proc.signalCode !== null) return;
  proc.kill('SIGTERM');
  await once(proc, 'exit');
}

async function startNginx(dir: string): Promise<Server> {
  const port = await freePort();
  writeFileSync(
    join(dir, 'nginx.conf'),
    `load_module ${NGINX_RTMP_MODULE};
daemon off; worker_processes 1; pid ${dir}/nginx.pid; error_log ${dir}/error.log warn;
events { worker_connections 2048; }
rtmp { server { listen 127.0.0.1:${port}; chunk_size 4096; application live { live on; } } }
`,
  );
  const proc = spawn('nginx', ['-e', join(dir, 'error.log'), '-p', dir, '-c', join(dir, 'nginx.conf')], {
    stdio: 'ignore',
  });
  await sleep(500);
  return { label: 'nginx-rtmp', pid: proc.pid ?? 0, port, app: 'live', stop: () => stopChild(proc) };
}

/** node-media-server, installed once from bench/peers/nms (package-lock pinned) into NMS_DIR. */
async function startNms(): Promise<Server | string> {
  if (!existsSync(join(NMS_DIR, 'node_modules', 'node-media-server'))) {
    mkdirSync(NMS_DIR, { recursive: true });
    for (const f of ['package.json', 'package-lock.json', 'run-nms.mjs']) {
      copyFileSync(join(HERE, 'peers', 'nms', f), join(NMS_DIR, f));
    }
    const npm = spawnSync('npm', ['ci', '--no-audit', '--no-fund'], { cwd: NMS_DIR, stdio: 'ignore' });
    if (npm.status !== 0) return `npm ci of node-media-server failed in ${NMS_DIR}`;
  }
  copyFileSync(join(HERE, 'peers', 'nms', 'run-nms.mjs'), join(NMS_DIR, 'run-nms.mjs'));
  const port = await freePort();
  const httpPort = await freePort();
  const proc = spawn(process.execPath, [join(NMS_DIR, 'run-nms.mjs'), String(port), String(httpPort)], {
    cwd: NMS_DIR,
    stdio: 'ignore',
  });
  await sleep(1000);
  if (proc.exitCode !== null) return 'node-media-server did not start';
  return { label: 'node-media-server', pid: proc.pid ?? 0, port, app: 'live', stop: () => stopChild(proc) };
}

function makeMedia(path: string): void {
  // 720p30 at ~2.5 Mbit/s with a 2 s GOP: a typical OBS stream.
  spawnSync('ffmpeg', ['-hide_banner', '-loglevel', 'error', '-f', 'lavfi', '-i', 'testsrc2=size=1280x720:rate=30', '-f', 'lavfi', '-i', 'sine=frequency=1000:sample_rate=48000',
    '-t', '10', '-c:v', 'libx264', '-preset', 'veryfast', '-g', '60', '-b:v', '2500k', '-pix_fmt', 'yuv420p', '-c:a', 'aac', '-b:a', '128k', path]); // prettier-ignore
}

type Figure = (m: Measurement) => number;
const FIGURES: [string, Figure, number][] = [
  ['cpu ms/viewer-s', (m) => m.total, 3],
  ['cpu user ms/viewer-s', (m) => m.user, 3],
  ['cpu sys ms/viewer-s', (m) => m.sys, 3],
  ['rss MB', (m) => m.rssMb, 1],
  ['viewers kept up', (m) => m.keptUp, 0],
  ['late viewer delay p50 ms', (m) => m.late.p50, 2],
  ['late viewer delay p99 ms', (m) => m.late.p99, 2],
  ['early viewer delay p99 ms', (m) => m.early.p99, 2],
];

export async function runRtmpBench(): Promise<BenchRow[]> {
  if (!have('ffmpeg') || !have('nginx') || !existsSync(NGINX_RTMP_MODULE)) {
    return [
      { name: 'rtmp fan-out', ours: 0, peer: 0, ratio: 0, note: 'skipped: ffmpeg or nginx-rtmp missing' },
    ];
  }
  const dir = mkdtempSync(join(tmpdir(), 'rtmp-bench-'));
  const file = join(dir, 'media.flv');
  makeMedia(file);
  const servers: Server[] = [];
  const notes: string[] = [];
  let sg: RunningStreamgate | undefined;
  try {
    if (SERVERS.includes('streamgate')) {
      sg = await startStreamgate('template live { prefix live; input publish://; }', {
        listeners: 'rtmp 127.0.0.1:0;\n',
        env: {
          LOG_LEVEL: 'info',
          ...(PROF_DIR
            ? { NODE_OPTIONS: `--import ${join(HERE, 'cpu-prof-hook.mjs')}`, CPU_PROF_DIR: PROF_DIR }
            : {}),
        },
      });
      const running = sg;
      servers.push({
        label: 'streamgate',
        pid: running.proc.pid ?? 0,
        port: running.ports['rtmp'] ?? 0,
        app: 'live',
        stop: async () => void (await running.stop()),
      });
    }
    if (SERVERS.includes('nginx')) servers.push(await startNginx(dir));
    if (SERVERS.includes('nms')) {
      const nms = await startNms();
      if (typeof nms === 'string') notes.push(`node-media-server skipped: ${nms}`);
      else servers.push(nms);
    }
    const rows: BenchRow[] = [];
    for (const viewers of VIEWER_COUNTS) {
      const results = new Map<string, Measurement[]>(servers.map((s) => [s.label, []]));
      for (let run = 0; run < RUNS; run++) {
        // Rotate the order each round so no server always runs first or last.
        for (let i = 0; i < servers.length; i++) {
          const server = servers[(i + run) % servers.length]!;
          const m = await measure(server, `bench${viewers}r${run}`, viewers, file);
          results.get(server.label)!.push(m);
          process.stderr.write(
            `rtmp ${viewers} viewers run ${run + 1} ${server.label}: ${JSON.stringify(m)}\n`,
          );
        }
      }
      const med = (label: string, f: Figure): number => median((results.get(label) ?? []).map(f));
      for (const peer of servers.filter((s) => s.label !== 'streamgate')) {
        if (!results.has('streamgate')) break;
        for (const [figure, f, digits] of FIGURES) {
          const ours = med('streamgate', f);
          const theirs = med(peer.label, f);
          rows.push({
            name: `rtmp ${viewers}v ${figure}`,
            ours: Number(ours.toFixed(digits)),
            peer: Number(theirs.toFixed(digits)),
            ratio: Number((ours / Math.max(theirs, 1e-6)).toFixed(3)),
            note: `vs ${peer.label}; median of ${RUNS}, ${SECONDS} s windows`,
          });
        }
      }
    }
    if (notes.length > 0) {
      rows.push({ name: 'rtmp fan-out', ours: 0, peer: 0, ratio: 0, note: notes.join('; ') });
    }
    return rows;
  } finally {
    for (const s of servers) await s.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  runRtmpBench().then(
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
