/** The session API routes (SPEC §8) over a real HTTP listener; acceptance §12 item 28. */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { test, type TestContext } from 'node:test';
import { registerSessionRoutes } from '../../../src/api/sessions-api.js';
import { HttpRouter } from '../../../src/http/router.js';
import { allow, denyD, granted, harness, request, type Harness } from './helpers.js';

async function api(
  t: TestContext,
  h: Harness,
): Promise<(method: string, path: string) => Promise<{ status: number; body: unknown }>> {
  const router = new HttpRouter();
  registerSessionRoutes(router, h.manager, h.history);
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
    h.manager.close();
  });
  const base = `http://127.0.0.1:${(srv.address() as AddressInfo).port}`;
  return async (method, path) => {
    const res = await fetch(base + path, { method });
    const text = await res.text();
    return { status: res.status, body: text === '' ? undefined : (JSON.parse(text) as unknown) };
  };
}

test('GET /api/sessions lists open sessions with filters and no raw token', async (t) => {
  const h = harness();
  h.backend.answer = (r) => allow({ userId: r.token === 'a' ? 'u1' : 'u2' });
  const call = await api(t, h);
  granted(await h.manager.open(request({ proto: 'rtmp', token: 'a' })));
  granted(await h.manager.open(request({ proto: 'hls', token: 'b', name: 'live/cam2' })));
  const all = (await call('GET', '/api/sessions')).body as { sessions: Record<string, unknown>[] };
  assert.equal(all.sessions.length, 2);
  assert.ok(!JSON.stringify(all).includes('"token"'));
  assert.ok(all.sessions.every((s) => typeof s['token_hash'] === 'string'));
  const byUser = (await call('GET', '/api/sessions?user_id=u2')).body as { sessions: { name: string }[] };
  assert.deepEqual(
    byUser.sessions.map((s) => s.name),
    ['live/cam2'],
  );
  const byProto = (await call('GET', '/api/sessions?proto=rtmp&name=live/cam1')).body as {
    sessions: unknown[];
  };
  assert.equal(byProto.sessions.length, 1);
  assert.equal((await call('GET', '/api/sessions?proto=ftp')).status, 400);
});

test('DELETE /api/sessions/{id} kicks (204) without banning; unknown -> 404', async (t) => {
  const h = harness();
  const call = await api(t, h);
  const s = granted(await h.manager.open(request({ proto: 'rtmp', token: 'a' })));
  assert.equal((await call('DELETE', `/api/sessions/${s.id}`)).status, 204);
  assert.equal(s.closed, true);
  assert.equal((await call('DELETE', `/api/sessions/${s.id}`)).status, 404);
  granted(await h.manager.open(request({ proto: 'rtmp', token: 'a' })));
  const hist = (await call('GET', '/api/history')).body as { history: { close_reason: string }[] };
  assert.deepEqual(
    hist.history.map((r) => r.close_reason),
    ['kicked'],
  );
});

test('§12.28: POST /api/sessions/reauth?name= with 3 sessions -> estimated_count 3 and 3 updates', async (t) => {
  const h = harness();
  const call = await api(t, h);
  for (const tok of ['a', 'b', 'c']) granted(await h.manager.open(request({ proto: 'rtmp', token: tok })));
  granted(await h.manager.open(request({ proto: 'rtmp', token: 'd', name: 'live/cam2' })));
  const r = await call('POST', '/api/sessions/reauth?name=live/cam1');
  assert.deepEqual(r, { status: 200, body: { estimated_count: 3 } });
  await h.clock.advance(0);
  assert.equal(h.backend.updates.length, 3);
  assert.deepEqual(await call('POST', '/api/sessions/reauth?name=nope'), {
    status: 404,
    body: { error: { code: 'stream_not_found', message: 'no stream nope' } },
  });
  assert.equal((await call('POST', '/api/sessions/reauth')).status, 400);
});

test('GET /api/history filters; DELETE /api/bans/{key} clears a denial', async (t) => {
  const h = harness();
  const call = await api(t, h);
  h.backend.answer = () => denyD();
  await h.manager.open(request({ token: 'x' }));
  const bans = (await call('GET', '/api/bans')).body as { bans: { id_key: string; token_hash: string }[] };
  assert.equal(bans.bans.length, 1);
  const key = bans.bans[0]!.id_key;
  assert.equal((await call('DELETE', `/api/bans/${key}`)).status, 204);
  assert.equal((await call('DELETE', `/api/bans/${key}`)).status, 404);
  h.backend.answer = () => allow({ userId: 'u7' });
  const s = granted(await h.manager.open(request({ token: 'x' })));
  s.close('client_closed');
  const f = (await call('GET', `/api/history?user_id=u7&from=${s.openedAt}`)).body as { history: unknown[] };
  assert.equal(f.history.length, 1);
  const none = (await call('GET', '/api/history?user_id=nobody')).body as { history: unknown[] };
  assert.equal(none.history.length, 0);
  assert.equal((await call('GET', '/api/history?from=garbage')).status, 400);
});
