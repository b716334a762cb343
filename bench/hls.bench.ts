/**
 * HLS segment throughput: requests per second for `GET /NAME/mono-<seq>.ts?token=T` on a
 * running streamgate (every request goes through the session manager, answered from
 * memory for a known token) against Debian's nginx serving the same segment bytes as a
 * static file. 100 concurrent keep-alive connections on loopback, both sides driven by
 * the same client (wrk when installed, else an undici load loop), so the ratio compares
 * servers, not clients. Two segment sizes (about 200 KB and 500 KB: two publishers at a
 * constant ~0.8 Mbit/s, one with 2 s and one with 5 s segments). The machine is shared, so
 * each size is measured in alternating rounds (ours, nginx, ours, nginx, …) and the median
 * of each side is compared: a burst of load elsewhere hits both sides alike.
 *
 * Run standalone: `node --import tsx bench/hls.bench.ts` (needs ffmpeg and nginx);
 * BENCH_SECONDS (default 5) per measurement, BENCH_ROUNDS (default 2) rounds per side.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { chmodSync, mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { Pool } from 'undici';
import { startStreamgate } from '../test/helpers/streamgate.js';
import { cpuSeconds, freePort, have, type BenchRow } from './util.js';
import { sleep, stopProcess } from '../test/helpers/clients.js';

const CONNECTIONS = 100;
const SECONDS = Number(process.env['BENCH_SECONDS'] ?? 5);
const ROUNDS = Math.max(1, Number(process.env['BENCH_ROUNDS'] ?? 2));

/** Publishes a constant ~0.8 Mbit/s H.264 + AAC pattern (filler keeps the rate flat, so segment size follows duration). */
function publishCbr(url: string): ChildProcess {
  // prettier-ignore
  const args = [
    '-hide_banner', '-loglevel', 'error', '-re',
    '-f', 'lavfi', '-i', 'testsrc2=size=320x240:rate=25',
    '-f', 'lavfi', '-i', 'sine=frequency=1000:sample_rate=44100',
    '-c:v', 'libx264', '-preset', 'ultrafast', '-tune', 'zerolatency', '-g', '25', '-pix_fmt', 'yuv420p',
    '-b:v', '720k', '-minrate', '720k', '-maxrate', '720k', '-bufsize', '360k', '-x264-params', 'nal-hrd=cbr',
    '-c:a', 'aac', '-b:a', '64k',
    '-f', 'flv', url,
  ];
  return spawn('ffmpeg', args, { stdio: ['ignore', 'ignore', 'pipe'] });
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? (s[m] ?? 0) : ((s[m - 1] ?? 0) + (s[m] ?? 0)) / 2;
}

/** Requests/s of 200 answers for `url` with CONNECTIONS concurrent keep-alive connections. */
async function load(url: string, seconds: number): Promise<{ rps: number; errors: number; tool: string }> {
  if (have('wrk')) {
    const r = spawnSync('wrk', ['-t2', `-c${CONNECTIONS}`, `-d${seconds}s`, url], { encoding: 'utf8' });
    const rps = Number(/Requests\/sec:\s+([\d.]+)/.exec(r.stdout)?.[1] ?? 0);
    const non2xx = Number(/Non-2xx or 3xx responses:\s+(\d+)/.exec(r.stdout)?.[1] ?? 0);
    return { rps, errors: non2xx, tool: 'wrk -t2' };
  }
  const u = new URL(url);
  const pool = new Pool(u.origin, { connections: CONNECTIONS, pipelining: 1 });
  const path = u.pathname + u.search;
  let ok = 0;
  let errors = 0;
  const end = performance.now() + seconds * 1000;
  const worker = async (): Promise<void> => {
    while (performance.now() < end) {
      try {
        const { statusCode, body } = await pool.request({ path, method: 'GET' });
        await body.dump({ limit: Infinity });
        if (statusCode === 200) ok++;
        else errors++;
      } catch {
        errors++;
      }
    }
  };
  const t0 = performance.now();
  await Promise.all(Array.from({ length: CONNECTIONS }, worker));
  const elapsed = (performance.now() - t0) / 1000;
  await pool.close();
  return { rps: ok / elapsed, errors, tool: 'undici load loop' };
}

/** The newest segment URI of `name`'s media playlist, once one is listed. */
async function newestSegment(http: number, name: string): Promise<string> {
  for (let i = 0; i < 80; i++) {
    await sleep(250);
    const r = await fetch(`http://127.0.0.1:${http}/${name}/mono.m3u8?token=bench`);
    if (r.status !== 200) continue;
    const lines = (await r.text()).split('\n').filter((l) => l.startsWith('mono-'));
    // The second segment: the first may be short (it starts at the first keyframe the egress saw).
    if (lines.length >= 2) return lines.at(-1) ?? '';
  }
  throw new Error(`no segment appeared for ${name}`);
}

export async function runHlsBench(): Promise<BenchRow[]> {
  if (!have('ffmpeg') || !have('nginx')) {
    return [
      { name: 'hls segment GET', ours: 0, peer: 0, ratio: 0, note: 'skipped: ffmpeg or nginx missing' },
    ];
  }
  const dir = mkdtempSync(join(tmpdir(), 'hls-bench-'));
  const sg = await startStreamgate(
    'template small { prefix small; input publish://; segment_duration 2; }\n' +
      'template large { prefix large; input publish://; segment_duration 5; }',
    { env: { LOG_LEVEL: 'info' } }, // the start-up line the helper waits for is at info
  );
  const publishers: ChildProcess[] = [];
  let nginx: ChildProcess | undefined;
  try {
    const http = sg.ports['http'] ?? 0;
    const rtmp = sg.ports['rtmp'] ?? 0;
    publishers.push(publishCbr(`rtmp://127.0.0.1:${rtmp}/small/bench`));
    publishers.push(publishCbr(`rtmp://127.0.0.1:${rtmp}/large/bench`));
    const cases: { label: string; name: string; seg: string; bytes: Buffer }[] = [];
    for (const [label, name] of [
      ['200 KB', 'small/bench'],
      ['500 KB', 'large/bench'],
    ] as const) {
      const seg = await newestSegment(http, name);
      const bytes = Buffer.from(await (await fetch(`http://127.0.0.1:${http}/${name}/${seg}`)).arrayBuffer());
      cases.push({ label, name, seg, bytes });
    }

    // nginx with everything under a temp prefix, one worker, no daemon, stopped by PID.
    // Started as root, nginx's worker runs as nobody: the mkdtemp dir (0700) must be readable.
    chmodSync(dir, 0o755);
    const root = join(dir, 'www');
    for (const c of cases) {
      mkdirSync(join(root, c.name), { recursive: true });
      writeFileSync(join(root, c.name, c.seg.split('?')[0] ?? 'seg.ts'), c.bytes);
    }
    const port = await freePort();
    writeFileSync(
      join(dir, 'nginx.conf'),
      `daemon off; worker_processes 1; pid ${dir}/nginx.pid; error_log ${dir}/error.log warn;
events { worker_connections 1024; }
http {
  access_log off; sendfile on; tcp_nopush on;
  client_body_temp_path ${dir}/body; proxy_temp_path ${dir}/proxy; fastcgi_temp_path ${dir}/fcgi;
  uwsgi_temp_path ${dir}/uwsgi; scgi_temp_path ${dir}/scgi;
  keepalive_requests 1000000;
  types { video/mp2t ts; }
  server { listen 127.0.0.1:${port}; root ${root}; add_header Cache-Control "max-age=12"; add_header Access-Control-Allow-Origin *; }
}
`,
    );
    nginx = spawn('nginx', ['-e', join(dir, 'error.log'), '-p', dir, '-c', join(dir, 'nginx.conf')], {
      stdio: 'ignore',
    });
    await sleep(500);
    const rows: BenchRow[] = [];
    for (const c of cases) {
      const peerUrl = `http://127.0.0.1:${port}/${c.name}/${c.seg.split('?')[0] ?? ''}`;
      const check = await fetch(peerUrl);
      if (check.status !== 200) throw new Error(`nginx answered ${check.status}`);
      await check.arrayBuffer();
      const ours: number[] = [];
      const peer: number[] = [];
      const oursCpu: number[] = [];
      const peerCpu: number[] = [];
      let errors = 0;
      let tool = '';
      /** Requests/s, and the server's CPU (user + system, its children included) per 1000 requests. */
      const measure = async (
        url: string,
        pid: number,
      ): Promise<{ rps: number; cpu: number; errors: number }> => {
        const before = cpuSeconds(pid);
        const r = await load(url, SECONDS);
        tool = r.tool;
        const cpu = cpuSeconds(pid) - before;
        return { rps: r.rps, cpu: (cpu * 1000 * 1000) / Math.max(1, r.rps * SECONDS), errors: r.errors };
      };
      for (let r = 0; r < ROUNDS; r++) {
        // The newest segment each round: an older one would slide out of the window mid-run.
        const seg = await newestSegment(http, c.name);
        const o = await measure(`http://127.0.0.1:${http}/${c.name}/${seg}`, sg.proc.pid ?? 0);
        const p = await measure(peerUrl, nginx.pid ?? 0);
        ours.push(o.rps);
        peer.push(p.rps);
        oursCpu.push(o.cpu);
        peerCpu.push(p.cpu);
        errors += o.errors + p.errors;
      }
      const o = median(ours);
      const p = median(peer);
      const oc = median(oursCpu);
      const pc = median(peerCpu);
      const list = (xs: number[], digits: number): string => xs.map((x) => x.toFixed(digits)).join('/');
      rows.push({
        name: `hls segment GET + session check, ${c.label} (${c.bytes.length} B)`,
        ours: Math.round(o),
        peer: Math.round(p),
        ratio: Number((o / p).toFixed(3)),
        note:
          `peer: nginx 1 worker, sendfile, same bytes; ${CONNECTIONS} keep-alive conns, ${tool}, median of ${ROUNDS} ` +
          `alternating rounds (req/s ours ${list(ours, 0)}, nginx ${list(peer, 0)}); server CPU per request ` +
          `ours ${oc.toFixed(1)} µs, nginx ${pc.toFixed(1)} µs (${list(oursCpu, 1)} / ${list(peerCpu, 1)}), ` +
          `CPU ratio nginx/ours ${(pc / oc).toFixed(2)}; errors ${errors}`,
      });
    }
    return rows;
  } finally {
    if (nginx?.pid !== undefined) {
      nginx.kill('SIGTERM');
      if (nginx.exitCode === null) await once(nginx, 'exit');
    }
    await Promise.all(publishers.map(stopProcess));
    await sg.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  runHlsBench().then(
    (rows) => {
      for (const r of rows) {
        console.log(`${r.name}: ours ${r.ours}/s, nginx ${r.peer}/s, ratio ${r.ratio} (${r.note})`);
      }
      process.exit(0);
    },
    (err: unknown) => {
      console.error(err);
      process.exit(1);
    },
  );
}
