/**
 * The session manager end to end with real clients and a real HTTP backend on loopback
 * (AUTH-SPEC §4, §5): re-checks, limits, X-Unique, an unavailable backend, and a slow one.
 */
import { test, before, after, beforeEach } from 'node:test';
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { startStreamgate, type RunningStreamgate } from '../helpers/streamgate.js';
import { ffmpegPublish, ffprobePackets, sleep, stopProcess } from '../helpers/clients.js';
import { skipWithout } from '../helpers/tools.js';
import { rtmpProbe } from '../helpers/rtmp-client.js';
import { allowGoodTokens, startBackend, type TestBackend } from '../helpers/backend.js';

const skip = skipWithout(['ffmpeg'], ['ffprobe']);

let server: RunningStreamgate;
let backend: TestBackend;
let pub: ChildProcess;
let rtmp = 0;
let http = 0;

before(async () => {
  if (skip) return;
  backend = await startBackend();
  server = await startStreamgate(`
    template live { prefix live; input publish://; }
    stream paid { input publish://; on_play ${backend.url}; }
  `);
  rtmp = server.ports['rtmp'] ?? 0;
  http = server.ports['http'] ?? 0;
  pub = ffmpegPublish(`rtmp://127.0.0.1:${rtmp}/static/paid`);
  await sleep(1500);
});

after(async () => {
  if (skip) return;
  await stopProcess(pub);
  assert.equal(await server.stop(), 0);
  await backend.close();
});

beforeEach(() => {
  if (backend) backend.handler = allowGoodTokens;
});

test(
  'auth e2e: the backend gets every parameter of AUTH-SPEC §1.3 on new_session',
  { skip, timeout: 30_000 },
  async () => {
    const r = await ffprobePackets(`rtmp://127.0.0.1:${rtmp}/static/paid?token=good-params&x=1`, 1);
    assert.equal(r.code, 0, r.stderr);
    const q = backend.callsFor('good-params')[0];
    assert.ok(q, 'backend was called');
    assert.equal(q.get('name'), 'paid');
    assert.equal(q.get('proto'), 'rtmp');
    assert.equal(q.get('ip'), '127.0.0.1');
    assert.equal(q.get('request_type'), 'new_session');
    assert.equal(q.get('request_number'), '0');
    assert.match(q.get('session_id') ?? '', /^[0-9a-f-]{36}$/);
    assert.equal(q.get('qs'), 'token=good-params&x=1');
    assert.ok(q.has('stream_clients') && q.has('total_clients'));
    assert.match(q.get('user_agent') ?? '', /LNX|Lavf|FMLE/);
  },
);

test(
  'auth e2e: a re-check that denies closes a playing RTMP client without a status message',
  { skip, timeout: 30_000 },
  async () => {
    backend.handler = (q) =>
      q.get('request_type') === 'update_session'
        ? { status: 403 }
        : { status: 200, headers: { 'X-AuthDuration': '2' } };
    const r = await rtmpProbe(rtmp, 'static', 'paid?token=good-recheck', { ms: 8000 });
    assert.ok(r.mediaMessages > 10, `played ${r.mediaMessages} media messages first`);
    assert.equal(r.closedByServer, true, 'socket closed by the server');
    assert.deepEqual(
      r.statuses.map((s) => s.code),
      ['NetStream.Play.Reset', 'NetStream.Play.Start'],
      'no error status on a kill',
    );
    const update = backend.callsFor('good-recheck').find((q) => q.get('request_type') === 'update_session');
    assert.equal(update?.get('request_number'), '1');
    assert.ok(Number(update?.get('bytes')) > 0, 'update carries the bytes sent so far');
  },
);

test(
  'auth e2e: X-Max-Sessions 1 refuses the second player; the first keeps playing',
  { skip, timeout: 30_000 },
  async () => {
    backend.handler = (q) =>
      q.get('token')?.startsWith('good')
        ? { status: 200, headers: { 'X-UserId': 'limited-user', 'X-Max-Sessions': '1' } }
        : { status: 403 };
    const first = rtmpProbe(rtmp, 'static', 'paid?token=good-max-a', { ms: 5000 });
    await sleep(1500);
    const second = await rtmpProbe(rtmp, 'static', 'paid?token=good-max-b', { ms: 1500 });
    assert.deepEqual(
      second.statuses.map((s) => s.code),
      ['NetStream.Play.Failed'],
    );
    assert.equal(second.mediaMessages, 0);
    const a = await first;
    assert.ok(a.mediaMessages > 50, `first player kept playing (${a.mediaMessages} messages)`);
    // The refused identity is banned: a retry is refused without asking the backend again.
    const callsBefore = backend.calls.length;
    const retry = await rtmpProbe(rtmp, 'static', 'paid?token=good-max-b', { ms: 1000 });
    assert.deepEqual(
      retry.statuses.map((s) => s.code),
      ['NetStream.Play.Failed'],
    );
    assert.equal(backend.calls.length, callsBefore, 'banned identity: no backend call');
  },
);

test(
  'auth e2e: X-Unique closes the older device (RTMP socket, HLS 403 next request)',
  { skip, timeout: 40_000 },
  async () => {
    backend.handler = (q) =>
      q.get('token')?.startsWith('good')
        ? { status: 200, headers: { 'X-UserId': 'unique-user', 'X-Unique': 'true' } }
        : { status: 403 };
    const hlsUrl = `http://127.0.0.1:${http}/paid/mono.m3u8?token=good-uniq-hls`;
    let first = await fetch(hlsUrl);
    for (let i = 0; i < 20 && first.status !== 200; i++) {
      await sleep(300);
      first = await fetch(hlsUrl);
    }
    assert.equal(first.status, 200);
    await first.text();
    const older = rtmpProbe(rtmp, 'static', 'paid?token=good-uniq-a', { ms: 6000 });
    await sleep(1500);
    const newer = rtmpProbe(rtmp, 'static', 'paid?token=good-uniq-b', { ms: 2000 });
    const [o, n] = await Promise.all([older, newer]);
    assert.ok(
      n.statuses.some((s) => s.code === 'NetStream.Play.Start'),
      'newest device plays',
    );
    assert.equal(o.closedByServer, true);
    assert.ok(o.mediaMessages > 0);
    const afterKick = await fetch(hlsUrl);
    assert.equal(afterKick.status, 403, 'the kicked HLS device gets 403 on its next request');
  },
);

test(
  'auth e2e: a backend that dies mid-session keeps players playing',
  { skip, timeout: 40_000 },
  async () => {
    const dying = await startBackend((q) =>
      q.get('token')?.startsWith('good')
        ? { status: 200, headers: { 'X-AuthDuration': '1' } }
        : { status: 403 },
    );
    const s2 = await startStreamgate(`stream alive { input fake://fake; on_play ${dying.url}; }`);
    try {
      const playing = ffprobePackets(
        `rtmp://127.0.0.1:${s2.ports['rtmp']}/static/alive?token=good-alive`,
        6,
        30_000,
      );
      await sleep(2500);
      await dying.close();
      const r = await playing;
      assert.equal(r.code, 0, r.stderr);
      const span = (r.videoDts.at(-1) ?? 0) - (r.videoDts[0] ?? 0);
      assert.ok(span >= 5, `played ${span.toFixed(1)} s with the backend gone`);
    } finally {
      await s2.stop();
    }
  },
);

test(
  'auth e2e: a backend that takes 5 s refuses the new session after about 3 s',
  { skip, timeout: 30_000 },
  async () => {
    backend.handler = () => ({ status: 200, delayMs: 5000 });
    const started = Date.now();
    const r = await rtmpProbe(rtmp, 'static', 'paid?token=good-slow', { ms: 8000 });
    const elapsed = Date.now() - started;
    assert.deepEqual(
      r.statuses.map((s) => s.code),
      ['NetStream.Play.Failed'],
    );
    assert.equal(r.mediaMessages, 0);
    assert.ok(elapsed >= 2500 && elapsed < 4500, `refused after ${elapsed} ms`);
    // Meanwhile other clients were not blocked.
  },
);

test(
  'auth e2e: a slow backend does not block clients of other streams',
  { skip, timeout: 30_000 },
  async () => {
    backend.handler = () => ({ status: 200, delayMs: 5000 });
    const slow = rtmpProbe(rtmp, 'static', 'paid?token=good-slow2', { ms: 6000 });
    const other = ffmpegPublish(`rtmp://127.0.0.1:${rtmp}/live/other`);
    try {
      await sleep(1500);
      const started = Date.now();
      const r = await ffprobePackets(`rtmp://127.0.0.1:${rtmp}/live/other`, 1);
      assert.equal(r.code, 0, r.stderr);
      assert.ok(Date.now() - started < 2500, 'the open stream answered while the backend was stuck');
    } finally {
      await stopProcess(other);
      await slow;
    }
  },
);

test(
  'auth e2e: a backend config override replaces the input and the live pipeline follows',
  { skip, timeout: 40_000 },
  async () => {
    const overriding = await startBackend((q) => ({
      status: 200,
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify(
        q.get('token') === 'good-nohls'
          ? { config: { protocols: { hls: false } } }
          : { config: { inputs: [{ url: 'fake://fake' }] } },
      ),
    }));
    const s2 = await startStreamgate(`stream movie { input publish://; on_play ${overriding.url}; }`);
    try {
      // Nobody publishes to `movie`; the backend's override switches it to the test pattern.
      const r = await ffprobePackets(
        `rtmp://127.0.0.1:${s2.ports['rtmp']}/static/movie?token=good-ovr`,
        3,
        30_000,
      );
      assert.equal(r.code, 0, r.stderr);
      assert.ok(r.videoFrames > 20, `played ${r.videoFrames} frames from the overriding input`);
      const hls = `http://127.0.0.1:${s2.ports['http']}/movie/mono.m3u8?token=good-hls`;
      assert.equal((await fetch(hls)).status, 200);
      // Another viewer's grant carries {"protocols":{"hls":false}}: HLS sessions end, RTMP goes on.
      const rtmpViewer = rtmpProbe(s2.ports['rtmp'] ?? 0, 'static', 'movie?token=good-rtmp', { ms: 4000 });
      await sleep(1000);
      const off = await rtmpProbe(s2.ports['rtmp'] ?? 0, 'static', 'movie?token=good-nohls', { ms: 1000 });
      assert.ok(off.statuses.some((s) => s.code === 'NetStream.Play.Start'));
      assert.equal((await fetch(hls)).status, 403, 'HLS gets 403 on its next request');
      const v = await rtmpViewer;
      assert.ok(v.mediaMessages > 50, 'the RTMP viewer kept playing');
    } finally {
      await s2.stop();
      await overriding.close();
    }
  },
);

test(
  'auth e2e: behind a trusted proxy the backend sees the X-Forwarded-For address',
  { skip, timeout: 40_000 },
  async () => {
    const seen = await startBackend(allowGoodTokens);
    const s2 = await startStreamgate(
      `trusted_proxies 127.0.0.1;\nstream px { input fake://fake; on_play ${seen.url}; }`,
    );
    try {
      const url = `http://127.0.0.1:${s2.ports['http']}/px/mpegts?token=good-xff`;
      const res = await fetch(url, { headers: { 'X-Forwarded-For': '203.0.113.7, 127.0.0.1' } });
      assert.equal(res.status, 200);
      await res.body?.cancel();
      assert.equal(seen.callsFor('good-xff')[0]?.get('ip'), '203.0.113.7');
    } finally {
      await s2.stop();
      await seen.close();
    }
  },
);
