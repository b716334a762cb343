/** `POST /api/tokens` (SPEC §8, AUTH-SPEC §7.5): an ADM1 token for the admin UI, 405 when disabled. */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer, request } from 'node:http';
import type { AddressInfo } from 'node:net';
import { test, type TestContext } from 'node:test';
import { registerTokenRoutes } from '../../../src/api/tokens-api.js';
import { FakeClock } from '../../../src/clock.js';
import { DEFAULT_LIMITS, type Limits } from '../../../src/core/limits.js';
import { HttpRouter } from '../../../src/http/router.js';
import { AdminView } from '../../../src/tokens/admin-view.js';

async function api(
  t: TestContext,
  adminView: AdminView,
  cfg: { adminViewDisabled: boolean; limits?: Limits },
) {
  const router = new HttpRouter();
  registerTokenRoutes(router, adminView, () => ({ limits: DEFAULT_LIMITS, ...cfg }));
  const srv = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://x');
    const found = router.find(req.method ?? 'GET', url.pathname);
    if ('handler' in found) void found.handler(req, res, { url, params: found.params, ip: '127.0.0.1' });
    else res.writeHead(found.methodMismatch ? 405 : 404).end();
  });
  srv.listen(0, '127.0.0.1');
  await once(srv, 'listening');
  t.after(() => {
    srv.closeAllConnections();
    srv.close();
  });
  const base = `http://127.0.0.1:${(srv.address() as AddressInfo).port}/api/tokens`;
  const call = async (body?: string, method = 'POST') => {
    const res = await fetch(base, {
      method,
      ...(body !== undefined ? { body, headers: { 'content-type': 'application/json' } } : {}),
    });
    const text = await res.text();
    return {
      status: res.status,
      body: text === '' ? undefined : (JSON.parse(text) as Record<string, unknown>),
    };
  };
  return Object.assign(call, { base });
}

test('POST /api/tokens {"kind":"admin"} → a verifying ADM1 token; empty body means admin', async (t) => {
  const clock = new FakeClock();
  const av = new AdminView({ clock, env: {} });
  const cfg = { adminViewDisabled: false };
  const call = await api(t, av, cfg);
  const r = await call('{"kind":"admin"}');
  assert.equal(r.status, 200);
  const token = String(r.body?.['token']);
  assert.match(token, /^ADM1-\d+-[0-9a-f]{40}$/);
  assert.equal(r.body?.['expires_at'], clock.now() / 1000 + 6 * 3600);
  assert.equal(av.verify(token, cfg), true);
  assert.equal((await call()).status, 200);
  assert.equal((await call('{"kind":"ks"}')).status, 400);
  assert.equal((await call('not json')).status, 400);
  assert.equal((await call(undefined, 'GET')).status, 405);
});

test('POST /api/tokens → 405 when admin view is disabled (config or environment)', async (t) => {
  const cfgOff = { adminViewDisabled: true };
  assert.equal((await (await api(t, new AdminView({ env: {} }), cfgOff))('{"kind":"admin"}')).status, 405);
  const envOff = new AdminView({ env: { STREAMER_ADMIN_VIEW_DISABLED: 'true' } });
  const r = await (await api(t, envOff, { adminViewDisabled: false }))('{"kind":"admin"}');
  assert.equal(r.status, 405);
  assert.deepEqual(r.body, {
    error: { code: 'admin_view_disabled', message: 'admin view tokens are disabled' },
  });
});

test('POST /api/tokens → 413 for a body over request_body_bytes, declared or streamed', async (t) => {
  const limits = { ...DEFAULT_LIMITS, request_body_bytes: 64 };
  const call = await api(t, new AdminView({ env: {} }), { adminViewDisabled: false, limits });
  const padded = JSON.stringify({ kind: 'admin', pad: 'x'.repeat(100) });
  const r = await call(padded);
  assert.equal(r.status, 413);
  assert.equal((r.body?.['error'] as { code?: string } | undefined)?.code, 'body_too_large');
  assert.equal((await call(JSON.stringify({ kind: 'admin' }))).status, 200, 'a small body is fine');

  // Chunked, so no Content-Length warns the server: the cap holds while reading.
  const status = await new Promise<number>((resolve, reject) => {
    const req = request(call.base, { method: 'POST', agent: false }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on('error', reject);
    req.write('{"kind":"admin","pad":"');
    req.write('x'.repeat(100));
  });
  assert.equal(status, 413);
});

test('POST /api/tokens: a body trickled past request_head_timeout is cut off', async (t) => {
  const limits = { ...DEFAULT_LIMITS, request_head_timeout: 0.2 };
  const call = await api(t, new AdminView({ env: {} }), { adminViewDisabled: false, limits });
  const started = Date.now();
  const outcome = await new Promise<string>((resolve) => {
    const req = request(call.base, { method: 'POST', agent: false }, (res) => {
      res.resume();
      resolve(`status ${res.statusCode}`);
    });
    req.on('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? 'error'));
    req.write('{"kind":');
    const timer = setInterval(() => req.write(' '), 50);
    req.on('close', () => clearInterval(timer));
  });
  assert.equal(outcome, 'ECONNRESET');
  assert.ok(Date.now() - started < 2000);
});
