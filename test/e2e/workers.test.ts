/**
 * `workers 2` (src/cluster/): the real server as a primary with two workers sharing the
 * listeners. A real ffmpeg publishes RTMP to whichever worker accepts it; real ffmpeg players
 * land on both workers (the cluster module deals connections round-robin) and all decode the
 * stream, the other worker relaying it from the owner. A per-user limit from the backend holds
 * across workers; a killed worker is started again and serves again; SIGTERM stops them all.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { get } from 'node:http';
import { startStreamgate, type RunningStreamgate } from '../helpers/streamgate.js';
import { ffmpegDecode, ffmpegPublish, sleep, stopProcess } from '../helpers/clients.js';
import { skipWithout } from '../helpers/tools.js';
import { rtmpProbe } from '../helpers/rtmp-client.js';
import { startBackend, type BackendAnswer, type TestBackend } from '../helpers/backend.js';

const skip = skipWithout(['ffmpeg'], ['ffprobe']);

let server: RunningStreamgate;
let backend: TestBackend;
let publisher: ChildProcess | undefined;

interface LogLine {
  msg?: string;
  worker?: number;
  pid?: number;
  event?: string;
  kind?: string;
  name?: string;
  reason?: string;
}
const lines = (): LogLine[] =>
  server.logs.flatMap((l) => {
    try {
      return [JSON.parse(l) as LogLine];
    } catch {
      return [];
    }
  });

/** GET on a fresh connection each time, so consecutive requests go to alternating workers. */
function getJson(port: number, path: string): Promise<{ status: number; body: unknown }> {
  return new Promise((resolve, reject) => {
    get({ host: '127.0.0.1', port, path, agent: false }, (res) => {
      let text = '';
      res.on('data', (d: Buffer) => (text += d.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: JSON.parse(text) as unknown }));
    }).on('error', reject);
  });
}

async function until(what: string, cond: () => boolean, ms = 20_000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(100);
  }
}

before(async () => {
  if (skip) return;
  backend = await startBackend((q): BackendAnswer => {
    const token = q.get('token') ?? '';
    if (token.startsWith('max')) {
      return { status: 200, headers: { 'X-UserId': 'max-user', 'X-Max-Sessions': '1' } };
    }
    return { status: token.startsWith('good') ? 200 : 403 };
  });
  server = await startStreamgate(`
    workers 2;
    template live { prefix live; input publish://; }
    template paid { prefix paid; input publish://; on_play ${backend.url}; }
    stream tv { input fake://fake; }
  `);
});

after(async () => {
  if (skip) return;
  if (publisher) await stopProcess(publisher);
  if (server) await server.stop();
  await backend?.close();
});

test('workers: two workers are up and share the listeners', { skip }, () => {
  const ready = lines().filter((l) => l.msg === 'worker ready');
  assert.deepEqual(ready.map((l) => l.worker).sort(), [0, 1]);
  assert.ok(server.ports['rtmp'] && server.ports['http']);
});

test(
  'workers: a publish on one worker is decoded by ffmpeg players on both',
  { skip, timeout: 90_000 },
  async () => {
    const rtmp = server.ports['rtmp'] ?? 0;
    publisher = ffmpegPublish(`rtmp://127.0.0.1:${rtmp}/live/cam1`);
    await until('the publisher', () => lines().some((l) => l.msg === 'publishing'));
    const owner = lines().find((l) => l.msg === 'publishing')?.worker;
    const players = await Promise.all(
      [1, 2, 3, 4].map((i) =>
        sleep(i * 150).then(() => ffmpegDecode(`rtmp://127.0.0.1:${rtmp}/live/cam1`, 3)),
      ),
    );
    for (const p of players) {
      assert.equal(p.code, 0, p.stderr);
      assert.ok(p.frames >= 50, `decoded ${p.frames} frames`);
    }
    const plays = lines().filter(
      (l) => l.event === 'session_open' && l.kind === 'play' && l.name === 'live/cam1',
    );
    assert.equal(plays.length, 4);
    const workers = new Set(plays.map((l) => l.worker));
    assert.deepEqual([...workers].sort(), [0, 1], 'players landed on both workers');
    assert.ok(
      plays.some((l) => l.worker !== owner),
      'at least one player was served by the worker without the publisher (through the relay)',
    );
    // HLS on either worker is cut from the relayed copy too.
    const http = server.ports['http'] ?? 0;
    for (let i = 0; i < 2; i++) {
      const res = await fetch(`http://127.0.0.1:${http}/live/cam1/index.m3u8`);
      assert.equal(res.status, 200);
      assert.match(await res.text(), /#EXTM3U/);
    }
    await stopProcess(publisher);
    publisher = undefined;
  },
);

test('workers: X-Max-Sessions 1 holds across workers', { skip, timeout: 60_000 }, async () => {
  const rtmp = server.ports['rtmp'] ?? 0;
  publisher = ffmpegPublish(`rtmp://127.0.0.1:${rtmp}/paid/show`);
  await until('the paid publisher', () =>
    lines().some((l) => l.msg === 'publishing' && (l as { stream?: string }).stream === 'paid/show'),
  );
  const first = rtmpProbe(rtmp, 'paid', 'show?token=max-1', { ms: 10_000 });
  await until('the first session', () =>
    lines().some((l) => l.event === 'session_open' && l.kind === 'play' && l.name === 'paid/show'),
  );
  const firstWorker = lines().find(
    (l) => l.event === 'session_open' && l.kind === 'play' && l.name === 'paid/show',
  )?.worker;
  // Consecutive connections alternate between the workers: one of these lands on the other.
  for (const n of [2, 3, 4]) {
    // The server closes a refused play; the window only bounds a worker's first backend call
    // (the HTTP client loads lazily).
    const other = await rtmpProbe(rtmp, 'paid', `show?token=max-${n}`, { ms: 5000 });
    assert.deepEqual(
      other.statuses.map((s) => s.code),
      ['NetStream.Play.Failed'],
      `device ${n} is refused`,
    );
    assert.equal(other.mediaMessages, 0);
  }
  // A device over the limit is granted, counted, found over the limit, and closed at once
  // (the newest loses, AUTH-SPEC §5.1); retries of that identity are refused by the shared ban.
  // The API lists the one granted session whichever worker answers the request.
  const http = server.ports['http'] ?? 0;
  for (let i = 0; i < 4; i++) {
    const r = await getJson(http, '/api/sessions?name=paid/show');
    assert.equal(r.status, 200);
    const sessions = (r.body as { sessions: { type: string; user_id?: string }[] }).sessions;
    assert.equal(
      sessions.filter((s) => s.type === 'play').length,
      1,
      `request ${i}: ${JSON.stringify(r.body)}`,
    );
  }
  const refused = lines().filter(
    (l) =>
      l.name === 'paid/show' &&
      ((l.event === 'session_close' && l.reason === 'session_limit') || l.event === 'session_denied'),
  );
  assert.ok(
    refused.some((l) => l.worker !== firstWorker),
    `a refusal came from the other worker (first on ${firstWorker}; refusals on ${refused.map((l) => l.worker).join(',')})`,
  );
  const f = await first;
  assert.equal(f.closedByServer, false, 'the first device keeps playing');
  assert.ok(f.mediaMessages > 50, `first device got ${f.mediaMessages} media messages`);
  await stopProcess(publisher);
  publisher = undefined;
});

test(
  'workers: a killed worker is logged and started again, and serves again',
  { skip, timeout: 90_000 },
  async () => {
    const rtmp = server.ports['rtmp'] ?? 0;
    // Worker 0 runs the static stream's ffmpeg input; worker 1 relays it. Kill the one with the input.
    const victim = lines().find((l) => l.msg === 'worker ready' && l.worker === 0)?.pid;
    assert.ok(victim);
    process.kill(victim, 'SIGKILL');
    await until('the restart', () => lines().some((l) => l.msg === 'worker restarted' && l.worker === 0));
    const exit = lines().find((l) => l.msg === 'worker exited; starting it again');
    assert.equal((exit as { signal?: string } | undefined)?.signal, 'SIGKILL');
    await sleep(3000); // the new worker's ffmpeg input starts, worker 1 relays it again
    for (let i = 0; i < 2; i++) {
      const p = await rtmpProbe(rtmp, 'static', 'tv', { ms: 2500 });
      assert.ok(p.mediaMessages > 20, `viewer ${i} got ${p.mediaMessages} media messages`);
    }
  },
);

test('workers: SIGTERM stops every worker and the primary exits 0', { skip, timeout: 30_000 }, async () => {
  const pids = lines()
    .filter((l) => l.msg === 'worker ready' || l.msg === 'worker restarted')
    .map((l) => l.pid as number);
  const code = await server.stop();
  assert.equal(code, 0);
  const alive = pids.filter((pid) => {
    try {
      process.kill(pid, 0);
      return true;
    } catch {
      return false;
    }
  });
  assert.deepEqual(alive, []);
  assert.equal(lines().filter((l) => l.msg === 'worker stopping').length, 2);
});
