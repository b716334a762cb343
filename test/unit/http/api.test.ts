/**
 * The HTTP API as a contract, against the real composition root: every route answers JSON,
 * errors are `{error:{code,message}}`, lists are paginated, bans and kicks work, the live
 * feed streams JSON snapshots, and access is edit_auth Basic or loopback, with
 * X-Forwarded-For believed only from trusted proxies.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'node:http';
import type { ClientRequest as ApiClientRequest } from '../../../src/sessions/types.js';
import { startRunning, type Running } from './harness.js';

const CONFIG =
  'template live { prefix live; input publish://; }\nstream demo { input publish://; }\nstream other { input publish://; }';

function assertError(r: { status: number; type: string; body: unknown }, status: number, code: string): void {
  assert.equal(r.status, status);
  assert.match(r.type, /^application\/json/);
  const e = (r.body as { error?: { code?: unknown; message?: unknown } }).error;
  assert.equal(e?.code, code);
  assert.equal(typeof e?.message, 'string');
  assert.ok((e?.message as string).length > 0);
}

function play(name: string, token: string, proto: 'rtmp' | 'hls' = 'rtmp'): ApiClientRequest {
  return {
    kind: 'play',
    proto,
    name,
    ip: '127.0.0.1',
    token,
    qs: `token=${token}`,
    query: new URLSearchParams({ token }),
  };
}

async function openSessions(s: Running, n: number): Promise<string[]> {
  const ids: string[] = [];
  for (let i = 0; i < n; i++) {
    const d = await s.server.core.sessions.open(play('demo', `tok${i}`));
    assert.ok(d.allow);
    ids.push(d.session.id);
  }
  return ids;
}

test('every JSON route answers JSON; unknown routes and methods are JSON errors', async (t) => {
  const s = await startRunning(t, CONFIG);
  for (const path of [
    '/api/streams',
    '/api/sessions',
    '/api/history',
    '/api/bans',
    '/api/openapi.json',
    '/health',
  ]) {
    const r = await s.call('GET', path);
    assert.equal(r.status, 200, path);
    assert.match(r.type, /^application\/json/, path);
  }
  assertError(await s.call('GET', '/api/nope'), 404, 'not_found');
  assertError(await s.call('PUT', '/api/sessions'), 405, 'method_not_allowed');
  assertError(await s.call('GET', '/api/streams/nope'), 404, 'stream_not_found');
  assertError(await s.call('GET', '/api/sessions/nope'), 404, 'session_not_found');
  assertError(await s.call('DELETE', '/api/sessions/nope'), 404, 'session_not_found');
  assertError(await s.call('DELETE', '/api/bans/nope'), 404, 'ban_not_found');
  assertError(await s.call('POST', '/api/sessions/reauth'), 400, 'name_required');
  assertError(await s.call('GET', '/api/sessions?proto=ftp'), 400, 'bad_proto');
  assertError(await s.call('GET', '/api/history?from=yesterday'), 400, 'bad_filter');
  assertError(await s.call('POST', '/api/tokens', { body: 'not json' }), 400, 'bad_json');
  assertError(await s.call('POST', '/api/tokens', { body: { kind: 'ks' } }), 400, 'unsupported_kind');
  assertError(await s.call('POST', '/api/config/reload'), 400, 'config_invalid');
  assertError(await s.call('GET', '/api/sessions/%zz'), 400, 'bad_request');
  // Playback refusals stay short plain text (AUTH-SPEC §5.3).
  const hls = await s.call('GET', '/nope/index.m3u8');
  assert.equal(hls.status, 404);
  assert.match(hls.type, /^text\/plain/);
});

test('lists are paginated with limit, offset, total and next_offset', async (t) => {
  const s = await startRunning(t, CONFIG);
  const ids = await openSessions(s, 3);
  const first = (await s.call('GET', '/api/sessions?limit=2')).body as Record<string, unknown>;
  assert.equal((first['sessions'] as unknown[]).length, 2);
  assert.equal(first['total'], 3);
  assert.equal(first['next_offset'], 2);
  const second = (await s.call('GET', '/api/sessions?limit=2&offset=2')).body as Record<string, unknown>;
  assert.deepEqual(
    (second['sessions'] as { id: string }[]).map((x) => x.id),
    [ids[2]],
  );
  assert.equal(second['next_offset'], null);
  assertError(await s.call('GET', '/api/sessions?limit=0'), 400, 'bad_page');
  assertError(await s.call('GET', '/api/streams?limit=x'), 400, 'bad_page');
  assertError(await s.call('GET', '/api/bans?limit=100000'), 400, 'bad_page');
  const streams = (await s.call('GET', '/api/streams?limit=1')).body as Record<string, unknown>;
  assert.equal((streams['streams'] as unknown[]).length, 1);
  assert.equal(streams['total'], 2);
  assert.equal(streams['next_offset'], 1);

  // History: closed sessions, newest first, paged.
  for (const id of ids) assert.equal((await s.call('DELETE', `/api/sessions/${id}`)).status, 204);
  const h1 = (await s.call('GET', '/api/history?limit=2')).body as Record<string, unknown>;
  assert.equal((h1['history'] as unknown[]).length, 2);
  assert.equal(h1['next_offset'], 2);
  const h2 = (await s.call('GET', '/api/history?limit=2&offset=2')).body as Record<string, unknown>;
  assert.equal((h2['history'] as unknown[]).length, 1);
  assert.equal(h2['next_offset'], null);
});

test('POST /api/bans bans the identity and closes the session; DELETE lifts it', async (t) => {
  const s = await startRunning(t, CONFIG);
  const [id] = await openSessions(s, 1);
  assertError(await s.call('POST', '/api/bans', { body: {} }), 400, 'session_id_required');
  assertError(
    await s.call('POST', '/api/bans', { body: { session_id: id, seconds: 0 } }),
    400,
    'bad_seconds',
  );
  assertError(await s.call('POST', '/api/bans', { body: { session_id: 'nope' } }), 404, 'session_not_found');
  const r = await s.call('POST', '/api/bans', { body: { session_id: id, seconds: 60 } });
  assert.equal(r.status, 201);
  const key = (r.body as { id_key: string }).id_key;
  assert.equal(((await s.call('GET', '/api/sessions')).body as { total: number }).total, 0);
  const again = await s.server.core.sessions.open(play('demo', 'tok0'));
  assert.ok(!again.allow && again.reason === 'banned');
  const bans = (await s.call('GET', '/api/bans')).body as { bans: { id_key: string; reason: string }[] };
  assert.deepEqual(
    bans.bans.map((b) => [b.id_key, b.reason]),
    [[key, 'admin_ban']],
  );
  assert.equal((await s.call('DELETE', `/api/bans/${key}`)).status, 204);
  assert.ok((await s.server.core.sessions.open(play('demo', 'tok0'))).allow);
});

test('GET /api/live streams JSON snapshots as Server-Sent Events', async (t) => {
  const s = await startRunning(t, CONFIG);
  await openSessions(s, 1);
  const events = await new Promise<string>((resolve, reject) => {
    const req = request(`${s.base}/api/live`, (res) => {
      assert.equal(res.statusCode, 200);
      assert.match(String(res.headers['content-type']), /^text\/event-stream/);
      let buf = '';
      res.on('data', (d: Buffer) => {
        buf += d.toString();
        // Two snapshots: the first at once, the next on the feed's tick.
        if (buf.split('event: state').length > 2) {
          req.destroy();
          resolve(buf);
        }
      });
    });
    req.on('error', reject);
    req.end();
  });
  const first = /data: (.*)\n/.exec(events)?.[1] ?? '';
  const state = JSON.parse(first) as {
    streams: { name: string; input: { state: string }; viewers: Record<string, number> }[];
    sessions: { name: string; proto: string }[];
    sessions_total: number;
    bans: unknown[];
  };
  assert.deepEqual(state.streams.map((x) => x.name).sort(), ['demo', 'other']);
  assert.equal(state.sessions_total, 1);
  assert.deepEqual(state.streams.find((x) => x.name === 'demo')?.viewers, { rtmp: 1 });
  assert.equal(state.streams.find((x) => x.name === 'demo')?.input.state, 'waiting_for_publisher');
});

test('edit_auth: Basic credentials required, JSON 401 with a challenge', async (t) => {
  const s = await startRunning(t, `edit_auth admin s3cret;\n${CONFIG}`);
  const r = await fetch(`${s.base}/api/sessions`);
  assert.equal(r.status, 401);
  assert.equal(r.headers.get('www-authenticate'), 'Basic realm="streamgate"');
  assert.equal(((await r.json()) as { error: { code: string } }).error.code, 'unauthorized');
  const auth = { authorization: `Basic ${Buffer.from('admin:s3cret').toString('base64')}` };
  assert.equal((await s.call('GET', '/api/sessions', { headers: auth })).status, 200);
  const wrong = { authorization: `Basic ${Buffer.from('admin:x').toString('base64')}` };
  assertError(await s.call('GET', '/api/sessions', { headers: wrong }), 401, 'unauthorized');
  assert.equal((await fetch(`${s.base}/admin/`)).status, 401);
});

test('no edit_auth: loopback only, and X-Forwarded-For counts only from a trusted proxy', async (t) => {
  // Without trusted_proxies a forged header changes nothing: the peer (loopback) is the client.
  const open = await startRunning(t, CONFIG);
  const forged = { 'x-forwarded-for': '203.0.113.9' };
  assert.equal((await open.call('GET', '/api/sessions', { headers: forged })).status, 200);
  // Loopback as a trusted proxy: the forwarded client is remote, so the API refuses it.
  const proxied = await startRunning(t, `trusted_proxies 127.0.0.1;\n${CONFIG}`);
  assertError(await proxied.call('GET', '/api/sessions', { headers: forged }), 403, 'forbidden');
  assert.equal((await proxied.call('GET', '/admin/', { headers: forged })).status, 403);
  assert.equal((await proxied.call('GET', '/metrics', { headers: forged })).status, 403);
  // The rightmost untrusted entry is the client: a loopback address the client wrote first does not help.
  const sneaky = { 'x-forwarded-for': '127.0.0.1, 203.0.113.9' };
  assertError(await proxied.call('GET', '/api/sessions', { headers: sneaky }), 403, 'forbidden');
  const local = { 'x-forwarded-for': '127.0.0.1' };
  assert.equal((await proxied.call('GET', '/api/sessions', { headers: local })).status, 200);
});
