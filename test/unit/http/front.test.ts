/**
 * The HTTP front under hostile clients, in-process on 127.0.0.1 port 0 with the real router,
 * API, admin UI, HLS and HTTP MPEG-TS adapters: forged client addresses, slow and oversized
 * heads, connection floods, malformed escapes, path traversal, overlong stream names, and the
 * access rule of /metrics and /health.
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { connect, type Socket } from 'node:net';
import { request } from 'node:http';
import { createHlsAdapter } from '../../../protocols/hls/index.js';
import { createMpegtsAdapter } from '../../../protocols/mpegts/index.js';
import { registerAdminRoutes } from '../../../src/admin/index.js';
import { registerSessionRoutes } from '../../../src/api/sessions-api.js';
import { registerStreamRoutes } from '../../../src/api/streams-api.js';
import { registerTokenRoutes } from '../../../src/api/tokens-api.js';
import { parseConfig } from '../../../src/config/parse.js';
import type { Config } from '../../../src/config/types.js';
import { limitHits, type LimitName } from '../../../src/core/limits.js';
import { HttpRouter } from '../../../src/http/router.js';
import { pathProblem } from '../../../src/http/bounds.js';
import { createHttpFront } from '../../../src/http/server.js';
import { SqliteHistory } from '../../../src/sessions/history.js';
import { Sessions } from '../../../src/sessions/manager.js';
import { StreamRegistry } from '../../../src/streams/registry.js';
import { AdminView } from '../../../src/tokens/admin-view.js';
import { captureLog, FakeBackend } from '../sessions/helpers.js';

interface Front {
  port: number;
  registry: StreamRegistry;
  backend: FakeBackend;
  /** JSON log lines, for "logged at warn, never error". */
  lines: string[];
}

async function startFront(t: TestContext, extra = ''): Promise<Front> {
  const parsed = parseConfig(
    `http 127.0.0.1:0;\nhistory sqlite://:memory:;\non_play http://backend.test/auth;\ntemplate live { prefix live; input publish://; }\n${extra}`,
    'front.conf',
  );
  if (!('config' in parsed)) throw new Error(JSON.stringify(parsed.errors));
  const config: Config = parsed.config;
  const { log, lines } = captureLog();
  const router = new HttpRouter();
  const registry = new StreamRegistry(config, { log, ffmpeg: 'ffmpeg' });
  const backend = new FakeBackend();
  const history = new SqliteHistory('sqlite://:memory:');
  const manager = new Sessions({
    config,
    policy: (name) => registry.configFor(name),
    log,
    history,
    backendFactory: () => backend,
  });
  const core = { config: () => config, log, registry, sessions: manager, router };
  const adapters = [createHlsAdapter(core), createMpegtsAdapter(core)];
  registerStreamRoutes(router, {
    registry,
    sessions: manager,
    cacheStats: () => manager.cacheStats(),
    reload: () => Promise.resolve({}),
  });
  registerSessionRoutes(router, manager, history);
  registerTokenRoutes(router, new AdminView({ env: {} }), () => config);
  registerAdminRoutes(router);
  const front = createHttpFront(config.http ?? { port: 0 }, router, { config: () => config, log });
  registry.start();
  await front.start();
  t.after(async () => {
    await Promise.allSettled([front.stop(), ...adapters.map((a) => a.stop())]);
    manager.closeAll('server_shutdown');
    await registry.stop();
    manager.close();
    history.close();
  });
  const port = front.address()?.port;
  if (port === undefined) throw new Error('no port');
  return { port, registry, backend, lines };
}

interface Answer {
  status: number;
  body: string;
}

/** One request on its own connection, with the raw path exactly as given (no client-side normalising). */
function ask(
  port: number,
  path: string,
  headers: Record<string, string> = {},
  method = 'GET',
): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, method, headers, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString() }));
    });
    req.on('error', reject);
    req.end();
  });
}

/** Writes raw bytes on a fresh socket; resolves with everything the server sent and when it closed. */
function raw(port: number, write: (s: Socket) => void): Promise<{ text: string; closedAfterMs: number }> {
  return new Promise((resolve) => {
    const started = Date.now();
    const s = connect(port, '127.0.0.1', () => write(s));
    let text = '';
    s.on('data', (d: Buffer) => (text += d.toString('latin1')));
    s.on('error', () => undefined);
    s.on('close', () => resolve({ text, closedAfterMs: Date.now() - started }));
  });
}

const hits = (name: LimitName): number => limitHits().get(name) ?? 0;
const basic = (user: string, pass: string): string =>
  `Basic ${Buffer.from(`${user}:${pass}`).toString('base64')}`;
const levels = (lines: string[], msg: RegExp): number[] =>
  lines
    .map((l) => JSON.parse(l) as { level: number; msg: string })
    .filter((l) => msg.test(l.msg))
    .map((l) => l.level);
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

test('front: a forged X-Forwarded-For cannot pass the loopback rule through a trusted proxy', async (t) => {
  // The proxy is this very host, so every test request comes "through" it.
  const f = await startFront(t, 'trusted_proxies 127.0.0.1;');
  const direct = await ask(f.port, '/api/streams');
  assert.equal(direct.status, 200, 'the proxy host itself is loopback');
  const forged = await ask(f.port, '/api/streams', { 'X-Forwarded-For': '127.0.0.1, 203.0.113.7' });
  assert.equal(forged.status, 403, 'the client wrote 127.0.0.1; the proxy saw 203.0.113.7');
  assert.equal(
    (await ask(f.port, '/api/streams', { 'X-Forwarded-For': '203.0.113.7, 127.0.0.1' })).status,
    403,
  );
  assert.equal((await ask(f.port, '/api/streams', { 'X-Forwarded-For': '::1' })).status, 200);
  assert.equal(
    (await ask(f.port, '/api/streams', { 'X-Forwarded-For': '127.0.0.1, garbage' })).status,
    200,
    'a malformed hop falls back to the peer (loopback here)',
  );
});

test('front: a request head trickled slower than handshake_timeout is cut off', async (t) => {
  const f = await startFront(t, 'limits { handshake_timeout 0.3; request_head_timeout 5; }');
  const before = hits('handshake_timeout');
  const r = await raw(f.port, (s) => {
    s.write('GET /health HTTP/1.1\r\n');
    const timer = setInterval(() => s.writable && s.write('X-Slow: 1\r\n'), 50);
    s.on('close', () => clearInterval(timer));
  });
  assert.ok(r.closedAfterMs >= 250 && r.closedAfterMs < 2000, `closed after ${r.closedAfterMs} ms`);
  assert.equal(r.text, '', 'nothing was answered');
  assert.equal(hits('handshake_timeout'), before + 1);
  // A connection that says nothing at all goes the same way.
  assert.ok((await raw(f.port, () => undefined)).closedAfterMs < 2000);
});

test('front: a later request head on a kept-alive connection gets request_head_timeout (408)', async (t) => {
  const f = await startFront(t, 'limits { handshake_timeout 5; request_head_timeout 0.4; }');
  const before = hits('request_head_timeout');
  const r = await raw(f.port, (s) => {
    s.write('GET /health HTTP/1.1\r\nHost: x\r\n\r\n');
    // The second request starts 100 ms later and never finishes its head.
    setTimeout(() => {
      s.write('GET /health HTTP/1.1\r\nHost: x\r\n');
      const timer = setInterval(() => s.writable && s.write('X-Slow: 1\r\n'), 50);
      s.on('close', () => clearInterval(timer));
    }, 100);
  });
  assert.match(r.text, /^HTTP\/1\.1 200 /, 'the first request was answered');
  assert.match(r.text, /HTTP\/1\.1 408 Request Timeout/);
  assert.ok(r.closedAfterMs < 2500, `closed after ${r.closedAfterMs} ms`);
  assert.equal(hits('request_head_timeout'), before + 1);
});

test('front: a head over request_head_bytes gets 431', async (t) => {
  const f = await startFront(t, 'limits { request_head_bytes 4096; }');
  const before = hits('request_head_bytes');
  const r = await raw(f.port, (s) =>
    s.write(`GET /health HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(5000)}\r\n\r\n`),
  );
  assert.match(r.text, /^HTTP\/1\.1 431 /);
  assert.equal(hits('request_head_bytes'), before + 1);
  assert.equal((await ask(f.port, '/health', { 'X-Fine': 'a'.repeat(3000) })).status, 200);
});

test('front: max_connections_per_ip and max_connections refuse at accept and count the hit', async (t) => {
  const f = await startFront(t, 'limits { max_connections_per_ip 2; }');
  const open: Socket[] = [];
  t.after(() => open.forEach((s) => s.destroy()));
  for (let i = 0; i < 2; i++) {
    const s = connect(f.port, '127.0.0.1');
    open.push(s);
    await new Promise((r) => s.once('connect', r));
  }
  await sleep(50);
  const before = hits('max_connections_per_ip');
  const refused = await raw(f.port, (s) => s.write('GET /health HTTP/1.1\r\nHost: x\r\n\r\n'));
  assert.equal(refused.text, '', 'closed without a byte');
  assert.equal(hits('max_connections_per_ip'), before + 1);
  const warned = levels(f.lines, /too many from this address/);
  assert.deepEqual(warned, [40], 'logged once, at warn');
  await raw(f.port, () => undefined);
  assert.deepEqual(levels(f.lines, /too many from this address/), [40], 'the next one is only counted');
  open.pop()?.destroy();
  await sleep(50);
  assert.equal((await ask(f.port, '/health')).status, 200, 'a freed slot is usable again');

  const g = await startFront(t, 'limits { max_connections 1; }');
  const held = connect(g.port, '127.0.0.1');
  open.push(held);
  await new Promise((r) => held.once('connect', r));
  await sleep(50);
  const beforeAll = hits('max_connections');
  assert.equal((await raw(g.port, (s) => s.write('GET /health HTTP/1.1\r\n\r\n'))).text, '');
  assert.equal(hits('max_connections'), beforeAll + 1);
});

test('front: malformed escapes get 400 logged at warn, never 500 or an error line', async (t) => {
  const f = await startFront(t);
  for (const path of [
    '/api/sessions/%E0%A4%A',
    '/api/streams/%',
    '/live/cam1/ks/%ZZ/index.m3u8',
    '/live/%ff%fe/index.m3u8',
    '/live/cam1/mpegts%',
    '/admin/%C0%AF',
  ]) {
    const r = await ask(f.port, path);
    assert.equal(r.status, 400, path);
  }
  assert.equal(levels(f.lines, /./).filter((l) => l >= 50).length, 0, 'no error-level line');
  assert.ok(levels(f.lines, /bad http request/).includes(40));
  assert.equal(f.backend.calls.length, 0);
  assert.deepEqual(f.registry.list(), []);
});

test('front: malformed request heads get 400, not a crash', async (t) => {
  const f = await startFront(t);
  for (const head of [
    'GET /health HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n',
    'GET /health HTTP/1.1\r\nHost: x\r\nX: a\u0000b\r\n\r\n',
    'GARBAGE\r\n\r\n',
    'GET /he alth HTTP/1.1\r\n\r\n',
  ]) {
    const r = await raw(f.port, (s) => s.write(head));
    assert.match(r.text, /^HTTP\/1\.1 400 /, JSON.stringify(head));
  }
  assert.equal((await ask(f.port, '/health')).status, 200);
  assert.equal(levels(f.lines, /./).filter((l) => l >= 50).length, 0);
});

test('front: traversal never leaves the route (HLS, TS, API, admin)', async (t) => {
  const f = await startFront(t, 'edit_auth admin pw;');
  const auth = { Authorization: basic('admin', 'pw') };
  assert.equal((await ask(f.port, '/api/streams', auth)).status, 200);
  for (const path of [
    '/live/cam1/../../api/streams',
    '/live/cam1/%2e%2e/%2e%2e/api/streams',
    '/live/cam1/.%2E/.%2e/api/streams',
    '/live/..%2f..%2fapi/streams',
    '/live\\..\\..\\api\\streams',
    '/live/cam1/..%5c..%5capi/index.m3u8',
    '/live/cam1%00/index.m3u8',
    '/live/cam1%2f..%2f..%2fetc%2fpasswd/mpegts',
    '/live/./cam1/mpegts',
    '/admin/../admin/admin.js',
    '/admin/%2e%2e/%2e%2e/etc/passwd',
    '/admin/..%2f..%2f..%2fetc%2fpasswd',
    '/api/sessions/..%2F..%2Fhistory',
    '/api/bans/%2e%2e',
    '/api/streams/..%2F..%2Fetc%2Fpasswd',
    '/api/streams/live%2fcam1%00',
    '/%2e%2e/%2e%2e/etc/passwd',
  ]) {
    const r = await ask(f.port, path, auth);
    assert.ok(r.status === 400 || r.status === 404, `${path}: ${r.status}`);
    assert.doesNotMatch(r.body, /root:|"streams"|"sessions"|"history"|<html/i, path);
  }
  assert.equal(f.backend.calls.length, 0, 'no session was asked for');
  assert.deepEqual(f.registry.list(), [], 'no stream was made');
});

test('front: an overlong stream name is refused before any session or stream exists', async (t) => {
  const f = await startFront(t);
  const long = `live/${'a'.repeat(15 * 1024)}`;
  for (const path of [
    `/${long}/index.m3u8`,
    `/${long}/mono.m3u8`,
    `/${long}/mpegts`,
    `/${long}/ks/K/index.m3u8`,
  ]) {
    assert.equal((await ask(f.port, path)).status, 404, path.slice(-20));
  }
  const put = await ask(f.port, `/${long}/mpegts`, { 'Content-Length': '0' }, 'PUT');
  assert.equal(put.status, 404);
  assert.equal(f.backend.calls.length, 0, 'no backend call');
  assert.deepEqual(f.registry.list(), [], 'no stream object');
  // 255 characters is still a name.
  const longest = `live/${'a'.repeat(250)}`;
  assert.equal((await ask(f.port, `/${longest}/mpegts`, {}, 'HEAD')).status, 200);
  assert.equal(f.backend.calls.length, 1);
  assert.deepEqual(
    f.registry.list().map((s) => s.name),
    [longest],
  );
});

test('front: /metrics and /health follow the API rule unless metrics_public', async (t) => {
  const locked = await startFront(t, 'edit_auth admin pw;');
  assert.equal((await ask(locked.port, '/metrics')).status, 401);
  assert.equal((await ask(locked.port, '/health')).status, 401);
  assert.equal((await ask(locked.port, '/metrics', { Authorization: basic('admin', 'nope') })).status, 401);
  const m = await ask(locked.port, '/metrics', { Authorization: basic('admin', 'pw') });
  assert.equal(m.status, 200);
  assert.match(m.body, /streamgate_limit_hits_total\{limit="max_connections"\}/);
  assert.match(m.body, /^streamgate_denial_cache_entries\{kind="ban"\} 0$/m);
  assert.match(m.body, /^streamgate_denial_cache_bytes \d+$/m);
  assert.match(m.body, /^streamgate_rate_limit_tracked_addresses \d+$/m);

  // Loopback only without edit_auth: a client behind a trusted proxy is not loopback.
  const loop = await startFront(t, 'trusted_proxies 127.0.0.1;');
  assert.equal((await ask(loop.port, '/metrics')).status, 200);
  assert.equal((await ask(loop.port, '/metrics', { 'X-Forwarded-For': '203.0.113.7' })).status, 403);
  assert.equal((await ask(loop.port, '/health', { 'X-Forwarded-For': '203.0.113.7' })).status, 403);

  const open = await startFront(t, 'edit_auth admin pw;\nmetrics_public;');
  assert.equal((await ask(open.port, '/metrics')).status, 200);
  assert.equal((await ask(open.port, '/health')).status, 200);
  assert.equal((await ask(open.port, '/api/streams')).status, 401, 'the API stays closed');
});

test('front: an API body over request_body_bytes gets 413 before the route reads it', async (t) => {
  const f = await startFront(t, 'limits { request_body_bytes 100; }');
  const before = hits('request_body_bytes');
  const r = await ask(
    f.port,
    '/api/tokens',
    { 'Content-Length': '1000000', 'Content-Type': 'application/json' },
    'POST',
  );
  assert.equal(r.status, 413);
  assert.equal(hits('request_body_bytes'), before + 1);
});

test('pathProblem: the shapes refused before routing', () => {
  assert.equal(pathProblem('/live/cam1/index.m3u8?token=a%2F..'), undefined, 'the query is not the path');
  assert.equal(pathProblem('/live/cam1/ks/abc%2Fdef/index.m3u8'), undefined, 'an escaped / inside a token');
  assert.equal(pathProblem('http://h:8080/live/cam1/mpegts'), undefined);
  assert.equal(pathProblem('/..'), 'dot segment in the path');
  assert.equal(pathProblem('/a/%2E'), 'dot segment in the path');
  assert.equal(pathProblem('http://h/../x'), 'dot segment in the path');
  assert.equal(pathProblem('/a%5cb'), 'escaped backslash or control byte in the path');
  assert.equal(pathProblem('/a%0d%0aX: y'), 'backslash, space or control byte in the path');
  assert.equal(pathProblem('/a%0d%0a'), 'escaped backslash or control byte in the path');
  assert.equal(pathProblem('/%'), 'malformed percent-escape in the path');
  assert.equal(pathProblem('*'), 'not an absolute path');
});
