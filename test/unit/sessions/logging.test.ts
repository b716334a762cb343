/** Raw tokens, bearers and passwords never reach the logs (SPEC §7); denials are aggregated. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { FakeClock } from '../../../src/clock.js';
import { DEFAULT_LIMITS } from '../../../src/core/limits.js';
import { tokenHash } from '../../../src/core/secrets.js';
import { DENIAL_LOG_INTERVAL_MS, DenialLog, MAX_TRACKED_KEYS } from '../../../src/sessions/denial-log.js';
import { allow, captureLog, denyD, granted, harness, request, spec, unavailable } from './helpers.js';

const TOKEN = 'Sup3rSecretToken-4242';

test('logs carry token_hash for open, close, denial and ban lines, never the token, bearer or password', async () => {
  const h = harness({
    policy: {
      onPlay: spec('http://b/auth?secret=xyz-extra', {
        bearer: 'BearerSecret99',
        extra: { k: 'ExtraSecret77' },
      }),
      onPublish: spec('http://b/pub'),
      password: 'PublishPass55',
    },
  });
  h.backend.answer = () => allow({ userId: 'u1', unique: true });
  const a = granted(await h.manager.open(request({ proto: 'rtmp', token: TOKEN })));
  granted(await h.manager.open(request({ proto: 'hls', token: TOKEN })));
  assert.equal(a.closed, true, 'banned by unique');
  h.backend.answer = () => denyD();
  await h.manager.open(request({ token: TOKEN, name: 'live/cam2' }));
  await h.manager.open(request({ token: TOKEN, name: 'live/cam2' }));
  h.backend.answer = () => unavailable();
  await h.manager.open(request({ token: TOKEN, name: 'live/cam3' }));
  await h.manager.open(
    request({
      kind: 'publish',
      proto: 'rtmp',
      token: TOKEN,
      qs: 'password=wrong',
      query: new URLSearchParams('password=wrong'),
    }),
  );
  h.manager.closeAll('server_shutdown');
  const text = h.lines.join('\n');
  for (const secret of [TOKEN, 'BearerSecret99', 'ExtraSecret77', 'xyz-extra', 'PublishPass55']) {
    assert.ok(!text.includes(secret), `log leaks ${secret}`);
  }
  const events = h.lines.map((l) => JSON.parse(l) as { event?: string; token_hash?: string });
  for (const ev of ['session_open', 'session_close', 'session_denied', 'session_ban']) {
    const e = events.find((x) => x.event === ev);
    assert.ok(e, ev);
    assert.equal(e.token_hash, tokenHash(TOKEN), ev);
  }
  h.manager.close();
});

type Line = { event?: string; reason?: string; ip?: string; count?: number; detail?: string };
const parsed = (lines: string[]): Line[] => lines.map((l) => JSON.parse(l) as Line);
const denialLines = (lines: string[]): Line[] =>
  parsed(lines).filter((l) => l.event === 'session_denied' || l.event === 'session_denied_repeated');

test('repeated denials (same reason, same address) are logged once, then as a count per interval', async () => {
  const h = harness();
  h.backend.answer = () => denyD();
  for (let i = 0; i < 10; i++) await h.manager.open(request({ token: TOKEN }));
  await h.manager.open(request({ token: TOKEN, ip: '10.9.9.9' }));
  assert.deepEqual(
    denialLines(h.lines).map((l) => [l.event, l.reason, l.ip]),
    [
      ['session_denied', 'backend_denied', '10.0.0.1'],
      ['session_denied', 'cached_negative', '10.0.0.1'],
      ['session_denied', 'backend_denied', '10.9.9.9'],
    ],
    'the first of each burst at once, in full',
  );
  await h.clock.advance(DENIAL_LOG_INTERVAL_MS);
  const summary = denialLines(h.lines).slice(3);
  assert.deepEqual(
    summary.map((l) => [l.event, l.reason, l.ip, l.count]),
    [['session_denied_repeated', 'cached_negative', '10.0.0.1', 8]],
  );
  // A burst that goes on is summarized again; one that stopped is forgotten.
  await h.manager.open(request({ token: TOKEN }));
  await h.clock.advance(DENIAL_LOG_INTERVAL_MS);
  assert.deepEqual(
    denialLines(h.lines)
      .slice(4)
      .map((l) => [l.event, l.count]),
    [['session_denied_repeated', 1]],
  );
  await h.clock.advance(2 * DENIAL_LOG_INTERVAL_MS);
  await h.manager.open(request({ token: TOKEN }));
  assert.deepEqual(
    denialLines(h.lines)
      .slice(5)
      .map((l) => [l.event, l.reason]),
    [['session_denied', 'cached_negative']],
    'after a quiet interval the next denial is a first one again',
  );
  h.manager.close();
});

test('10 000 bad tokens from one address: two full lines and two count lines, not 10 000', async () => {
  const h = harness();
  h.backend.answer = () => denyD();
  for (let i = 0; i < 10_000; i++) await h.manager.open(request({ token: `bad-${i}` }));
  await h.clock.advance(DENIAL_LOG_INTERVAL_MS);
  const burst = DEFAULT_LIMITS.new_sessions_per_ip_burst;
  assert.deepEqual(
    denialLines(h.lines).map((l) => [l.event, l.reason, l.count]),
    [
      ['session_denied', 'backend_denied', undefined],
      ['session_denied', 'rate_limited', undefined],
      ['session_denied_repeated', 'backend_denied', burst - 1],
      ['session_denied_repeated', 'rate_limited', 10_000 - burst - 1],
    ],
  );
  h.manager.close();
});

test('a backend detail is its own key; pending counts are written on close', async () => {
  const h = harness();
  let word = 'jwt_expired';
  h.backend.answer = () => ({ kind: 'deny', status: 403, authDurationSec: 180, reason: word });
  await h.manager.open(request({ token: 'a' }));
  await h.manager.open(request({ token: 'b' }));
  word = 'NO_PRIVILEGE';
  await h.manager.open(request({ token: 'c' }));
  h.manager.close();
  assert.deepEqual(
    denialLines(h.lines).map((l) => [l.event, l.detail, l.count]),
    [
      ['session_denied', 'jwt_expired', undefined],
      ['session_denied', 'NO_PRIVILEGE', undefined],
      ['session_denied_repeated', 'jwt_expired', 1],
    ],
  );
});

test('past MAX_TRACKED_KEYS new addresses are counted under ip "*", with no full line', async () => {
  const { log, lines } = captureLog();
  const clock = new FakeClock();
  const denials = new DenialLog(clock, log);
  const denial = (ip: string) => ({
    kind: 'play',
    name: 'live/cam1',
    proto: 'hls',
    ip,
    idKey: undefined,
    token_hash: undefined,
    reason: 'cached_negative' as const,
  });
  for (let i = 0; i < MAX_TRACKED_KEYS + 50; i++) {
    denials.denied(denial(`10.${i >> 16}.${(i >> 8) & 255}.${i & 255}`));
  }
  await clock.advance(DENIAL_LOG_INTERVAL_MS);
  const out = denialLines(lines);
  assert.equal(out.filter((l) => l.event === 'session_denied').length, MAX_TRACKED_KEYS);
  assert.deepEqual(
    out.filter((l) => l.event === 'session_denied_repeated').map((l) => [l.ip, l.count]),
    [['*', 50]],
  );
  denials.close();
});
