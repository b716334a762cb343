/**
 * SessionManager.open(): local checks, caching, reuse and single-flight (AUTH-SPEC §1.1, §3,
 * §7, §8.2; acceptance §12 items 1–3, 10, 13, 14).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { AuthBackend } from '../../../src/auth/backend.js';
import { createBackend } from '../../../src/auth/index.js';
import { identityKey } from '../../../src/sessions/identity.js';
import type { ConfigOverrideResult } from '../../../src/sessions/manager.js';
import { allow, chainConfig, config, denyD, granted, harness, keys, request, spec } from './helpers.js';

test('§12.1: HLS with a token, backend 200 -> one new_session GET, auth duration 180 s', async () => {
  const h = harness();
  const s = granted(
    await h.manager.open(request({ token: 'abc', userAgent: 'curl/7.68.0', referer: 'hey.com' })),
  );
  assert.equal(h.backend.calls.length, 1);
  const { req, ctx } = h.backend.calls[0]!;
  assert.equal(ctx.kind, 'play');
  assert.equal(req.request_type, 'new_session');
  assert.equal(req.request_number, 0);
  assert.equal(req.session_id, s.id);
  assert.match(s.id, /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
  assert.deepEqual(
    { name: req.name, proto: req.proto, ip: req.ip, token: req.token, qs: req.qs },
    { name: 'live/cam1', proto: 'hls', ip: '10.0.0.1', token: 'abc', qs: 'token=abc' },
  );
  assert.equal(req.user_agent, 'curl/7.68.0');
  assert.equal(req.referer, 'hey.com');
  assert.equal(req.stream_clients, 0, 'the session being authorized is not yet counted (A25)');
  assert.equal(req.total_clients, 0);
  assert.equal(h.manager.get(s.id)?.authDurationSec, 180);
  assert.equal(
    s.idKey,
    identityKey(keys('name,ip,proto,token'), {
      name: 'live/cam1',
      ip: '10.0.0.1',
      proto: 'hls',
      token: 'abc',
    }),
  );
  h.manager.close();
});

test('§12.2: concurrent first requests for one identity -> exactly one backend call, one session', async () => {
  const h = harness();
  h.backend.hang = true;
  const pending = [1, 2, 3, 4].map(() => h.manager.open(request({ token: 'abc' })));
  await h.clock.advance(10);
  assert.equal(h.backend.calls.length, 1);
  h.backend.release(allow());
  const sessions = (await Promise.all(pending)).map(granted);
  assert.equal(new Set(sessions).size, 1);
  assert.equal(h.manager.list().length, 1);
  h.manager.close();
});

test('single-flight holds per identity only: another identity is not blocked by a hanging call', async () => {
  const h = harness();
  h.backend.hang = true;
  const slow = h.manager.open(request({ token: 'slow' }));
  h.backend.hang = false;
  const fast = granted(await h.manager.open(request({ token: 'fast' })));
  assert.equal(fast.token, 'fast');
  await h.clock.advance(3000);
  const d = await slow;
  assert.equal(d.allow, false);
  h.manager.close();
});

test('§12.3: a 403 is cached; a retry within 180 s gets 403 with no backend call', async () => {
  const h = harness();
  h.backend.answer = () => denyD();
  const d1 = await h.manager.open(request({ token: 'abc' }));
  assert.deepEqual(d1, { allow: false, status: 403, reason: 'backend_denied' });
  await h.clock.advance(179_000);
  const d2 = await h.manager.open(request({ token: 'abc' }));
  assert.deepEqual(d2, { allow: false, status: 403, reason: 'cached_negative' });
  assert.equal(h.backend.calls.length, 1);
  await h.clock.advance(1_000);
  await h.manager.open(request({ token: 'abc' }));
  assert.equal(h.backend.calls.length, 2, 'asked again after the TTL');
  h.manager.close();
});

test('HLS reuse: a second open() of a granted identity returns the same session, touched, no call', async () => {
  const h = harness();
  const s1 = granted(await h.manager.open(request({ token: 'abc' })));
  await h.clock.advance(5_000);
  const s2 = granted(await h.manager.open(request({ token: 'abc' })));
  assert.equal(s1, s2);
  assert.equal(h.backend.calls.length, 1);
  assert.equal(h.manager.get(s1.id)?.lastAccessAt, h.clock.now());
  h.manager.close();
});

test('persistent protocols: each connection is its own session even with the same identity', async () => {
  const h = harness();
  const a = granted(await h.manager.open(request({ proto: 'rtmp', token: 'abc' })));
  const b = granted(await h.manager.open(request({ proto: 'rtmp', token: 'abc' })));
  assert.notEqual(a.id, b.id);
  assert.equal(a.idKey, b.idKey);
  assert.equal(h.backend.calls.length, 2);
  h.manager.close();
});

test('§12.10: session_keys=ip,name,proto -> token change keeps the session; default keys -> new one', async () => {
  const h = harness({ policy: { onPlay: spec('http://b/auth', { sessionKeys: keys('ip,name,proto') }) } });
  const s1 = granted(await h.manager.open(request({ token: 't1' })));
  const s2 = granted(await h.manager.open(request({ token: 't2' })));
  assert.equal(s1, s2);
  assert.equal(h.backend.calls.length, 1);
  h.manager.close();

  const d = harness();
  const a = granted(await d.manager.open(request({ token: 't1' })));
  const b = granted(await d.manager.open(request({ token: 't2' })));
  assert.notEqual(a, b);
  assert.equal(d.backend.calls.length, 2);
  d.manager.close();
});

test('§12.13: no token -> one is generated, sent to the backend, and later requests with it reuse', async () => {
  const h = harness();
  const s = granted(await h.manager.open(request({})));
  assert.match(s.token, /^[A-Za-z0-9_-]{22}$/);
  assert.equal(h.backend.calls[0]!.req.token, s.token);
  const again = granted(await h.manager.open(request({ token: s.token })));
  assert.equal(again, s);
  assert.equal(h.backend.calls.length, 1);
  h.manager.close();
});

test('§12.14: no token with no_auto_token -> 403 without a backend call', async () => {
  const h = harness({ config: { noAutoToken: true } });
  assert.deepEqual(await h.manager.open(request({})), { allow: false, status: 403, reason: 'no_token' });
  assert.deepEqual(await h.manager.open(request({ token: '' })), {
    allow: false,
    status: 403,
    reason: 'no_token',
  });
  assert.equal(h.backend.calls.length, 0);
  h.manager.close();
});

test('unknown stream -> 404 stream_not_found', async () => {
  const h = harness();
  assert.deepEqual(await h.manager.open(request({ name: 'nope', token: 'a' })), {
    allow: false,
    status: 404,
    reason: 'stream_not_found',
  });
  h.manager.close();
});

test('protocol switched off -> 403 without a backend call (§8.2)', async () => {
  const h = harness({
    policy: { onPlay: spec('http://b/auth'), protocols: { whitelist: false, flags: { hls: false } } },
  });
  assert.deepEqual(await h.manager.open(request({ token: 'a' })), {
    allow: false,
    status: 403,
    reason: 'protocol_disabled',
  });
  granted(await h.manager.open(request({ proto: 'rtmp', token: 'a' })));
  assert.equal(h.backend.calls.length, 1);
  h.manager.close();
});

test('publish password: checked before on_publish, constant-time; wrong -> wrong_password (§7.3)', async () => {
  const h = harness({ policy: { onPublish: spec('http://b/pub'), password: 'p1' } });
  const pub = (qs: string) => request({ kind: 'publish', proto: 'rtmp', qs, query: new URLSearchParams(qs) });
  assert.deepEqual(await h.manager.open(pub('')), { allow: false, status: 403, reason: 'wrong_password' });
  assert.deepEqual(await h.manager.open(pub('password=p2')), {
    allow: false,
    status: 403,
    reason: 'wrong_password',
  });
  assert.equal(h.backend.calls.length, 0);
  granted(await h.manager.open(pub('password=p1')));
  assert.equal(h.backend.calls.length, 1);
  assert.equal(h.backend.calls[0]!.ctx.kind, 'publish');
  h.manager.close();
});

test('publish password proved without sending it (RTMP authmod=adobe): the proof is asked with the stream password; no password, no login', async () => {
  const h = harness({ policy: { onPublish: spec('http://b/pub'), password: 'p1' } });
  const asked: string[] = [];
  const proof = (ok: boolean) => (password: string) => (asked.push(password), ok);
  const pub = (ok: boolean) =>
    request({
      kind: 'publish',
      proto: 'rtmp',
      qs: 'user=alice',
      query: new URLSearchParams('user=alice'),
      passwordProof: proof(ok),
    });
  assert.deepEqual(await h.manager.open(pub(false)), { allow: false, status: 403, reason: 'wrong_password' });
  granted(await h.manager.open(pub(true)));
  assert.deepEqual(asked, ['p1', 'p1']);
  assert.equal(h.backend.calls.length, 1, 'on_publish still runs after the password');
  h.manager.close();
  const open = harness({ policy: { onPublish: spec('http://b/pub') } });
  assert.deepEqual(await open.manager.open(pub(true)), {
    allow: false,
    status: 403,
    reason: 'wrong_password',
  });
  open.manager.close();
});

test('domain lock runs before the backend and is not cached (§7.1, §12.26)', async () => {
  const h = harness({ policy: { onPlay: spec('http://b/auth', { domains: ['example.com'] }) } });
  assert.deepEqual(await h.manager.open(request({ token: 'a', referer: 'https://evil.com/' })), {
    allow: false,
    status: 403,
    reason: 'domain_denied',
  });
  assert.equal(h.backend.calls.length, 0);
  granted(await h.manager.open(request({ token: 'a', referer: 'https://www.example.com/p' })));
  granted(await h.manager.open(request({ token: 'b' })));
  assert.equal(h.backend.calls.length, 2);
  h.manager.close();
});

test('on_play true and no on_play at all -> allow without a backend call, still a session', async () => {
  for (const policy of [{ onPlay: spec('true') }, {}]) {
    const h = harness({ policy });
    const s = granted(await h.manager.open(request({ token: 'a' })));
    assert.equal(h.backend.calls.length, 0);
    s.close('client_closed');
    assert.equal(h.history.query({}).length, 1);
    h.manager.close();
  }
});

test('a global on_play applies to streams that set none', async () => {
  const h = harness({ policy: {}, config: { onPlay: spec('http://global/auth') } });
  granted(await h.manager.open(request({ token: 'a' })));
  assert.equal(h.backend.calls.length, 1);
  h.manager.close();
});

test('302 -> redirect with Location, no session, nothing cached (§2.4, §12.20)', async () => {
  const h = harness();
  h.backend.answer = () => ({ kind: 'redirect', location: 'http://cdn2/x/index.m3u8' });
  assert.deepEqual(await h.manager.open(request({ token: 'a' })), {
    allow: false,
    status: 302,
    reason: 'redirect',
    location: 'http://cdn2/x/index.m3u8',
  });
  await h.manager.open(request({ token: 'a' }));
  assert.equal(h.backend.calls.length, 2);
  assert.equal(h.manager.list().length, 0);
  h.manager.close();
});

test('config override in a grant goes to onConfigOverride; an override that disables the protocol refuses', async () => {
  const h = harness();
  h.backend.answer = () => allow({ config: { inputs: [{ url: 'fake://fake' }] } });
  granted(await h.manager.open(request({ token: 'a' })));
  assert.deepEqual(h.overrides, [{ name: 'live/cam1', partial: { inputs: [{ url: 'fake://fake' }] } }]);

  // The stream applies the override synchronously: HLS is off from now on.
  const off = { onPlay: spec('http://b/auth'), protocols: { whitelist: false, flags: { hls: false } } };
  const g = harness({
    override: (n) => {
      g.policies.set(n, off);
      return { ok: true, changed: true, closedProtocols: ['hls'] };
    },
  });
  g.backend.answer = () => allow({ config: { protocols: { hls: false } } });
  assert.deepEqual(await g.manager.open(request({ token: 'a' })), {
    allow: false,
    status: 403,
    reason: 'protocol_disabled',
  });
  h.manager.close();
  g.manager.close();
});

test("an override that switches a protocol off closes that protocol's open sessions", async () => {
  let result: ConfigOverrideResult | undefined = undefined;
  const h = harness({ override: () => result });
  const rtmp = granted(await h.manager.open(request({ proto: 'rtmp', token: 'a' })));
  const hls = granted(await h.manager.open(request({ proto: 'hls', token: 'b' })));
  const killed: string[] = [];
  rtmp.onKill((r) => killed.push(r));
  result = { ok: true, changed: true, closedProtocols: ['rtmp'] };
  h.backend.answer = () => allow({ config: { protocols: { rtmp: false } } });
  granted(await h.manager.open(request({ proto: 'hls', token: 'c' })));
  assert.deepEqual(killed, ['config_changed']);
  assert.equal(rtmp.closed, true);
  assert.equal(hls.closed, false);
  h.manager.close();
});

test('a refused or throwing override does not turn the grant into a deny (§2.3)', async () => {
  const refused = harness({
    override: () => ({ ok: false, error: "override key 'bogus' is not supported" }),
  });
  refused.backend.answer = () => allow({ config: { bogus: 1 } });
  granted(await refused.manager.open(request({ token: 'a' })));
  assert.ok(refused.lines.some((l) => l.includes('"event":"config_override_refused"')));
  refused.manager.close();

  const throwing = harness({
    override: () => {
      throw new Error('unknown key bogus');
    },
  });
  throwing.backend.answer = () => allow({ config: { bogus: 1 } });
  granted(await throwing.manager.open(request({ token: 'a' })));
  throwing.manager.close();
});

test('embedded default: auth://loopback_publish without backends allows loopback only', async () => {
  const cfg = config({
    authBackends: new Map([
      [
        'loopback_publish',
        chainConfig('loopback_publish', [
          ['allow', 'ip', '127.0.0.1/8'],
          ['allow', 'ip', '::1'],
        ]),
      ],
    ]),
  });
  const h = harness({
    policy: { onPublish: spec('auth://loopback_publish') },
    config: cfg,
    backends: (s): AuthBackend => createBackend(s, cfg),
  });
  const pub = (ip: string) => request({ kind: 'publish', proto: 'rtmp', ip, token: 'k' });
  for (const ip of ['127.0.0.1', '::1', '::ffff:127.0.0.1', '127.9.9.9']) {
    granted(await h.manager.open(pub(ip)));
  }
  for (const ip of ['10.0.0.1', '::ffff:10.0.0.1', '2001:db8::1', '192.168.1.1']) {
    const d = await h.manager.open(pub(ip));
    assert.equal(d.allow, false, ip);
    if (!d.allow) assert.equal(d.status, 403);
  }
  h.manager.close();
});
