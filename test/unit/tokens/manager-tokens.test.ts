/**
 * The token verifiers inside the session manager: a ks:// stream on the manager's FakeClock
 * (acceptance §12.29 end to end: the session is re-verified and closed when the KS expires),
 * and ADM1 admin view tokens (§12.25, AUTH-SPEC §7.5): no backend call, user id admin, never
 * counted against limits, and ordinary tokens once admin view is disabled.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Config } from '../../../src/config/types.js';
import { FakeClock } from '../../../src/clock.js';
import { SqliteHistory } from '../../../src/sessions/history.js';
import { Sessions } from '../../../src/sessions/manager.js';
import type { StreamPolicy } from '../../../src/sessions/types.js';
import { AdminView, mintAdminViewToken } from '../../../src/tokens/admin-view.js';
import { mintKsV2 } from '../../../src/tokens/ks.js';
import { allow, captureLog, config, FakeBackend, granted, request, spec } from '../sessions/helpers.js';

const S = 1000;

function manager(opts: {
  policy: StreamPolicy;
  config?: Partial<Config>;
  backend?: FakeBackend;
  adminView?: AdminView;
  clock?: FakeClock;
}) {
  const clock = opts.clock ?? new FakeClock();
  const history = new SqliteHistory('sqlite://:memory:');
  const { log, lines } = captureLog();
  const m = new Sessions({
    config: config(opts.config),
    policy: (n) => (['stream1', 'stream2', 'live/cam1'].includes(n) ? opts.policy : undefined),
    clock,
    log,
    history,
    ...(opts.backend ? { backendFactory: () => opts.backend as FakeBackend } : {}),
    ...(opts.adminView ? { adminView: opts.adminView } : {}),
  });
  return { m, clock, history, lines };
}

test('§12.29 in the manager: ks://123?secret=s grants stream1 for 60 s, refuses stream2, closes at expiry', async () => {
  const clock = new FakeClock();
  const { m, lines } = manager({ policy: { onPlay: spec('ks://123?secret=s') }, clock });
  const ks = mintKsV2({
    secret: 's',
    partnerId: 123,
    userId: 'u1',
    expirySec: 60,
    privileges: 'sview:stream1',
    now: clock.now(),
  });
  const s = granted(await m.open(request({ name: 'stream1', proto: 'rtmp', token: ks })));
  assert.equal(s.userId, 'u1');
  const killed: string[] = [];
  s.onKill((r) => killed.push(r));
  assert.deepEqual(await m.open(request({ name: 'stream2', proto: 'rtmp', token: ks })), {
    allow: false,
    status: 403,
    reason: 'backend_denied',
    detail: 'NO_PRIVILEGE',
  });
  await clock.advance(59 * S);
  assert.equal(s.closed, false);
  await clock.advance(1 * S);
  assert.equal(s.closed, true);
  assert.deepEqual(killed, ['recheck_denied']);
  assert.ok(
    lines.every((l) => !l.includes(ks)),
    'the KS never reaches the log',
  );
  m.close();
});

test('§12.25: a valid ADM1 token plays without a backend call, as user admin, recorded in history', async () => {
  const clock = new FakeClock();
  const backend = new FakeBackend();
  const adminView = new AdminView({ clock, env: {} });
  const { m, history, lines } = manager({
    policy: { onPlay: spec('http://b/auth'), onPublish: spec('http://b/pub') },
    backend,
    adminView,
    clock,
  });
  const token = adminView.mint({ adminViewDisabled: false })?.token ?? '';
  const s = granted(await m.open(request({ name: 'live/cam1', proto: 'hls', token })));
  assert.equal(backend.calls.length, 0);
  assert.equal(s.userId, 'admin');
  // HLS: the next request of the same identity is the same session.
  assert.equal(granted(await m.open(request({ name: 'live/cam1', proto: 'hls', token }))), s);
  // No re-checks: nothing to ask.
  await clock.advance(600 * S);
  assert.equal(backend.calls.length, 0);
  s.close('client_closed');
  assert.equal(history.query({ user_id: 'admin' }).length, 1);
  assert.ok(lines.every((l) => !l.includes(token)));
  // A bad HMAC is an ordinary token: the backend decides.
  const forged = token.slice(0, -1) + (token.endsWith('0') ? '1' : '0');
  granted(await m.open(request({ name: 'live/cam1', proto: 'rtmp', token: forged })));
  assert.equal(backend.calls.length, 1);
  assert.equal(backend.calls[0]?.req.token, forged);
  // Publishing is not admin *view*.
  await m.open(request({ kind: 'publish', name: 'live/cam1', proto: 'rtmp', token }));
  assert.equal(backend.calls.length, 2);
  m.close();
});

test('§7.5: admin view sessions are never counted against limits (static max_sessions, X-Max-Sessions, X-Unique)', async () => {
  const clock = new FakeClock();
  const backend = new FakeBackend();
  const adminView = new AdminView({ clock, env: {} });
  const { m } = manager({
    policy: { onPlay: spec('http://b/auth', { maxSessions: 1 }) },
    backend,
    adminView,
    clock,
  });
  const token = adminView.mint({ adminViewDisabled: false })?.token ?? '';
  const admins = [];
  for (const ip of ['10.0.0.1', '10.0.0.2', '10.0.0.3']) {
    admins.push(granted(await m.open(request({ name: 'live/cam1', proto: 'rtmp', ip, token }))));
  }
  // A backend that (oddly) names its user `admin` with a limit of 1 and X-Unique still gets one
  // session, and the admin view sessions survive it.
  backend.answer = () => allow({ userId: 'admin', maxSessions: 1 });
  const viewer = granted(await m.open(request({ name: 'live/cam1', proto: 'rtmp', token: 'u-token' })));
  assert.equal(viewer.closed, false);
  backend.answer = () => allow({ userId: 'admin', unique: true });
  granted(await m.open(request({ name: 'live/cam1', proto: 'rtmp', token: 'u2-token' })));
  assert.ok(admins.every((s) => !s.closed));
  assert.equal(viewer.closed, true, 'X-Unique still applies between the backend sessions');
  m.close();
});

test('§12.25 disabled (config or STREAMER_ADMIN_VIEW_DISABLED=true): an ADM1 token is an ordinary token', async () => {
  for (const [cfg, env] of [
    [{ adminViewDisabled: true }, {}],
    [{}, { STREAMER_ADMIN_VIEW_DISABLED: 'true' }],
  ] as const) {
    const clock = new FakeClock();
    const backend = new FakeBackend();
    const adminView = new AdminView({ clock, env, secret: 'x' });
    const { m } = manager({
      policy: { onPlay: spec('http://b/auth') },
      backend,
      adminView,
      clock,
      config: cfg,
    });
    const token = mintAdminViewToken('x', clock.now()).token;
    const s = granted(await m.open(request({ name: 'live/cam1', proto: 'rtmp', token })));
    assert.equal(backend.calls.length, 1);
    assert.equal(backend.calls[0]?.req.token, token);
    assert.equal(s.userId, undefined);
    m.close();
  }
});
