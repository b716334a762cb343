/**
 * Soak: `npm run soak -- --minutes N` (default 30).
 *
 * Runs a real streamgate process under churn on every protocol for N minutes: an ffmpeg
 * publisher that reconnects every 20–40 s over RTMP; viewers joining and leaving over RTMP,
 * RTSP (TCP interleaved), HLS and HTTP MPEG-TS, each with a fresh token; and an authorization
 * backend that flaps every 15 s between 200, 403, 500 and slow (a 200 after 1.5 s). Every 10 s
 * it samples the server's RSS (/proc/PID/status VmRSS), open file descriptors (/proc/PID/fd),
 * open sessions (/api/sessions) and, when /metrics exports one, the V8 heap (streamgate does
 * not today, so the heap column reads n/a and RSS stands in for it).
 *
 * It fails (exit 1) when, after a warm-up of the first third of the samples:
 *   - RSS rises: the least-squares slope over the remaining samples exceeds RSS_SLOPE_LIMIT MiB
 *     per 10 minutes and the rise it fits over that window exceeds RSS_MIN_RISE MiB (so a short
 *     run's GC noise is not read as a trend); likewise open fds, FD_SLOPE_LIMIT per 10 minutes
 *     and FD_MIN_RISE descriptors (live clients come and go, so fds move by a few);
 *   - a session is still open SESSION_DRAIN_S seconds after the churn stopped;
 *   - open fds after the drain exceed the warm-up's lowest sample plus FD_SLACK;
 *   - the history rows of the run differ from the sessions the backend allowed (each allowed
 *     new_session call is one session opened, by id).
 * The last line printed states every figure and the verdict.
 */
import { createServer, type Server } from 'node:http';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';
import Database from 'better-sqlite3';
import { startStreamgate, type RunningStreamgate } from '../helpers/streamgate.js';
import { stopProcess } from '../helpers/clients.js';
import {
  HttpViewer,
  RtmpViewer,
  Watched,
  fdCount,
  httpGet,
  rssMb,
  rtspAsk,
  sleep,
  tcpFrom,
} from '../helpers/hostile.js';

const SAMPLE_EVERY_MS = 10_000;
const RSS_SLOPE_LIMIT = 20;
const RSS_MIN_RISE = 10;
const FD_SLOPE_LIMIT = 10;
const FD_MIN_RISE = 8;
const FD_SLACK = 10;
const SESSION_DRAIN_S = 45;
const VIEWER_WORKERS = 6;
const FLAP_EVERY_MS = 15_000;

function parseMinutes(argv: string[]): number {
  const i = argv.indexOf('--minutes');
  const raw = i >= 0 ? argv[i + 1] : undefined;
  const n = raw === undefined ? 30 : Number(raw);
  if (!Number.isFinite(n) || n <= 0) {
    console.error('usage: npm run soak -- [--minutes N]   (N > 0, default 30)');
    process.exit(2);
  }
  return n;
}

// ---- the flapping backend --------------------------------------------------------------

type Phase = 'allow' | 'deny' | 'error' | 'slow';
const PHASES: Phase[] = ['allow', 'deny', 'error', 'slow'];

interface FlappingBackend {
  url: string;
  /** Session ids of every new_session the backend allowed (play and publish). */
  allowed: Set<string>;
  answers: Record<Phase, number>;
  close(): Promise<void>;
}

async function startFlappingBackend(): Promise<FlappingBackend> {
  const started = Date.now();
  const allowed = new Set<string>();
  const answers: Record<Phase, number> = { allow: 0, deny: 0, error: 0, slow: 0 };
  const server: Server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://x');
    const q = url.searchParams;
    // Publishing always passes, so there is a stream to watch; plays flap.
    const phase: Phase = url.pathname.endsWith('/publish')
      ? 'allow'
      : (PHASES[Math.floor((Date.now() - started) / FLAP_EVERY_MS) % PHASES.length] ?? 'allow');
    answers[phase]++;
    const allow = (): void => {
      if (q.get('request_type') === 'new_session') allowed.add(q.get('session_id') ?? '');
      res.writeHead(200, { 'X-AuthDuration': '20', 'Content-Length': '0' }).end();
    };
    req.resume();
    if (phase === 'allow') allow();
    else if (phase === 'slow') setTimeout(allow, 1500);
    else res.writeHead(phase === 'deny' ? 403 : 500, { 'Content-Length': '0' }).end();
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}`,
    allowed,
    answers,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

// ---- churn ---------------------------------------------------------------------------------

let tokenSeq = 0;
const token = (): string => `soak${++tokenSeq}-${Date.now().toString(36)}`;
const between = (lo: number, hi: number): number => lo + Math.random() * (hi - lo);

/** Publishes live/soak for 20–40 s at a time, reconnecting until `running()` turns false. */
async function publisherLoop(
  rtmp: number,
  running: () => boolean,
  current: { proc?: ChildProcess },
): Promise<number> {
  let runs = 0;
  while (running()) {
    // prettier-ignore
    const proc = spawn('ffmpeg', [
      '-hide_banner', '-loglevel', 'error', '-re',
      '-f', 'lavfi', '-i', 'testsrc2=size=320x240:rate=25',
      '-f', 'lavfi', '-i', 'sine=frequency=1000:sample_rate=44100',
      '-t', String(Math.round(between(20, 40))),
      '-c:v', 'libx264', '-preset', 'ultrafast', '-tune', 'zerolatency', '-g', '25', '-pix_fmt', 'yuv420p',
      '-c:a', 'aac', '-b:a', '64k', '-f', 'flv', `rtmp://127.0.0.1:${rtmp}/live/soak?token=${token()}`,
    ], { stdio: 'ignore' });
    current.proc = proc;
    runs++;
    await once(proc, 'exit');
    current.proc = undefined;
    await sleep(between(500, 2000));
  }
  return runs;
}

/** A raw RTSP player over TCP interleaved: DESCRIBE, SETUP every track, PLAY, read, leave. */
async function rtspVisit(port: number, ms: number): Promise<void> {
  const socket = await tcpFrom(port);
  const c = new Watched(socket, true);
  try {
    const url = `rtsp://127.0.0.1:${port}/live/soak?token=${token()}`;
    const d = await rtspAsk(c, [`DESCRIBE ${url} RTSP/1.0`, 'CSeq: 1', 'Accept: application/sdp']);
    if (d.status !== 200) return;
    const controls = [...d.body.matchAll(/^a=control:(\S+)/gm)]
      .map((m) => m[1] ?? '')
      .filter((v) => v !== '*');
    let session: string | undefined;
    let cseq = 2;
    for (const [i, control] of controls.entries()) {
      const track = control.startsWith('rtsp://') ? control : `${url.split('?')[0]}/${control}`;
      const r = await rtspAsk(c, [
        `SETUP ${track} RTSP/1.0`,
        `CSeq: ${cseq++}`,
        `Transport: RTP/AVP/TCP;unicast;interleaved=${2 * i}-${2 * i + 1}`,
        ...(session ? [`Session: ${session}`] : []),
      ]);
      if (r.status !== 200) return;
      session ??= /^Session:\s*([^;\r\n]+)/im.exec(r.head)?.[1];
    }
    if (!session) return;
    await rtspAsk(c, [`PLAY ${url} RTSP/1.0`, `CSeq: ${cseq++}`, `Session: ${session}`]);
    // Keep the received bytes from piling up in memory: only the count matters.
    socket.on('data', () => c.chunks.splice(0));
    await sleep(ms);
  } finally {
    socket.destroy();
  }
}

/** An HLS player: the playlist and its newest segment every second, then it just stops asking. */
async function hlsVisit(port: number, ms: number): Promise<void> {
  const t = token();
  const end = Date.now() + ms;
  while (Date.now() < end) {
    const pl = await httpGet(port, `/live/soak/index.m3u8?token=${t}`, { ms: 5000 }).catch(() => undefined);
    if (!pl || pl.status !== 200) return;
    const uri = pl.body
      .toString()
      .split('\n')
      .filter((l) => l !== '' && !l.startsWith('#'))
      .at(-1);
    if (uri) {
      const u = new URL(uri, 'http://x/live/soak/');
      await httpGet(port, u.pathname + u.search, { ms: 5000 }).catch(() => undefined);
    }
    await sleep(1000);
  }
}

async function viewerWorker(
  ports: { http: number; rtmp: number; rtsp: number },
  running: () => boolean,
): Promise<number> {
  let visits = 0;
  while (running()) {
    const ms = between(3000, 10_000);
    const kind = Math.floor(Math.random() * 4);
    visits++;
    try {
      if (kind === 0) {
        const v = new RtmpViewer(ports.rtmp, 'live', `soak?token=${token()}`);
        await sleep(ms);
        v.stop();
      } else if (kind === 1) {
        const v = new HttpViewer(ports.http, `/live/soak/mpegts?token=${token()}`);
        await sleep(ms);
        v.stop();
      } else if (kind === 2) {
        await hlsVisit(ports.http, ms);
      } else {
        await rtspVisit(ports.rtsp, ms);
      }
    } catch {
      // A refused or broken visit is part of the churn.
    }
    await sleep(between(200, 1500));
  }
  return visits;
}

// ---- sampling and the verdict -----------------------------------------------------------

interface Sample {
  t: number;
  rss: number;
  fds: number;
  sessions: number;
  heap: number | undefined;
}

async function openSessions(http: number): Promise<number> {
  const r = await httpGet(http, '/api/sessions', { ms: 5000 }).catch(() => undefined);
  if (!r || r.status !== 200) return NaN;
  return (JSON.parse(r.body.toString()) as { sessions: unknown[] }).sessions.length;
}

async function heapBytes(http: number): Promise<number | undefined> {
  const r = await httpGet(http, '/metrics', { ms: 5000 }).catch(() => undefined);
  const m = r ? /^\S*heap\S*used\S*(?:\{[^}]*\})?\s+(\d+(?:\.\d+)?)/im.exec(r.body.toString()) : null;
  return m ? Number(m[1]) : undefined;
}

async function sample(server: RunningStreamgate, pid: number): Promise<Sample> {
  const http = server.ports['http'] ?? 0;
  return {
    t: Date.now(),
    rss: rssMb(pid),
    fds: fdCount(pid),
    sessions: await openSessions(http),
    heap: await heapBytes(http),
  };
}

/** Least-squares slope of y over x (x in ms), per 10 minutes. */
function slopePer10Min(points: { x: number; y: number }[]): number {
  const n = points.length;
  if (n < 2) return 0;
  const mx = points.reduce((a, p) => a + p.x, 0) / n;
  const my = points.reduce((a, p) => a + p.y, 0) / n;
  let num = 0;
  let den = 0;
  for (const p of points) {
    num += (p.x - mx) * (p.y - my);
    den += (p.x - mx) ** 2;
  }
  return den === 0 ? 0 : (num / den) * 600_000;
}

/** History rows of this server: the API up to its 10,000-row page, the SQLite file beyond. */
async function historyRows(server: RunningStreamgate): Promise<string[]> {
  const r = await httpGet(server.ports['http'] ?? 0, '/api/history?limit=10000', {
    ms: 15_000,
    maxBytes: 1 << 30,
  });
  const rows = (JSON.parse(r.body.toString()) as { history: { id: string }[] }).history.map((h) => h.id);
  if (rows.length < 10_000) return rows;
  const db = new Database(join(server.dir, 'history.db'), { readonly: true });
  try {
    return (db.prepare('SELECT id FROM sessions_history').all() as { id: string }[]).map((h) => h.id);
  } finally {
    db.close();
  }
}

async function main(): Promise<void> {
  const minutes = parseMinutes(process.argv.slice(2));
  const backend = await startFlappingBackend();
  const server = await startStreamgate(
    `
    http_session_timeout 5;
    template live {
      prefix live;
      input publish://;
      on_publish ${backend.url}/publish;
      on_play ${backend.url}/play;
    }
  `,
    { listeners: 'http 127.0.0.1:0;\nrtmp 127.0.0.1:0;\nrtsp 127.0.0.1:0;\n', env: { LOG_LEVEL: 'info' } },
  );
  const pid = server.proc.pid ?? 0;
  const current: { proc?: ChildProcess } = {};
  // Interrupted: take the server and the publisher down with us.
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => {
      void Promise.allSettled([
        current.proc ? stopProcess(current.proc) : undefined,
        server.stop(),
        backend.close(),
      ]).then(() => process.exit(130));
    });
  }
  const ports = {
    http: server.ports['http'] ?? 0,
    rtmp: server.ports['rtmp'] ?? 0,
    rtsp: server.ports['rtsp'] ?? 0,
  };
  const endAt = Date.now() + minutes * 60_000;
  const running = (): boolean => Date.now() < endAt && server.proc.exitCode === null;
  console.log(
    `soak: ${minutes} min of churn against pid ${pid} (http ${ports.http}, rtmp ${ports.rtmp}, rtsp ${ports.rtsp})`,
  );

  const samples: Sample[] = [];
  const sampler = (async () => {
    while (running()) {
      const s = await sample(server, pid);
      samples.push(s);
      console.log(
        `  t=${((s.t - (samples[0]?.t ?? s.t)) / 1000).toFixed(0).padStart(5)}s rss=${s.rss.toFixed(1)}MiB fds=${s.fds} sessions=${s.sessions} heap=${s.heap === undefined ? 'n/a' : (s.heap / 2 ** 20).toFixed(1) + 'MiB'}`,
      );
      await sleep(Math.min(SAMPLE_EVERY_MS, Math.max(0, endAt - Date.now())));
    }
  })();
  const publishing = publisherLoop(ports.rtmp, running, current);
  await sleep(3000);
  const workers = Array.from({ length: VIEWER_WORKERS }, () => viewerWorker(ports, running));
  const [publishRuns, ...visits] = await Promise.all([publishing, ...workers]);
  if (current.proc) await stopProcess(current.proc);
  await sampler;

  // Churn has stopped: every session must close (HLS ones after http_session_timeout).
  const drainStart = Date.now();
  let left = await openSessions(ports.http);
  while (left !== 0 && Date.now() - drainStart < SESSION_DRAIN_S * 1000) {
    await sleep(1000);
    left = await openSessions(ports.http);
  }
  const fdsAfter = fdCount(pid);
  const history = await historyRows(server);
  const alive = server.proc.exitCode === null;
  await server.stop();
  await backend.close();

  const warm = Math.floor(samples.length / 3);
  const steady = samples.slice(warm).filter((s) => Number.isFinite(s.rss));
  const rssSlope = slopePer10Min(steady.map((s) => ({ x: s.t, y: s.rss })));
  const fdSlope = slopePer10Min(steady.map((s) => ({ x: s.t, y: s.fds })));
  const fdWarm = Math.min(...samples.slice(0, Math.max(1, warm)).map((s) => s.fds));
  const opened = backend.allowed.size;
  const historySet = new Set(history);
  const missing = [...backend.allowed].filter((id) => !historySet.has(id)).length;
  const unknown = history.filter((id) => !backend.allowed.has(id)).length;

  const failures: string[] = [];
  if (!alive) failures.push('server exited during the soak');
  if (samples.length < 3) failures.push(`only ${samples.length} samples`);
  const windowMin = steady.length > 1 ? ((steady.at(-1)?.t ?? 0) - (steady[0]?.t ?? 0)) / 600_000 : 0;
  if (rssSlope > RSS_SLOPE_LIMIT && rssSlope * windowMin > RSS_MIN_RISE) {
    failures.push(
      `rss rising: slope ${rssSlope.toFixed(1)} > ${RSS_SLOPE_LIMIT} MiB/10min, fitted rise > ${RSS_MIN_RISE} MiB`,
    );
  }
  if (fdSlope > FD_SLOPE_LIMIT && fdSlope * windowMin > FD_MIN_RISE) {
    failures.push(
      `fds rising: slope ${fdSlope.toFixed(1)} > ${FD_SLOPE_LIMIT}/10min, fitted rise > ${FD_MIN_RISE}`,
    );
  }
  if (left !== 0) failures.push(`${left} sessions still open ${SESSION_DRAIN_S} s after churn stopped`);
  if (!(fdsAfter <= fdWarm + FD_SLACK)) {
    failures.push(`fds after drain ${fdsAfter} > warm-up ${fdWarm} + ${FD_SLACK}`);
  }
  if (history.length !== opened || missing > 0 || unknown > 0) {
    failures.push(
      `history rows ${history.length} ≠ sessions opened ${opened} (missing ${missing}, unknown ${unknown})`,
    );
  }
  const first = steady[0];
  const last = steady.at(-1);
  const heapSeen = samples.some((s) => s.heap !== undefined);
  if (failures.length > 0) console.log(`soak failures:\n  ${failures.join('\n  ')}`);
  console.log(
    [
      `soak ${failures.length === 0 ? 'PASS' : 'FAIL'}:`,
      `minutes=${minutes}`,
      `samples=${samples.length} (warm-up ${warm})`,
      `rss=${first?.rss.toFixed(1)}→${last?.rss.toFixed(1)}MiB slope=${rssSlope.toFixed(1)}MiB/10min (limit ${RSS_SLOPE_LIMIT})`,
      `fds=${first?.fds}→${last?.fds} slope=${fdSlope.toFixed(1)}/10min after_drain=${fdsAfter} (warm-up min ${fdWarm})`,
      `heap=${heapSeen ? 'sampled' : 'n/a (no endpoint; RSS only)'}`,
      `publisher_runs=${publishRuns} visits=${visits.reduce((a, b) => a + b, 0)}`,
      `backend=${Object.entries(backend.answers)
        .map(([k, v]) => `${k}:${v}`)
        .join(',')}`,
      `sessions_opened=${opened} history_rows=${history.length} open_after_churn=${left}`,
    ].join(' '),
  );
  process.exitCode = failures.length === 0 ? 0 : 1;
}

await main();
