/**
 * Flussonic securetoken (AUTH-SPEC §10.8): the hash recipe and token layout byte for byte,
 * `no_check_ip`, the optional user_id, expiry and the 300 s start skew, on fixed clocks.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { test } from 'node:test';
import { checkSecureToken, mintSecureToken, parseSecureToken } from '../../../src/tokens/securetoken.js';

const NOW = 1_700_000_000_000;
const NOW_S = NOW / 1000;

test('layout: hash-salt-endtime-starttime, hash = sha1_hex(stream . ip . start . end . key . salt)', () => {
  const t = mintSecureToken({
    key: 'K',
    stream: 'live/cam1',
    ip: '10.0.0.1',
    now: NOW,
    salt: 'abc',
    expirySec: 600,
  });
  const start = NOW_S - 300;
  const end = NOW_S + 600;
  const hash = createHash('sha1').update(`live/cam110.0.0.1${start}${end}Kabc`).digest('hex');
  assert.equal(t, `${hash}-abc-${end}-${start}`);
  assert.deepEqual(parseSecureToken(t), { hash, salt: 'abc', endtime: end, starttime: start });
  const r = checkSecureToken(t, { key: 'K', stream: 'live/cam1', ip: '10.0.0.1', now: NOW });
  assert.ok(r.ok);
  assert.equal(r.remainingSec, 600);
});

test('another stream, ip or key does not match; no_check_ip drops the ip on both sides', () => {
  const t = mintSecureToken({ key: 'K', stream: 's', ip: '10.0.0.1', now: NOW });
  for (const o of [
    { key: 'K', stream: 's2', ip: '10.0.0.1' },
    { key: 'K', stream: 's', ip: '10.0.0.2' },
    { key: 'X', stream: 's', ip: '10.0.0.1' },
  ]) {
    const r = checkSecureToken(t, { ...o, now: NOW });
    assert.equal(!r.ok && r.reason, 'bad_hash', JSON.stringify(o));
  }
  const anyIp = mintSecureToken({ key: 'K', stream: 's', now: NOW });
  assert.ok(checkSecureToken(anyIp, { key: 'K', stream: 's', ip: '1.1.1.1', noCheckIp: true, now: NOW }).ok);
  assert.equal(checkSecureToken(anyIp, { key: 'K', stream: 's', ip: '1.1.1.1', now: NOW }).ok, false);
});

test('user_id joins the hash when the client sends one', () => {
  const t = mintSecureToken({ key: 'K', stream: 's', ip: 'i', userId: 'u7', now: NOW });
  const r = checkSecureToken(t, { key: 'K', stream: 's', ip: 'i', userId: 'u7', now: NOW });
  assert.ok(r.ok);
  assert.equal(r.userId, 'u7');
  assert.equal(checkSecureToken(t, { key: 'K', stream: 's', ip: 'i', userId: 'u8', now: NOW }).ok, false);
  assert.equal(checkSecureToken(t, { key: 'K', stream: 's', ip: 'i', now: NOW }).ok, false);
});

test('expiry is strict; a start up to 300 s ahead is tolerated, more is not yet valid', () => {
  const t = mintSecureToken({ key: 'K', stream: 's', ip: 'i', now: NOW, expirySec: 60 });
  assert.ok(checkSecureToken(t, { key: 'K', stream: 's', ip: 'i', now: NOW + 59_000 }).ok);
  const late = checkSecureToken(t, { key: 'K', stream: 's', ip: 'i', now: NOW + 60_000 });
  assert.equal(!late.ok && late.reason, 'expired');
  // Minted on a machine whose clock is 10 minutes ahead: starttime = ahead − 300 → 300 s ahead of us.
  const ahead = mintSecureToken({ key: 'K', stream: 's', ip: 'i', now: NOW + 600_000 });
  assert.ok(checkSecureToken(ahead, { key: 'K', stream: 's', ip: 'i', now: NOW }).ok);
  const far = mintSecureToken({ key: 'K', stream: 's', ip: 'i', now: NOW + 601_000 });
  const r = checkSecureToken(far, { key: 'K', stream: 's', ip: 'i', now: NOW });
  assert.equal(!r.ok && r.reason, 'not_yet_valid');
});

test('malformed tokens are refused', () => {
  for (const t of ['', 'abc', 'a-b-c-d', `${'0'.repeat(40)}-s-x-1`, `${'0'.repeat(40)}-s-1-2-3`]) {
    const r = checkSecureToken(t, { key: 'K', stream: 's', ip: 'i', now: NOW });
    assert.equal(!r.ok && r.reason, 'malformed', t);
  }
});
