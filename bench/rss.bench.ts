/**
 * Resident memory of a lean process (issue 9: ≤ 60 MB): the compiled server (`dist/`, as
 * `npm start` runs it) on the embedded default config — the demo stream pulled from the
 * bundled ffmpeg's test pattern and served over HTTP (HLS, MPEG-TS), RTMP and RTSP — read from
 * /proc after 10 s. The listeners are moved to 127.0.0.1:0 (other benches and tests share
 * the machine); nothing else differs from `streamgate` without `--config`.
 *
 * Peer: nginx with Debian's nginx-rtmp module (master + worker) serving the same kind of
 * stream — an ffmpeg test pattern pushed over RTMP, with HLS on — measured the same way; the
 * pushing ffmpeg is not counted on either side (ours pulls its own, a child process). Without
 * nginx-rtmp the row compares with the 60 MB target. Ratio = peer / ours (≥ 1: ours is smaller).
 *
 * Standalone: node --import tsx bench/rss.bench.ts
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { EMBEDDED_CONFIG_TEXT } from '../src/config/default.js';
import { freePort, have, type BenchRow } from './util.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const SETTLE_MS = 10_000;
const TARGET_MB = 60;
const NGINX_RTMP_MODULE = '/usr/lib/nginx/modules/ngx_rtmp_module.so';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** VmRSS of a process and its direct children named `nginx` (the worker), in MB. */
function rssMb(pid: number, childrenNamed?: string): number {
  const rss = (p: number): number => {
    try {
      const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${p}/status`, 'utf8'));
      return m ? Number(m[1]) : 0;
    } catch {
      return 0;
    }
  };
  let kb = rss(pid);
  if (childrenNamed !== undefined) {
    for (const e of readdirSync('/proc')) {
      if (!/^\d+$/.test(e)) continue;
      try {
        const stat = readFileSync(`/proc/${e}/stat`, 'utf8');
        const name = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
        const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
        if (ppid === pid && name === childrenNamed) kb += rss(Number(e));
      } catch {
        // gone meanwhile
      }
    }
  }
  return kb / 1024;
}

function newest(dir: string, acc = 0): number {
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    acc = e.isDirectory() ? newest(p, acc) : Math.max(acc, statSync(p).mtimeMs);
  }
  return acc;
}

/** Builds `dist/` when it is older than the sources, as `npm start` does. */
function ensureBuilt(): void {
  const stamp = join(ROOT, 'dist', '.built');
  const fresh =
    existsSync(stamp) &&
    statSync(stamp).mtimeMs >= Math.max(newest(join(ROOT, 'src')), newest(join(ROOT, 'protocols')));
  if (fresh) return;
  const r = spawnSync('npm', ['run', 'build', '--silent'], { cwd: ROOT, stdio: 'inherit' });
  if (r.status !== 0) throw new Error('npm run build failed');
}

async function oursMb(dir: string): Promise<number> {
  ensureBuilt();
  const conf = join(dir, 'embedded.conf');
  writeFileSync(
    conf,
    EMBEDDED_CONFIG_TEXT.replace(/^(http|rtmp|rtsp) \d+;$/gm, '$1 127.0.0.1:0;') +
      `history sqlite://${join(dir, 'history.db')};\n`,
  );
  const proc = spawn(process.execPath, [join(ROOT, 'dist/src/main.js'), '--config', conf], {
    cwd: dir,
    stdio: ['ignore', 'ignore', 'inherit'],
    env: { ...process.env, NODE_ENV: 'production' },
  });
  try {
    await sleep(SETTLE_MS);
    if (proc.exitCode !== null) throw new Error(`streamgate exited with ${proc.exitCode}`);
    return rssMb(proc.pid ?? 0);
  } finally {
    await stop(proc);
  }
}

async function nginxMb(dir: string): Promise<number | undefined> {
  if (!have('nginx') || !have('ffmpeg') || !existsSync(NGINX_RTMP_MODULE)) return undefined;
  const port = await freePort();
  writeFileSync(
    join(dir, 'nginx.conf'),
    `load_module ${NGINX_RTMP_MODULE};
daemon off; worker_processes 1; pid ${dir}/nginx.pid; error_log ${dir}/error.log warn;
events { worker_connections 1024; }
rtmp { server { listen 127.0.0.1:${port}; application live { live on; hls on; hls_path ${dir}/hls; } } }
`,
  );
  const nginx = spawn('nginx', ['-e', join(dir, 'error.log'), '-p', dir, '-c', join(dir, 'nginx.conf')], {
    stdio: 'ignore',
  });
  let ffmpeg: ChildProcess | undefined;
  try {
    await sleep(500);
    ffmpeg = spawn(
      'ffmpeg',
      ['-hide_banner', '-loglevel', 'error', '-re', '-f', 'lavfi', '-i', 'testsrc2=size=640x360:rate=25',
        '-f', 'lavfi', '-i', 'sine=frequency=440:sample_rate=48000', '-c:v', 'libx264', '-preset', 'ultrafast',
        '-g', '50', '-c:a', 'aac', '-f', 'flv', `rtmp://127.0.0.1:${port}/live/demo`], // prettier-ignore
      { stdio: 'ignore' },
    );
    await sleep(SETTLE_MS);
    return rssMb(nginx.pid ?? 0, 'nginx');
  } finally {
    if (ffmpeg) await stop(ffmpeg);
    await stop(nginx);
  }
}

async function stop(p: ChildProcess): Promise<void> {
  if (p.exitCode !== null || p.signalCode !== null) return;
  p.kill('SIGTERM');
  await Promise.race([once(p, 'exit'), sleep(5000)]);
  if (p.exitCode === null && p.signalCode === null) p.kill('SIGKILL');
}

export async function runRssBench(): Promise<BenchRow[]> {
  const dir = mkdtempSync(join(tmpdir(), 'rss-bench-'));
  try {
    const ours = await oursMb(dir);
    const peer = await nginxMb(dir);
    const target = {
      name: 'rss: demo stream after 10 s (MB)',
      ours,
      peer: TARGET_MB,
      ratio: TARGET_MB / ours,
      note: `compiled server, embedded config; vs the ${TARGET_MB} MB target, ratio = target/ours`,
    };
    if (peer === undefined) return [target];
    return [
      target,
      {
        name: 'rss: demo stream vs nginx-rtmp (MB)',
        ours,
        peer,
        ratio: peer / ours,
        note: 'nginx master+worker with rtmp live + hls, same test pattern pushed; ratio = nginx/ours',
      },
    ];
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  for (const r of await runRssBench()) {
    console.log(
      `${r.name}: ours ${r.ours.toFixed(1)} vs ${r.peer.toFixed(1)} (ratio ${r.ratio.toFixed(2)}) — ${r.note}`,
    );
  }
}
