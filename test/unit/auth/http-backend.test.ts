/**
 * The HTTP backend against real node:http servers on 127.0.0.1 port 0 (AUTH-SPEC §1.2–§2.3),
 * and the manager with a real backend process (samples/auth-backend.mjs): allow and deny,
 * reuse, a backend killed mid-session, and the 3 s deadline against a backend that sleeps 5 s.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { test, type TestContext } from 'node:test';
import { fileURLToPath } from 'node:url';
import type { AuthRequest } from '../../../src/auth/backend.js';
import { HttpBackend, USER_AGENT } from '../../../src/auth/http-backend.js';
import { createBackend } from '../../../src/auth/index.js';
import { SqliteHistory } from '../../../src/sessions/history.js';
import { Sessions } from '../../../src/sessions/manager.js';
import { captureLog, config, granted, request, spec } from '../sessions/helpers.js';

interface Seen {
  method: string;
  url: URL;
  headers: IncomingMessage['headers'];
  body: string;
}

async function server(
  t: TestContext,
  handler: (seen: Seen, res: ServerResponse) => void,
): Promise<{ base: string; seen: Seen[]; connections: () => number; srv: Server }> {
  const seen: Seen[] = [];
  let connections = 0;
  const srv = createServer((req, res) => {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (c: string) => (body += c));
    req.on('end', () => {
      const s = {
        method: req.method ?? '',
        url: new URL(req.url ?? '/', 'http://x'),
        headers: req.headers,
        body,
      };
      seen.push(s);
      handler(s, res);
    });
  });
  srv.on('connection', () => connections++);
  srv.listen(0, '127.0.0.1');
  await once(srv, 'listening');
  t.after(() => {
    srv.closeAllConnections();
    srv.close();
  });
  const port = (srv.address() as AddressInfo).port;
  return { base: `http://127.0.0.1:${port}`, seen, connections: () => connections, srv };
}

const areq = (over: Partial<AuthRequest> = {}): AuthRequest => ({
  name: 'fake',
  proto: 'hls',
  ip: '10.77.0.150',
  request_type: 'new_session',
  request_number: 0,
  session_id: '6217fd62-16da-4206-9da9-0173d7552a14',
  stream_clients: 1,
  total_clients: 2,
  token: '60334b207baa',
  qs: 'token=60334b207baa&x=a b',
  user_agent: 'curl/7.68.0',
  referer: 'http://hey.com/?a=1&b=2',
  host: 'media.example.com',
  ...over,
});

test('http: on_play GET carries every §1.3 parameter, configured query and extras, our User-Agent', async (t) => {
  const s = await server(t, (_s, res) => res.writeHead(200).end());
  const b = new HttpBackend(spec(`${s.base}/auth?static=1`, { extra: { secret: 'xyz' } }), {
    defaultAuthDuration: 180,
  });
  const d = await b.check(areq(), { kind: 'play' });
  assert.deepEqual(d, { kind: 'allow', authDurationSec: 180 });
  const [r] = s.seen;
  assert.ok(r);
  assert.equal(r.method, 'GET');
  assert.equal(r.url.pathname, '/auth');
  const q = Object.fromEntries(r.url.searchParams);
  assert.deepEqual(q, {
    static: '1',
    name: 'fake',
    proto: 'hls',
    ip: '10.77.0.150',
    request_type: 'new_session',
    request_number: '0',
    session_id: '6217fd62-16da-4206-9da9-0173d7552a14',
    stream_clients: '1',
    total_clients: '2',
    token: '60334b207baa',
    qs: 'token=60334b207baa&x=a b',
    user_agent: 'curl/7.68.0',
    referer: 'http://hey.com/?a=1&b=2',
    host: 'media.example.com',
    secret: 'xyz',
  });
  assert.equal(r.headers['user-agent'], USER_AGENT);
  assert.match(USER_AGENT, /^streamgate\/\d+\.\d+\.\d+/);
  assert.equal(r.headers['authorization'], undefined, 'no Authorization without bearer= (A5)');
});

test('http: on_publish POSTs the query and the same fields as JSON; bearer= sends Authorization', async (t) => {
  const s = await server(t, (_s, res) => res.writeHead(200).end());
  const b = new HttpBackend(spec(`${s.base}/pub`, { bearer: 'sekret' }), { defaultAuthDuration: 180 });
  const req = areq({ request_type: 'update_session', request_number: 3, duration: 600, bytes: 1234 });
  await b.check(req, { kind: 'publish' });
  const [r] = s.seen;
  assert.ok(r);
  assert.equal(r.method, 'POST');
  assert.equal(r.headers['content-type'], 'application/json');
  assert.equal(r.headers['authorization'], 'Bearer sekret');
  const body = JSON.parse(r.body) as Record<string, unknown>;
  assert.deepEqual(body, req);
  for (const [k, v] of Object.entries(body)) assert.equal(r.url.searchParams.get(k), String(v), k);
});

test('http: headers and JSON config of a 200 are honoured; 403, 302, 500, 503 map per §2.1', async (t) => {
  let next: (res: ServerResponse) => void = (res) => res.writeHead(200).end();
  const s = await server(t, (_s, res) => next(res));
  const b = new HttpBackend(spec(`${s.base}/auth`), { defaultAuthDuration: 180 });
  next = (res) =>
    res
      .writeHead(200, {
        'X-AuthDuration': '600',
        'X-UserId': ' 100 ',
        'X-Max-Sessions': '2',
        'X-Unique': 'TRUE',
        'Content-Type': 'application/json',
      })
      .end('{"config":{"inputs":[{"url":"fake://fake"}]}}');
  assert.deepEqual(await b.check(areq(), { kind: 'play' }), {
    kind: 'allow',
    authDurationSec: 600,
    userId: '100',
    maxSessions: 2,
    unique: true,
    config: { inputs: [{ url: 'fake://fake' }] },
  });
  next = (res) => res.writeHead(403, { 'x-authduration': '5' }).end('{"errors":[]}');
  assert.deepEqual(await b.check(areq(), { kind: 'play' }), {
    kind: 'deny',
    status: 403,
    authDurationSec: 5,
    reason: 'backend_denied',
  });
  next = (res) => res.writeHead(302, { location: 'http://cdn2/x/index.m3u8' }).end();
  assert.deepEqual(await b.check(areq(), { kind: 'play' }), {
    kind: 'redirect',
    location: 'http://cdn2/x/index.m3u8',
  });
  for (const code of [500, 502, 503, 504]) {
    next = (res) => res.writeHead(code).end();
    assert.deepEqual(await b.check(areq(), { kind: 'play' }), { kind: 'unavailable', reason: 'http5xx' });
  }
  next = (res) =>
    res.writeHead(200, { 'x-authduration': 'abc', 'content-type': 'application/json' }).end('{garbage');
  assert.deepEqual(await b.check(areq(), { kind: 'play' }), { kind: 'allow', authDurationSec: 180 });
  next = (res) => {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end('{"config":{"a":"' + 'x'.repeat(1024 * 1024) + '"}}');
  };
  assert.deepEqual(
    await b.check(areq(), { kind: 'play' }),
    { kind: 'allow', authDurationSec: 180 },
    'body over 1 MiB',
  );
});

test('http: keep-alive: sequential checks reuse pooled connections', async (t) => {
  const s = await server(t, (_s, res) => res.writeHead(200).end('ok'));
  const b = new HttpBackend(spec(`${s.base}/auth`), { defaultAuthDuration: 180 });
  for (let i = 0; i < 20; i++) await b.check(areq(), { kind: 'play' });
  assert.equal(s.seen.length, 20);
  // undici may open a second socket while the first is still being released; never one per call.
  assert.ok(s.connections() <= 2, `${s.connections()} connections`);
});

test('http: connection refused is unavailable', async (t) => {
  const s = await server(t, (_s, res) => res.end());
  const base = s.base;
  s.srv.close();
  await once(s.srv, 'close');
  const b = new HttpBackend(spec(`${base}/auth`), { defaultAuthDuration: 180 });
  assert.deepEqual(await b.check(areq(), { kind: 'play' }), { kind: 'unavailable', reason: 'connect' });
});

function manager(t: TestContext, onPlay: ReturnType<typeof spec>) {
  const cfg = config();
  const history = new SqliteHistory('sqlite://:memory:');
  const m = new Sessions({
    config: cfg,
    policy: (n) => (n === 'live/cam1' ? { onPlay } : undefined),
    log: captureLog().log,
    history,
    backendFactory: (s) => createBackend(s, cfg),
  });
  t.after(() => {
    m.close();
    history.close();
  });
  return m;
}

test('§12.5: a backend that sleeps 5 s refuses a new session in about 3 s; other clients are not blocked', async (t) => {
  const s = await server(t, (seen, res) => {
    if (seen.url.searchParams.get('token') === 'slow') {
      setTimeout(() => res.writeHead(200).end(), 5000).unref();
    } else res.writeHead(200).end();
  });
  const m = manager(t, spec(`${s.base}/auth`));
  const started = Date.now();
  const slow = m.open(request({ token: 'slow' }));
  const fastAt = Date.now();
  granted(await m.open(request({ token: 'fast' })));
  assert.ok(Date.now() - fastAt < 1000, 'another identity is answered while the slow one waits');
  const d = await slow;
  const took = Date.now() - started;
  assert.deepEqual(d, { allow: false, status: 403, reason: 'failed_to_open_session' });
  assert.ok(took >= 2500 && took < 4500, `took ${took} ms`);
});

function spawnSample(t: TestContext): Promise<{ base: string; child: ChildProcess }> {
  const script = fileURLToPath(new URL('../../../samples/auth-backend.mjs', import.meta.url));
  const tokens = fileURLToPath(new URL('../../../samples/tokens.txt', import.meta.url));
  const child = spawn(process.execPath, [script, '0', tokens], { stdio: ['ignore', 'pipe', 'inherit'] });
  t.after(() => {
    if (child.exitCode === null) child.kill('SIGKILL');
  });
  return new Promise((resolve, reject) => {
    let out = '';
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (c: string) => {
      out += c;
      const m = /listening on (http:\/\/[^\s]+)/.exec(out);
      if (m?.[1]) resolve({ base: m[1], child });
    });
    child.on('exit', () => reject(new Error('sample backend exited early')));
  });
}

test('sample backend process: known token allowed, unknown denied, reuse without a second call', async (t) => {
  const { base } = await spawnSample(t);
  const m = manager(t, spec(`${base}/auth`));
  const s = granted(await m.open(request({ token: 't0k3n-alice-1' })));
  assert.equal(s.userId, 'alice');
  assert.equal(m.get(s.id)?.maxSessions, 1);
  assert.deepEqual(await m.open(request({ token: 'nope' })), {
    allow: false,
    status: 403,
    reason: 'backend_denied',
  });
  assert.deepEqual(await m.open(request({ token: '' })), {
    allow: false,
    status: 403,
    reason: 'backend_denied',
  });
  const again = granted(await m.open(request({ token: 't0k3n-alice-1' })));
  assert.equal(again, s);
});

test('sample backend killed mid-session: granted sessions stay granted through a re-check', async (t) => {
  const { base, child } = await spawnSample(t);
  const m = manager(t, spec(`${base}/auth`, { timeoutSec: 1 }));
  const s = granted(await m.open(request({ proto: 'rtmp', token: 't0k3n-bob-2' })));
  const killed: string[] = [];
  s.onKill((r) => killed.push(r));
  child.kill('SIGKILL');
  await once(child, 'exit');
  assert.equal(m.reauth('live/cam1'), 1);
  const ms = m.get(s.id)!;
  await m.recheck(ms);
  while (ms.checking) await new Promise((r) => setTimeout(r, 20));
  assert.equal(ms.failures, 1);
  assert.equal(s.closed, false);
  assert.deepEqual(killed, []);
  assert.equal(m.list().length, 1);
});
