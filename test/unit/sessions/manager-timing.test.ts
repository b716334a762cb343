/**
 * Timing with a fake clock: re-checks (AUTH-SPEC §4.1), the time-out table (§4.2), unavailable
 * and retry (§4.3), update denials (§4.4), the denial cache (§4.5); acceptance §12 items 4–9, 23.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { allow, denyD, granted, harness, request, unavailable } from './helpers.js';

const S = 1000;

test('§4.1: persistent re-check by timer at 180 s by default, with update_session', async () => {
  const h = harness();
  granted(await h.manager.open(request({ proto: 'rtmp', token: 'a' })));
  await h.clock.advance(179 * S);
  assert.equal(h.backend.updates.length, 0);
  await h.clock.advance(1 * S);
  assert.equal(h.backend.updates.length, 1);
  await h.clock.advance(180 * S);
  assert.equal(h.backend.updates.length, 2);
  h.manager.close();
});

test('§12.9: X-AuthDuration 600 -> no re-check before 600 s; the update carries duration, bytes, request_number', async () => {
  const h = harness();
  h.backend.answer = () => allow({ authDurationSec: 600 });
  const s = granted(await h.manager.open(request({ proto: 'rtmp', token: 'a' })));
  s.addBytes(1000);
  s.addBytes(234);
  await h.clock.advance(599 * S);
  assert.equal(h.backend.updates.length, 0);
  await h.clock.advance(1 * S);
  const [u] = h.backend.updates;
  assert.ok(u);
  assert.equal(u.duration, 600);
  assert.equal(u.bytes, 1234);
  assert.equal(u.request_number, 1);
  assert.equal(u.session_id, s.id);
  assert.equal(u.stream_clients, 1, 'an update counts the session itself');
  await h.clock.advance(600 * S);
  assert.equal(h.backend.updates[1]?.request_number, 2);
  h.manager.close();
});

test('§4.1: HLS re-checks on the first request after due, answered from the granted state', async () => {
  const h = harness();
  const s = granted(await h.manager.open(request({ token: 'a' })));
  for (let i = 0; i < 18; i++) {
    await h.clock.advance(10 * S);
    s.touch();
  }
  assert.equal(h.backend.updates.length, 1, 'the touch at 180 s started one re-check');
  h.backend.hang = true;
  for (let i = 0; i < 18; i++) {
    await h.clock.advance(10 * S);
    s.touch();
  }
  const d = await h.manager.open(request({ token: 'a' }));
  assert.equal(granted(d), s, 'answered at once while the re-check hangs');
  assert.equal(h.backend.updates.length, 2);
  h.backend.release(denyD());
  await h.clock.advance(1);
  assert.equal(s.closed, true);
  assert.deepEqual(await h.manager.open(request({ token: 'a' })), {
    allow: false,
    status: 403,
    reason: 'cached_negative',
  });
  h.manager.close();
});

test('§4.2 row 1 / §12.5: a backend that never answers refuses a new session after 3 s', async () => {
  const h = harness();
  h.backend.hang = true;
  let settled = false;
  const p = h.manager.open(request({ token: 'a' })).then((d) => {
    settled = true;
    return d;
  });
  await h.clock.advance(2_999);
  assert.equal(settled, false);
  await h.clock.advance(1);
  assert.deepEqual(await p, { allow: false, status: 403, reason: 'failed_to_open_session' });
  // Nothing is cached: the next attempt asks again.
  h.backend.hang = false;
  granted(await h.manager.open(request({ token: 'a' })));
  h.manager.close();
});

test('§4.2 row 2 / §12.6: a granted session whose re-check times out stays; retry about 10 s later', async () => {
  const h = harness();
  const killed: string[] = [];
  const s = granted(await h.manager.open(request({ proto: 'rtmp', token: 'a' })));
  s.onKill((r) => killed.push(r));
  h.backend.hang = true;
  await h.clock.advance(180 * S);
  assert.equal(h.backend.updates.length, 1);
  await h.clock.advance(3 * S);
  assert.equal(s.closed, false);
  assert.deepEqual(killed, []);
  await h.clock.advance(9 * S);
  assert.equal(h.backend.updates.length, 1);
  await h.clock.advance(1 * S);
  assert.equal(h.backend.updates.length, 2, 'retried 10 s after the failure');
  h.manager.close();
});

test('§4.2 row 3: a denied identity stays denied while the backend is down', async () => {
  const h = harness();
  h.backend.answer = () => denyD();
  await h.manager.open(request({ token: 'a' }));
  h.backend.answer = () => unavailable('timeout');
  await h.clock.advance(60 * S);
  assert.equal((await h.manager.open(request({ token: 'a' }))).allow, false);
  assert.equal(h.backend.calls.length, 1);
  h.manager.close();
});

test('§4.3 / §12.8: 500 on a re-check keeps the session; back-off 10, 20, 40 s; success resets', async () => {
  const h = harness();
  const s = granted(await h.manager.open(request({ proto: 'rtmp', token: 'a' })));
  h.backend.answer = () => unavailable('http5xx');
  await h.clock.advance(180 * S);
  const times = [h.clock.now()];
  for (let i = 0; i < 3; i++) {
    const before = h.backend.updates.length;
    while (h.backend.updates.length === before) await h.clock.advance(1 * S);
    times.push(h.clock.now());
  }
  const gaps = times.slice(1).map((t, i) => (t - times[i]!) / S);
  assert.deepEqual(gaps, [10, 20, 40]);
  assert.equal(s.closed, false);
  const m = h.manager.get(s.id)!;
  assert.equal(m.lastVerifyAt, m.openedAt, 'last_verify does not advance on failure');
  h.backend.answer = () => allow();
  await h.clock.advance(80 * S);
  assert.equal(m.failures, 0);
  const n = h.backend.updates.length;
  await h.clock.advance(179 * S);
  assert.equal(h.backend.updates.length, n, 'back to the 180 s cadence');
  h.manager.close();
});

test('§4.3: a new session while the backend answers 500 is refused and not cached', async () => {
  const h = harness();
  h.backend.answer = () => unavailable('http5xx');
  assert.deepEqual(await h.manager.open(request({ token: 'a' })), {
    allow: false,
    status: 403,
    reason: 'failed_to_open_session',
  });
  h.backend.answer = () => allow();
  granted(await h.manager.open(request({ token: 'a' })));
  h.manager.close();
});

test('§4.3: under an outage HLS requests do not each trigger a call (at most one per 10 s)', async () => {
  const h = harness();
  const s = granted(await h.manager.open(request({ token: 'a' })));
  h.backend.answer = () => unavailable('http5xx');
  for (let i = 0; i < 17; i++) {
    await h.clock.advance(10 * S);
    s.touch();
  }
  await h.clock.advance(10 * S);
  for (let i = 0; i < 40; i++) {
    s.touch();
    await h.manager.open(request({ token: 'a' }));
    await h.clock.advance(500);
  }
  // 20 s of requests every 0.5 s: the first failure, then one retry 10 s later, then 20 s back-off.
  assert.equal(h.backend.updates.length, 2);
  assert.equal(s.closed, false);
  h.manager.close();
});

test('§4.4 / §12.7: an update 403 closes a persistent session through its kill callback', async () => {
  const h = harness();
  const killed: string[] = [];
  const s = granted(await h.manager.open(request({ proto: 'rtmp', token: 'a' })));
  s.onKill((r) => killed.push(r));
  h.backend.answer = () => denyD(30);
  await h.clock.advance(180 * S);
  assert.deepEqual(killed, ['recheck_denied']);
  assert.equal(s.closed, true);
  assert.equal(h.history.query({})[0]?.close_reason, 'recheck_denied');
  // The identity is cached as denied for the 403's X-AuthDuration.
  assert.equal((await h.manager.open(request({ proto: 'rtmp', token: 'a' }))).allow, false);
  await h.clock.advance(30 * S);
  h.backend.answer = () => allow();
  granted(await h.manager.open(request({ proto: 'rtmp', token: 'a' })));
  h.manager.close();
});

test('§12.4: 403 with X-AuthDuration 5 -> asked again after 5 s', async () => {
  const h = harness();
  h.backend.answer = () => denyD(5);
  await h.manager.open(request({ token: 'a' }));
  await h.clock.advance(4_999);
  await h.manager.open(request({ token: 'a' }));
  assert.equal(h.backend.calls.length, 1);
  await h.clock.advance(1);
  await h.manager.open(request({ token: 'a' }));
  assert.equal(h.backend.calls.length, 2);
  h.manager.close();
});

test('§4.5: reauth and kick do not clear the denial cache; DELETE /bans does', async () => {
  const h = harness();
  h.backend.answer = () => denyD();
  const d = await h.manager.open(request({ token: 'a' }));
  assert.equal(d.allow, false);
  const [ban] = h.manager.bans();
  assert.ok(ban);
  assert.equal(h.manager.reauth('live/cam1'), 0);
  assert.equal((await h.manager.open(request({ token: 'a' }))).allow, false);
  assert.equal(h.manager.unban(ban.idKey), true);
  assert.equal(h.manager.unban(ban.idKey), false);
  h.backend.answer = () => allow();
  granted(await h.manager.open(request({ token: 'a' })));
  assert.equal(h.backend.calls.length, 2);
  h.manager.close();
});

test('§12.23: a grant with garbage X-AuthDuration uses the default 180 s', async () => {
  const h = harness();
  h.backend.answer = () => allow({ authDurationSec: 180 });
  const s = granted(await h.manager.open(request({ proto: 'rtmp', token: 'a' })));
  assert.equal(h.manager.get(s.id)?.authDurationSec, 180);
  h.manager.close();
});

test('HLS sessions close after httpSessionTimeout without requests; touches keep them open', async () => {
  const h = harness();
  const s = granted(await h.manager.open(request({ token: 'a' })));
  await h.clock.advance(50 * S);
  s.touch();
  await h.clock.advance(50 * S);
  assert.equal(s.closed, false);
  await h.clock.advance(10 * S);
  assert.equal(s.closed, true);
  assert.equal(h.history.query({})[0]?.close_reason, 'idle_timeout');
  // A later request opens a new session through the backend.
  const again = granted(await h.manager.open(request({ token: 'a' })));
  assert.notEqual(again.id, s.id);
  assert.equal(h.backend.calls.length, 2);
  h.manager.close();
});

test('persistent sessions never idle out', async () => {
  const h = harness();
  const s = granted(await h.manager.open(request({ proto: 'tshttp', token: 'a' })));
  await h.clock.advance(3600 * S);
  assert.equal(s.closed, false);
  h.manager.close();
});

test('an update grant can change the user id and auth duration', async () => {
  const h = harness();
  const s = granted(await h.manager.open(request({ proto: 'rtmp', token: 'a' })));
  h.backend.answer = () => allow({ userId: 'u9', authDurationSec: 30 });
  await h.clock.advance(180 * S);
  assert.equal(s.userId, 'u9');
  assert.equal(h.manager.list({ userId: 'u9' }).length, 1);
  await h.clock.advance(30 * S);
  assert.equal(h.backend.updates.length, 2);
  h.manager.close();
});
