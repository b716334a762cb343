import { test } from 'node:test';
import assert from 'node:assert/strict';
import { addressList, httpClientIp, normalizeIp } from '../../src/net.js';

test('net: IPv4-mapped IPv6 peers are reported as IPv4', () => {
  assert.equal(normalizeIp('::ffff:127.0.0.1'), '127.0.0.1');
  assert.equal(normalizeIp('::1'), '::1');
  assert.equal(normalizeIp('10.1.2.3'), '10.1.2.3');
});

test('net: X-Forwarded-For is believed only from trusted proxies (AUTH-SPEC §1.4)', () => {
  const trusted = addressList(['10.0.0.0/8', '::1']);
  const xff = { 'x-forwarded-for': '203.0.113.7, 10.0.0.2' };
  assert.equal(httpClientIp('::ffff:10.0.0.2', xff, trusted), '203.0.113.7');
  assert.equal(
    httpClientIp('198.51.100.9', xff, trusted),
    '198.51.100.9',
    'an untrusted peer cannot choose its IP',
  );
  assert.equal(httpClientIp('10.0.0.2', xff, undefined), '10.0.0.2', 'no trusted_proxies: the peer address');
  assert.equal(httpClientIp('10.0.0.2', { 'x-real-ip': '203.0.113.8' }, trusted), '203.0.113.8');
  assert.equal(httpClientIp('10.0.0.2', { 'x-forwarded-for': 'not-an-ip' }, trusted), '10.0.0.2');
  assert.equal(httpClientIp('::1', { 'x-forwarded-for': '::ffff:192.0.2.1' }, trusted), '192.0.2.1');
});

test('net: a malformed trusted_proxies entry is refused', () => {
  assert.throws(() => addressList(['10.0.0.0/8', 'proxy.example']), /not an IP address/);
});
