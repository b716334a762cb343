/**
 * Session limits with a fake clock: X-Max-Sessions hard and soft (AUTH-SPEC §5.1), X-Unique
 * (§5.2), and what each kind of client observes (§5.3); acceptance §12 items 15–17.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { allow, granted, harness, request, spec } from './helpers.js';

const S = 1000;

test('§12.15: X-UserId u1, X-Max-Sessions 2: the third stream is refused and banned; the first two play', async () => {
  const h = harness();
  h.backend.answer = () => allow({ userId: 'u1', maxSessions: 2, authDurationSec: 300 });
  const killed: string[] = [];
  const a = granted(await h.manager.open(request({ name: 'live/cam1', proto: 'rtmp', token: 't' })));
  const b = granted(await h.manager.open(request({ name: 'live/cam2', token: 't' })));
  a.onKill((r) => killed.push(r));
  const third = await h.manager.open(request({ name: 'live/cam3', token: 't' }));
  assert.deepEqual(third, { allow: false, status: 403, reason: 'session_limit' });
  assert.equal(a.closed || b.closed, false);
  assert.deepEqual(killed, []);
  // Banned for its auth duration (300 s): no backend call until then.
  const calls = h.backend.calls.length;
  assert.deepEqual(await h.manager.open(request({ name: 'live/cam3', token: 't' })), {
    allow: false,
    status: 403,
    reason: 'banned',
  });
  assert.equal(h.backend.calls.length, calls);
  const ban = h.lines
    .map((l) => JSON.parse(l) as { msg: string })
    .find((l) => l.msg.startsWith('Ban session_id'));
  assert.match(
    ban?.msg ?? '',
    /^Ban session_id [0-9a-f]{40} for user_id u1 and token_hash [0-9a-f]{12} due to exceeded session limit$/,
  );
  // An RTMP third session is refused the same way (the adapter turns it into a fail).
  assert.equal(
    (await h.manager.open(request({ name: 'live/cam3', proto: 'rtmp', token: 't' }))).allow,
    false,
  );
  h.manager.close();
});

test('§5.1: sessions without a user id are never counted', async () => {
  const h = harness();
  h.backend.answer = () => allow({ maxSessions: 1 });
  for (const n of ['live/cam1', 'live/cam2', 'live/cam3']) {
    granted(await h.manager.open(request({ name: n, token: 't' })));
  }
  h.manager.close();
});

test('§5.1: the static max_sessions of the spec applies when the backend sends none; the header overrides it', async () => {
  const h = harness({ policy: { onPlay: spec('http://b/auth', { maxSessions: 1 }) } });
  h.backend.answer = () => allow({ userId: 'u1' });
  granted(await h.manager.open(request({ name: 'live/cam1', token: 't' })));
  assert.equal((await h.manager.open(request({ name: 'live/cam2', token: 't' }))).allow, false);
  h.backend.answer = () => allow({ userId: 'u2', maxSessions: 2 });
  granted(await h.manager.open(request({ name: 'live/cam1', token: 'x' })));
  granted(await h.manager.open(request({ name: 'live/cam2', token: 'x' })));
  h.manager.close();
});

test('§5.1: an update that lowers X-Max-Sessions bans the newest sessions over the new limit', async () => {
  const h = harness();
  h.backend.answer = () => allow({ userId: 'u1', maxSessions: 3 });
  const killed: string[] = [];
  const ss = [];
  for (const n of ['live/cam1', 'live/cam2', 'live/cam3']) {
    const s = granted(await h.manager.open(request({ name: n, proto: 'rtmp', token: 't' })));
    s.onKill((r) => killed.push(`${n}:${r}`));
    ss.push(s);
    await h.clock.advance(S);
  }
  h.backend.answer = () => allow({ userId: 'u1', maxSessions: 1 });
  await h.clock.advance(180 * S);
  assert.deepEqual(killed.sort(), ['live/cam2:session_limit', 'live/cam3:session_limit']);
  assert.equal(ss[0]!.closed, false);
  h.manager.close();
});

test('§12.16: soft_limitation: HLS channel switching A -> B -> C with one token is not banned', async () => {
  const h = harness({ policy: { onPlay: spec('http://b/auth', { softLimitation: true }) } });
  h.backend.answer = () => allow({ userId: 'u1', maxSessions: 1 });
  const a = granted(await h.manager.open(request({ name: 'live/cam1', token: 't' })));
  await h.clock.advance(5 * S);
  granted(await h.manager.open(request({ name: 'live/cam2', token: 't' })));
  await h.clock.advance(5 * S);
  const c = granted(await h.manager.open(request({ name: 'live/cam3', token: 't' })));
  // Only C keeps requesting; A and B idle out within the 90 s grace (HLS involved).
  for (let i = 0; i < 12; i++) {
    await h.clock.advance(10 * S);
    c.touch();
  }
  assert.equal(a.closed, true);
  assert.equal(c.closed, false);
  assert.equal(h.manager.bans().length, 0);
  assert.deepEqual(
    h.history.query({}).map((r) => r.close_reason),
    ['idle_timeout', 'idle_timeout'],
  );
  h.manager.close();
});

test('§5.1 soft: persistent excess sessions are banned after 30 s if still over the limit', async () => {
  const h = harness({ policy: { onPlay: spec('http://b/auth', { softLimitation: true }) } });
  h.backend.answer = () => allow({ userId: 'u1', maxSessions: 1 });
  const a = granted(await h.manager.open(request({ name: 'live/cam1', proto: 'rtmp', token: 't' })));
  await h.clock.advance(S);
  const b = granted(await h.manager.open(request({ name: 'live/cam2', proto: 'rtmp', token: 't' })));
  const killed: string[] = [];
  b.onKill((r) => killed.push(r));
  await h.clock.advance(29 * S);
  assert.equal(b.closed, false);
  await h.clock.advance(1 * S);
  assert.deepEqual(killed, ['session_limit']);
  assert.equal(a.closed, false);
  h.manager.close();
});

test('§5.1 soft: if the excess went away in the grace period nobody is banned', async () => {
  const h = harness({ policy: { onPlay: spec('http://b/auth', { softLimitation: true }) } });
  h.backend.answer = () => allow({ userId: 'u1', maxSessions: 1 });
  const a = granted(await h.manager.open(request({ name: 'live/cam1', proto: 'rtmp', token: 't' })));
  const b = granted(await h.manager.open(request({ name: 'live/cam2', proto: 'rtmp', token: 't' })));
  await h.clock.advance(10 * S);
  a.close('client_closed');
  await h.clock.advance(30 * S);
  assert.equal(b.closed, false);
  assert.equal(h.manager.bans().length, 0);
  h.manager.close();
});

test('§12.17: X-Unique: the second device wins; the RTMP socket closes, HLS gets 403, no reconnect until TTL', async () => {
  const h = harness();
  h.backend.answer = () => allow({ userId: 'u1', unique: true, authDurationSec: 120 });
  const killed: string[] = [];
  const rtmp = granted(await h.manager.open(request({ proto: 'rtmp', ip: '10.0.0.1', token: 'old' })));
  rtmp.onKill((r) => killed.push(r));
  const hls = granted(await h.manager.open(request({ proto: 'hls', ip: '10.0.0.1', token: 'old' })));
  await h.clock.advance(S);
  const winner = granted(await h.manager.open(request({ proto: 'hls', ip: '10.0.0.2', token: 'new' })));
  assert.deepEqual(killed, ['duplicated_user_id']);
  assert.equal(rtmp.closed, true);
  assert.equal(hls.closed, true);
  assert.equal(winner.closed, false);
  assert.deepEqual(await h.manager.open(request({ proto: 'hls', ip: '10.0.0.1', token: 'old' })), {
    allow: false,
    status: 403,
    reason: 'banned',
  });
  assert.equal((await h.manager.open(request({ proto: 'rtmp', ip: '10.0.0.1', token: 'old' }))).allow, false);
  await h.clock.advance(120 * S);
  granted(await h.manager.open(request({ proto: 'rtmp', ip: '10.0.0.1', token: 'old' })));
  h.manager.close();
});

test('A9: X-Unique with X-Max-Sessions 1 -> newest wins (unique takes precedence)', async () => {
  const h = harness();
  h.backend.answer = () => allow({ userId: 'u1', unique: true, maxSessions: 1 });
  const a = granted(await h.manager.open(request({ name: 'live/cam1', proto: 'rtmp', token: 't' })));
  const b = granted(await h.manager.open(request({ name: 'live/cam2', proto: 'rtmp', token: 't' })));
  assert.equal(a.closed, true);
  assert.equal(b.closed, false);
  h.manager.close();
});

test('§5.3: a kill callback registered after the manager ended the session still fires', async () => {
  const h = harness();
  h.backend.answer = () => allow({ userId: 'u1', unique: true });
  const a = granted(await h.manager.open(request({ name: 'live/cam1', proto: 'rtmp', token: 't' })));
  granted(await h.manager.open(request({ name: 'live/cam2', proto: 'rtmp', token: 't' })));
  const got: string[] = [];
  a.onKill((r) => got.push(r));
  assert.deepEqual(got, ['duplicated_user_id']);
  h.manager.close();
});

test('§5.3: a throwing kill callback does not stop the manager', async () => {
  const h = harness();
  h.backend.answer = () => allow({ userId: 'u1', unique: true });
  const a = granted(await h.manager.open(request({ name: 'live/cam1', proto: 'rtmp', token: 't' })));
  a.onKill(() => {
    throw new Error('socket gone');
  });
  granted(await h.manager.open(request({ name: 'live/cam2', proto: 'rtmp', token: 't' })));
  assert.equal(a.closed, true);
  h.manager.close();
});

test('kick closes through the kill callback without banning; closeProtocol and closeAll write history', async () => {
  const h = harness();
  const killed: string[] = [];
  const a = granted(await h.manager.open(request({ proto: 'rtmp', token: 'a' })));
  a.onKill((r) => killed.push(r));
  assert.equal(h.manager.kick(a.id), true);
  assert.equal(h.manager.kick(a.id), false);
  assert.deepEqual(killed, ['kicked']);
  granted(await h.manager.open(request({ proto: 'rtmp', token: 'a' })));
  const hls = granted(await h.manager.open(request({ proto: 'hls', token: 'b' })));
  assert.equal(h.manager.closeProtocol('live/cam1', 'hls', 'config_changed'), 1);
  assert.equal(hls.closed, true);
  h.manager.closeAll('server_shutdown');
  assert.equal(h.manager.list().length, 0);
  assert.deepEqual(
    h.history
      .query({})
      .map((r) => r.close_reason)
      .sort(),
    ['config_changed', 'kicked', 'server_shutdown'],
  );
  h.manager.close();
});

test('counts per stream and protocol; publishers apart', async () => {
  const h = harness();
  granted(await h.manager.open(request({ proto: 'rtmp', token: 'a' })));
  granted(await h.manager.open(request({ proto: 'hls', token: 'b' })));
  granted(await h.manager.open(request({ kind: 'publish', proto: 'rtmp', token: 'c' })));
  assert.deepEqual(h.manager.counts('live/cam1'), {
    total: 2,
    byProto: { rtmp: 1, rtsp: 0, hls: 1, tshttp: 0, mp4: 0 },
    publishers: 1,
  });
  h.manager.close();
});
