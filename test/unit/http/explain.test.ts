/**
 * `POST /api/auth/explain`: from a URL of any protocol and a client address, the extracted
 * request, the identity key admission would compute, the cached state, the refusing check or
 * the exact backend request — without opening a session or calling the backend, unless
 * `?call=true`.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startBackend } from '../../helpers/backend.js';
import { parseTarget } from '../../../src/api/explain-api.js';
import type { Sessions } from '../../../src/sessions/manager.js';
import { startRunning } from './harness.js';

test('parseTarget reads play and publish URLs of every protocol', () => {
  const t = (u: string) => {
    const p = parseTarget(u);
    return [p.proto, p.name, p.token ?? null];
  };
  assert.deepEqual(t('rtmp://h:1935/live/cam1?token=T'), ['rtmp', 'live/cam1', 'T']);
  assert.deepEqual(t('rtmp://h/static/demo?token=T'), ['rtmp', 'demo', 'T']);
  assert.deepEqual(t('rtsp://h:8554/live/cam1?token=T'), ['rtsp', 'live/cam1', 'T']);
  assert.deepEqual(t('http://h:8080/live/cam1/index.m3u8?token=T'), ['hls', 'live/cam1', 'T']);
  assert.deepEqual(t('http://h/demo/mono-17.ts'), ['hls', 'demo', null]);
  assert.deepEqual(t('https://h/live/ks/djJ8MTIz/cam1/index.m3u8'), ['hls', 'live/cam1', 'djJ8MTIz']);
  assert.deepEqual(t('http://h/live/cam1/mpegts?token=T'), ['tshttp', 'live/cam1', 'T']);
  for (const bad of [
    'nope',
    'ftp://h/x',
    'http://h/live/cam1/other.mp4',
    'rtmp://h/static/',
    'http://h/%zz/mpegts',
  ]) {
    assert.throws(() => parseTarget(bad), /./, bad);
  }
});

test('a dry run shows the identity and the exact backend request, and opens nothing', async (t) => {
  const backend = await startBackend();
  t.after(() => backend.close());
  const s = await startRunning(
    t,
    `no_auto_token;\ntemplate live { prefix live; input publish://; on_play ${backend.url} session_keys=name,ip,proto,token bearer=hunter2 site=eu; }`,
  );
  const explain = async (body: unknown, q = '') => {
    const r = await s.call('POST', `/api/auth/explain${q}`, { body });
    assert.equal(r.status, 200, r.text);
    return r.body as Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any
  };
  const e = await explain({ url: 'rtmp://h/live/cam1?token=good1&x=1', ip: '10.1.2.3' });
  assert.deepEqual(e['request'], {
    kind: 'play',
    proto: 'rtmp',
    name: 'live/cam1',
    ip: '10.1.2.3',
    token: 'good1',
    token_hash: e['request'].token_hash,
    qs: 'token=good1&x=1',
  });
  assert.equal(e['would'], 'ask_backend');
  assert.deepEqual(e['identity'].session_keys, ['name', 'ip', 'proto', 'token']);
  const sent = new URL(e['backend_request'].url as string);
  assert.equal(e['backend_request'].method, 'GET');
  assert.equal(sent.origin + sent.pathname, backend.url);
  for (const [k, v] of Object.entries({
    name: 'live/cam1',
    ip: '10.1.2.3',
    proto: 'rtmp',
    token: 'good1',
    request_type: 'new_session',
    site: 'eu',
  })) {
    assert.equal(sent.searchParams.get(k), v, k);
  }
  assert.equal(e['backend_request'].headers.authorization, 'Bearer [redacted]');
  assert.equal(e['backend_called'], false);
  assert.equal(e['session_opened'], false);
  assert.equal(backend.calls.length, 0, 'no backend call without ?call=true');
  assert.equal(((await s.call('GET', '/api/sessions')).body as { total: number }).total, 0);

  // ?call=true asks the backend once and shows its answer; still no session.
  const called = await explain({ url: 'rtmp://h/live/cam1?token=good1', ip: '10.1.2.3' }, '?call=true');
  assert.equal(called['backend_called'], true);
  assert.equal(called['backend_answer'].kind, 'allow');
  assert.equal(backend.calls.length, 1);
  assert.equal(((await s.call('GET', '/api/sessions')).body as { total: number }).total, 0);

  // The identity key is the one admission computes: the real session has it.
  const sessions = s.server.core.sessions as Sessions;
  const real = await sessions.open({
    kind: 'play',
    proto: 'rtmp',
    name: 'live/cam1',
    ip: '10.1.2.3',
    token: 'good1',
    qs: 'token=good1',
    query: new URLSearchParams({ token: 'good1' }),
  });
  assert.ok(real.allow);
  assert.equal(real.session.idKey, called['identity'].id_key);
  const granted = await explain({ url: 'rtmp://h/live/cam1?token=good1', ip: '10.1.2.3' });
  assert.deepEqual(
    granted['cached'].granted.map((g: { session_id: string }) => g.session_id),
    [real.session.id],
  );

  // A denied identity: cached state and the verdict without asking again.
  const bad = {
    kind: 'play' as const,
    proto: 'hls' as const,
    name: 'live/cam1',
    ip: '10.9.9.9',
    token: 'bad',
    qs: 'token=bad',
    query: new URLSearchParams({ token: 'bad' }),
  };
  assert.ok(!(await sessions.open(bad)).allow);
  const calls = backend.calls.length;
  const d = await explain({ url: 'http://h/live/cam1/index.m3u8?token=bad', ip: '10.9.9.9' }, '?call=true');
  assert.deepEqual(d['would'], { decision: 'deny', reason: 'cached_negative' });
  assert.ok(d['cached'].denied_until > Date.now());
  assert.equal(d['cached'].banned_until, null);
  assert.equal(backend.calls.length, calls, 'a cached denial is not re-asked');

  // Local checks that refuse before any backend.
  assert.deepEqual((await explain({ url: 'rtmp://h/nope/x?token=a' }))['would'], {
    decision: 'deny',
    reason: 'stream_not_found',
  });
  assert.deepEqual((await explain({ url: 'rtsp://h/live/cam1' }))['would'], {
    decision: 'deny',
    reason: 'no_token',
  });
  // Publish goes to on_publish; none is set, so it is allowed without a call.
  assert.deepEqual((await explain({ url: 'rtmp://h/live/cam9?token=p', kind: 'publish' }))['would'], {
    decision: 'allow',
    reason: 'no on_play/on_publish',
  });

  for (const [body, code] of [
    [{}, 'url_required'],
    [{ url: 'gopher://h/x' }, 'bad_url'],
    [{ url: 'rtmp://h/live/x', ip: 'nope' }, 'bad_ip'],
    [{ url: 'rtmp://h/live/x', kind: 'watch' }, 'bad_kind'],
  ] as const) {
    const r = await s.call('POST', '/api/auth/explain', { body });
    assert.equal(r.status, 400);
    assert.equal((r.body as { error: { code: string } }).error.code, code);
  }
});

test('a chain shows its rules and the request of each backend in it', async (t) => {
  const s = await startRunning(
    t,
    'auth_backend mw { allow ip 10.0.0.0/8; deny token leaked; backend http://127.0.0.1:9/auth?secret=zz; }\nstream movie { input publish://; on_play auth://mw; }',
  );
  const r = await s.call('POST', '/api/auth/explain', {
    body: { url: 'http://h/movie/index.m3u8?token=abc', ip: '192.0.2.1' },
  });
  assert.equal(r.status, 200);
  const req = (r.body as { backend_request: Record<string, any> }).backend_request; // eslint-disable-line @typescript-eslint/no-explicit-any
  assert.equal(req['type'], 'chain');
  assert.deepEqual(req['rules'], ['allow ip 10.0.0.0/8', 'deny token leaked']);
  assert.equal(req['backends'][0].backend, 'http://127.0.0.1:9/auth');
  assert.match(req['backends'][0].request.url, /^http:\/\/127\.0\.0\.1:9\/auth\?secret=zz&/);
});
