/**
 * RTMP fan-out (issue 2): one publisher, many RTMP viewers, on streamgate and on nginx-rtmp
 * (Debian's libnginx-mod-rtmp) in the same run. Both get the same FLV file looped with
 * `-c copy`; the viewers are raw sockets that only count bytes, so the client costs the
 * same for both. Reported: server CPU seconds per second of streaming, as nginx / ours
 * (above 1 means streamgate is cheaper), and the bytes each viewer received (both must
 * deliver the whole stream for the CPU figure to mean anything).
 *
 * Standalone: `node --import tsx bench/rtmp.bench.ts` (needs ffmpeg and nginx with the rtmp module).
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { command } from '../protocols/rtmp/wire/messages.js';
import { startStreamgate } from '../test/helpers/streamgate.js';
import { sleep, stopProcess } from '../test/helpers/clients.js';
import { cpuSeconds, freePort, have, type BenchRow } from './util.js';

const VIEWERS = Number(process.env['BENCH_VIEWERS'] ?? 50);
const SECONDS = Number(process.env['BENCH_SECONDS'] ?? 10);
const NGINX_RTMP_MODULE = '/usr/lib/nginx/modules/ngx_rtmp_module.so';

interface Viewer {
  socket: Socket;
  bytes: number;
}

/** A player that handshakes, sends connect + createStream + play at once, then only counts bytes. */
function openViewer(port: number, app: string, name: string): Viewer {
  const socket = connect(port, '127.0.0.1');
  const viewer: Viewer = { socket, bytes: 0 };
  let handshake = Buffer.alloc(0);
  let done = false;
  socket.on('connect', () =>
    socket.write(Buffer.concat([Buffer.from([3]), Buffer.alloc(8), randomBytes(1528)])),
  );
  socket.on('data', (d: Buffer) => {
    if (done) {
      viewer.bytes += d.length;
      return;
    }
    handshake = Buffer.concat([handshake, d]);
    if (handshake.length < 3073) return;
    done = true;
    socket.write(handshake.subarray(1, 1537));
    socket.write(command(3, 0, 128, 'connect', 1, { app, tcUrl: `rtmp://127.0.0.1:${port}/${app}` }));
    socket.write(command(3, 0, 128, 'createStream', 2, null));
    socket.write(command(8, 1, 128, 'play', 3, null, name));
  });
  socket.on('error', () => undefined);
  return viewer;
}

async function measure(
  serverPid: number,
  publishUrl: string,
  port: number,
  app: string,
  name: string,
  media: string,
): Promise<{ cpuPerSecond: number; bytesPerViewer: number; starved: number }> {
  const publisher = spawn(
    'ffmpeg',
    [
      '-hide_banner',
      '-loglevel',
      'error',
      '-re',
      '-stream_loop',
      '-1',
      '-i',
      media,
      '-c',
      'copy',
      '-f',
      'flv',
      publishUrl,
    ],
    {
      stdio: 'ignore',
    },
  );
  try {
    await sleep(2000);
    const viewers = Array.from({ length: VIEWERS }, () => openViewer(port, app, name));
    await sleep(2000);
    const cpu0 = cpuSeconds(serverPid);
    const bytes0 = viewers.map((v) => v.bytes);
    const t0 = performance.now();
    await sleep(SECONDS * 1000);
    const elapsed = (performance.now() - t0) / 1000;
    const cpu = cpuSeconds(serverPid) - cpu0;
    const got = viewers.map((v, i) => v.bytes - (bytes0[i] ?? 0));
    for (const v of viewers) v.socket.destroy();
    const mean = got.reduce((a, b) => a + b, 0) / got.length;
    return {
      cpuPerSecond: cpu / elapsed,
      bytesPerViewer: mean,
      starved: got.filter((b) => b < mean / 2).length,
    };
  } finally {
    await stopProcess(publisher);
  }
}

export async function runRtmpBench(): Promise<BenchRow[]> {
  if (!have('ffmpeg') || !have('nginx') || !existsSync(NGINX_RTMP_MODULE)) {
    return [
      { name: 'rtmp fan-out', ours: 0, peer: 0, ratio: 0, note: 'skipped: ffmpeg or nginx-rtmp missing' },
    ];
  }
  const dir = mkdtempSync(join(tmpdir(), 'rtmp-bench-'));
  const media = join(dir, 'media.flv');
  // 720p30 at ~2.5 Mbit/s with a 2 s GOP: a typical OBS stream.
  spawnSync('ffmpeg', ['-hide_banner', '-loglevel', 'error', '-f', 'lavfi', '-i', 'testsrc2=size=1280x720:rate=30', '-f', 'lavfi', '-i', 'sine=frequency=1000:sample_rate=48000',
    '-t', '10', '-c:v', 'libx264', '-preset', 'veryfast', '-g', '60', '-b:v', '2500k', '-pix_fmt', 'yuv420p', '-c:a', 'aac', '-b:a', '128k', media]); // prettier-ignore

  const sg = await startStreamgate('template live { prefix live; input publish://; }', {
    listeners: 'rtmp 127.0.0.1:0;\n',
    env: { LOG_LEVEL: 'info' }, // the start-up line the helper waits for is at info
  });
  let nginx: ChildProcess | undefined;
  try {
    const ourPort = sg.ports['rtmp'] ?? 0;
    const ours = await measure(
      sg.proc.pid ?? 0,
      `rtmp://127.0.0.1:${ourPort}/live/bench`,
      ourPort,
      'live',
      'bench',
      media,
    );

    const port = await freePort();
    writeFileSync(
      join(dir, 'nginx.conf'),
      `load_module ${NGINX_RTMP_MODULE};
daemon off; worker_processes 1; pid ${dir}/nginx.pid; error_log ${dir}/error.log warn;
events { worker_connections 1024; }
rtmp { server { listen 127.0.0.1:${port}; chunk_size 4096; application live { live on; } } }
`,
    );
    nginx = spawn('nginx', ['-e', join(dir, 'error.log'), '-p', dir, '-c', join(dir, 'nginx.conf')], {
      stdio: 'ignore',
    });
    await sleep(500);
    const peer = await measure(
      nginx.pid ?? 0,
      `rtmp://127.0.0.1:${port}/live/bench`,
      port,
      'live',
      'bench',
      media,
    );

    const note =
      `${VIEWERS} viewers, ${SECONDS} s, 720p30 2.5 Mbit/s; bytes/viewer ours=${(ours.bytesPerViewer / 1e6).toFixed(2)} MB ` +
      `nginx=${(peer.bytesPerViewer / 1e6).toFixed(2)} MB; starved viewers ours=${ours.starved} nginx=${peer.starved}`;
    return [
      {
        name: `rtmp fan-out: server CPU ms per second (${VIEWERS} viewers)`,
        ours: Math.round(ours.cpuPerSecond * 1000),
        peer: Math.round(peer.cpuPerSecond * 1000),
        ratio: Number((peer.cpuPerSecond / Math.max(ours.cpuPerSecond, 1e-3)).toFixed(3)),
        note: `ratio = nginx CPU / ours (above 1: ours is cheaper). ${note}`,
      },
    ];
  } finally {
    if (nginx?.pid !== undefined && nginx.exitCode === null) {
      nginx.kill('SIGTERM');
      await once(nginx, 'exit');
    }
    await sg.stop();
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
