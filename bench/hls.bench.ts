/**
 * HLS segment throughput: requests per second for `GET /NAME/mono-<seq>.ts?token=T` on a
 * running streamgate (every request goes through the session manager, answered from
 * memory for a known token) against Debian's nginx serving the same segment bytes as a
 * static file. 100 concurrent keep-alive connections on loopback, both sides driven by
 * the same client (wrk when installed, else an undici load loop), so the ratio compares
 * servers, not clients.
 *
 * Run standalone: `node --import tsx bench/hls.bench.ts` (needs ffmpeg and nginx).
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { chmodSync, mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { Pool } from 'undici';
import { startStreamgate } from '../test/helpers/streamgate.js';
import { freePort, have, type BenchRow } from './util.js';
import { ffmpegPublish, sleep, stopProcess } from '../test/helpers/clients.js';

const CONNECTIONS = 100;
const SECONDS = Number(process.env['BENCH_SECONDS'] ?? 5);

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

export async function runHlsBench(): Promise<BenchRow[]> {
  if (!have('ffmpeg') || !have('nginx')) {
    return [
      { name: 'hls segment GET', ours: 0, peer: 0, ratio: 0, note: 'skipped: ffmpeg or nginx missing' },
    ];
  }
  const dir = mkdtempSync(join(tmpdir(), 'hls-bench-'));
  const sg = await startStreamgate('template live { prefix live; input publish://; }', {
    env: { LOG_LEVEL: 'info' }, // the start-up line the helper waits for is at info
  });
  let publisher: ChildProcess | undefined;
  let nginx: ChildProcess | undefined;
  try {
    const http = sg.ports['http'];
    publisher = ffmpegPublish(`rtmp://127.0.0.1:${sg.ports['rtmp']}/live/bench`);
    let segUri = '';
    for (let i = 0; i < 40 && !segUri; i++) {
      await sleep(250);
      const r = await fetch(`http://127.0.0.1:${http}/live/bench/mono.m3u8?token=bench`);
      if (r.status === 200) {
        segUri =
          (await r.text())
            .split('\n')
            .filter((l) => l.startsWith('mono-'))
            .at(-1) ?? '';
      }
    }
    if (!segUri) throw new Error('no segment appeared');
    const ourUrl = `http://127.0.0.1:${http}/live/bench/${segUri}`;
    const bytes = Buffer.from(await (await fetch(ourUrl)).arrayBuffer());

    // nginx with everything under a temp prefix, one worker, no daemon, stopped by PID.
    // Started as root, nginx's worker runs as nobody: the mkdtemp dir (0700) must be readable.
    chmodSync(dir, 0o755);
    const root = join(dir, 'www');
    mkdirSync(join(root, 'live/bench'), { recursive: true });
    const file = segUri.split('?')[0] ?? 'seg.ts';
    writeFileSync(join(root, 'live/bench', file), bytes);
    const port = await freePort();
    writeFileSync(
      join(dir, 'nginx.conf'),
      `daemon off; worker_processes 1; pid ${dir}/nginx.pid; error_log ${dir}/error.log warn;
events { worker_connections 1024; }
http {
  access_log off;
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
    const peerUrl = `http://127.0.0.1:${port}/live/bench/${file}`;
    const check = await fetch(peerUrl);
    if (check.status !== 200) throw new Error(`nginx answered ${check.status}`);
    await check.arrayBuffer();

    const ours = await load(ourUrl, SECONDS);
    const peer = await load(peerUrl, SECONDS);
    return [
      {
        name: `hls segment GET with session check (${bytes.length} B, ${CONNECTIONS} conns, ${ours.tool})`,
        ours: Math.round(ours.rps),
        peer: Math.round(peer.rps),
        ratio: Number((ours.rps / peer.rps).toFixed(3)),
        note:
          `peer: nginx 1 worker, static file (sendfile). errors ours=${ours.errors} peer=${peer.errors}. ` +
          'Ours runs the session-manager lookup (identity hash + table hit + touch) and the Node HTTP stack ' +
          'in one JS thread; the load client shares the same cores.',
      },
    ];
  } finally {
    if (nginx?.pid !== undefined) {
      nginx.kill('SIGTERM');
      if (nginx.exitCode === null) await once(nginx, 'exit');
    }
    if (publisher) await stopProcess(publisher);
    await sg.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  runHlsBench().then(
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
