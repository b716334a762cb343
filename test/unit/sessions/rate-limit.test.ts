/**
 * The per-address budget of new-session backend calls (`new_sessions_per_ip_burst`,
 * `new_sessions_per_ip_per_second`): over it a client gets 429 `rate_limited` and the backend
 * is not asked; what needs no backend call costs nothing; the bucket map stays bounded.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { DEFAULT_LIMITS, limitHits, type Limits } from '../../../src/core/limits.js';
import { bucketKey, IpRateLimiter } from '../../../src/sessions/rate-limit.js';
import type { Decision } from '../../../src/sessions/types.js';
import { allow, denyD, granted, harness, request, spec } from './helpers.js';

const limits = (over: Partial<Limits>): Limits => ({ ...DEFAULT_LIMITS, ...over });

function refused(d: Decision): Extract<Decision, { allow: false }> {
  if (d.allow) throw new Error('expected a refusal');
  return d;
}

test('10 000 distinct bad tokens from one address: backend calls bounded by the bucket, the rest 429', async () => {
  const h = harness();
  h.backend.answer = () => denyD();
  const { new_sessions_per_ip_burst: burst, new_sessions_per_ip_per_second: rate } = DEFAULT_LIMITS;
  const hitsBefore = limitHits().get('new_sessions_per_ip_per_second') ?? 0;
  const decisions: Decision[] = [];
  for (let i = 0; i < 10_000; i++) {
    decisions.push(await h.manager.open(request({ token: `bad-${i}`, ip: '203.0.113.9' })));
  }
  assert.equal(h.backend.calls.length, burst, 'the burst reaches the backend, nothing more');
  const byReason = new Map<string, number>();
  for (const d of decisions) {
    const r = refused(d);
    byReason.set(r.reason, (byReason.get(r.reason) ?? 0) + 1);
  }
  assert.deepEqual(Object.fromEntries(byReason), { backend_denied: burst, rate_limited: 10_000 - burst });
  const limited = refused(decisions.at(-1)!);
  assert.equal(limited.status, 429);
  assert.equal(limited.retryAfterSec, 1);
  assert.equal(
    (limitHits().get('new_sessions_per_ip_per_second') ?? 0) - hitsBefore,
    10_000 - burst,
    'every refusal is a limit hit in /metrics',
  );

  // Another address has its own budget.
  h.backend.answer = () => allow();
  granted(await h.manager.open(request({ token: 'good', ip: '198.51.100.1', name: 'live/cam2' })));
  assert.equal(h.backend.calls.length, burst + 1);

  // A second later the address has earned `rate` calls back, and only those.
  await h.clock.advance(1000);
  let calls = 0;
  for (let i = 0; i < rate * 2; i++) {
    const before = h.backend.calls.length;
    await h.manager.open(request({ token: `later-${i}`, ip: '203.0.113.9' }));
    calls += h.backend.calls.length - before;
  }
  assert.equal(calls, rate);
  h.manager.close();
});

test('cached denials, HLS reuse and single-flight joins cost no budget', async () => {
  const h = harness({ config: { limits: limits({ new_sessions_per_ip_burst: 2 }) } });
  // A denial, then its cached answers: one backend call.
  h.backend.answer = () => denyD();
  for (let i = 0; i < 5; i++) {
    assert.equal(
      refused(await h.manager.open(request({ token: 'bad' }))).reason,
      i === 0 ? 'backend_denied' : 'cached_negative',
    );
  }
  // A grant, then its HLS requests reuse the session: one more call; the budget is now spent.
  h.backend.answer = () => allow();
  const s = granted(await h.manager.open(request({ token: 'good' })));
  for (let i = 0; i < 5; i++) assert.equal(granted(await h.manager.open(request({ token: 'good' }))), s);
  assert.equal(h.backend.calls.length, 2);
  assert.equal(refused(await h.manager.open(request({ token: 'third' }))).reason, 'rate_limited');

  // Concurrent first requests of one identity share one call and one token of the budget.
  await h.clock.advance(2000);
  h.backend.hang = true;
  const pending = [1, 2, 3, 4].map(() => h.manager.open(request({ token: 'fresh', name: 'live/cam2' })));
  await h.clock.advance(1);
  h.backend.release(allow());
  assert.equal(new Set((await Promise.all(pending)).map(granted)).size, 1);
  h.backend.hang = false;
  granted(await h.manager.open(request({ token: 'fourth', name: 'live/cam3' })));
  assert.equal(
    refused(await h.manager.open(request({ token: 'fifth', name: 'live/cam3' }))).reason,
    'rate_limited',
    'the joins took one token between them',
  );
  h.manager.close();
});

test('a rate-limited request asks again once the bucket has refilled; on_play true is never limited', async () => {
  const h = harness({
    config: { limits: limits({ new_sessions_per_ip_burst: 1, new_sessions_per_ip_per_second: 1 }) },
  });
  granted(await h.manager.open(request({ token: 'a' })));
  const r = refused(await h.manager.open(request({ token: 'b' })));
  assert.deepEqual([r.status, r.reason, r.retryAfterSec], [429, 'rate_limited', 1]);
  await h.clock.advance(1000);
  granted(await h.manager.open(request({ token: 'b' })));
  assert.equal(h.backend.calls.length, 2);

  const free = harness({
    policy: { onPlay: spec('true') },
    config: { limits: limits({ new_sessions_per_ip_burst: 1, new_sessions_per_ip_per_second: 1 }) },
  });
  for (let i = 0; i < 5; i++) granted(await free.manager.open(request({ token: `t${i}`, proto: 'rtmp' })));
  h.manager.close();
  free.manager.close();
});

test('bucket map: refilled buckets are swept, the number of addresses is capped (LRU)', () => {
  const params = () => ({ burst: 2, perSecond: 1 });
  const rl = new IpRateLimiter(params, 3);
  const t = 1_000_000;
  for (const ip of ['10.0.0.1', '10.0.0.2', '10.0.0.3']) assert.equal(rl.take(ip, t), 0);
  assert.equal(rl.take('10.0.0.1', t), 0);
  assert.equal(rl.take('10.0.0.1', t), 1000, 'empty: one token per second');
  assert.equal(rl.size, 3);
  // A fourth address pushes out the least recently used one (10.0.0.2), whose budget restarts.
  assert.equal(rl.take('10.0.0.4', t), 0);
  assert.equal(rl.size, 3);
  assert.equal(rl.take('10.0.0.1', t), 1000, '10.0.0.1 was used last and kept its empty bucket');
  // After a second, 10.0.0.3 and 10.0.0.4 (one token spent) are full again: swept.
  assert.equal(rl.sweep(t + 1000), 2);
  assert.equal(rl.size, 1);
  assert.equal(rl.sweep(t + 2000), 1);
  assert.equal(rl.size, 0);
});

test('IPv6 clients share a bucket per /64', () => {
  assert.equal(bucketKey('2001:db8:1:2:aaaa::1'), bucketKey('2001:db8:1:2:bbbb::2'));
  assert.notEqual(bucketKey('2001:db8:1:2::1'), bucketKey('2001:db8:1:3::1'));
  assert.equal(bucketKey('2001:DB8:1:2:3:4:5:6'), '2001:db8:1:2::/64');
  assert.equal(bucketKey('::1:2:3:4:5:6'), '0:0:1:2::/64');
  assert.equal(bucketKey('192.0.2.1'), '192.0.2.1');
  const rl = new IpRateLimiter(() => ({ burst: 1, perSecond: 1 }));
  assert.equal(rl.take('2001:db8::1', 0), 0);
  assert.ok(rl.take('2001:db8::2', 0) > 0, 'another address of the same /64 shares the budget');
});
