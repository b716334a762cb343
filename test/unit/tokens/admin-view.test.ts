/** ADM1 admin view tokens (AUTH-SPEC §7.5, A23): format, HMAC, 6 h lifetime, disable switches. */
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { test } from 'node:test';
import { FakeClock } from '../../../src/clock.js';
import {
  AdminView,
  adminViewDisabled,
  mintAdminViewToken,
  verifyAdminViewToken,
} from '../../../src/tokens/admin-view.js';

const NOW = 1_700_000_000_000;
const NOW_S = NOW / 1000;

test('format ADM1-<expiry>-<hex HMAC-SHA1(secret, "ADM1-"+expiry)>, 6 h by default', () => {
  const { token, expiresAt } = mintAdminViewToken('sec', NOW);
  assert.equal(expiresAt, NOW_S + 6 * 3600);
  const mac = createHmac('sha1', 'sec').update(`ADM1-${expiresAt}`).digest('hex');
  assert.equal(token, `ADM1-${expiresAt}-${mac}`);
  assert.match(token, /^ADM1-\d+-[0-9a-f]{40}$/);
});

test('verify: good, wrong secret, tampered expiry, expired, not an admin token', () => {
  const { token, expiresAt } = mintAdminViewToken('sec', NOW);
  assert.deepEqual(verifyAdminViewToken(token, 'sec', NOW), { ok: true, expiresAt, remainingSec: 6 * 3600 });
  assert.equal((verifyAdminViewToken(token, 'other', NOW) as { reason: string }).reason, 'bad_hmac');
  const longer = token.replace(`ADM1-${expiresAt}`, `ADM1-${expiresAt + 3600}`);
  assert.equal((verifyAdminViewToken(longer, 'sec', NOW) as { reason: string }).reason, 'bad_hmac');
  assert.equal(
    (verifyAdminViewToken(token, 'sec', expiresAt * 1000) as { reason: string }).reason,
    'expired',
  );
  assert.equal((verifyAdminViewToken('ADM-xyz', 'sec', NOW) as { reason: string }).reason, 'malformed');
  assert.equal((verifyAdminViewToken('abc', 'sec', NOW) as { reason: string }).reason, 'not_admin_token');
});

test('disabled by the config directive or STREAMER_ADMIN_VIEW_DISABLED=true (any case)', () => {
  assert.equal(adminViewDisabled({ adminViewDisabled: false }, {}), false);
  assert.equal(adminViewDisabled({ adminViewDisabled: true }, {}), true);
  assert.equal(
    adminViewDisabled({ adminViewDisabled: false }, { STREAMER_ADMIN_VIEW_DISABLED: 'TRUE' }),
    true,
  );
  assert.equal(adminViewDisabled({ adminViewDisabled: false }, { STREAMER_ADMIN_VIEW_DISABLED: '1' }), false);
});

test('AdminView: per-process random secret, env secret, clock, disabled → no mint and no accept', () => {
  const clock = new FakeClock(NOW);
  const on = { adminViewDisabled: false };
  const a = new AdminView({ clock, env: {} });
  const b = new AdminView({ clock, env: {} });
  const t = a.mint(on)?.token ?? '';
  assert.equal(a.verify(t, on), true);
  assert.equal(b.verify(t, on), false, 'another process (random secret) does not accept it');
  assert.equal(a.verify(t, { adminViewDisabled: true }), false);
  assert.equal(a.mint({ adminViewDisabled: true }), undefined);
  const shared = new AdminView({ clock, env: { STREAMGATE_ADMIN_VIEW_SECRET: 'cluster' } });
  assert.equal(shared.verify(mintAdminViewToken('cluster', NOW).token, on), true);
  const off = new AdminView({ clock, env: { STREAMER_ADMIN_VIEW_DISABLED: 'true' } });
  assert.equal(off.mint(on), undefined);
});
