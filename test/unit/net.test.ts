import { test } from 'node:test';
import assert from 'node:assert/strict';
import { addressList, canonicalIp, httpClientIp, normalizeIp } from '../../src/net.js';

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

test('net: X-Forwarded-For is walked from the right; a client cannot forge its address through a proxy', () => {
  const trusted = addressList(['10.0.0.0/8', '192.168.1.1']);
  const xff = (v: string | string[]): Record<string, string | string[]> => ({ 'x-forwarded-for': v });
  // The client wrote "127.0.0.1" itself; the proxy appended the address it really came from.
  assert.equal(httpClientIp('10.0.0.2', xff('127.0.0.1, 203.0.113.7'), trusted), '203.0.113.7');
  assert.equal(
    httpClientIp('10.0.0.2', xff('127.0.0.1, 1.2.3.4, 203.0.113.7, 10.0.0.9, 192.168.1.1'), trusted),
    '203.0.113.7',
    'trusted hops are skipped, the first untrusted one from the right is the client',
  );
  assert.equal(
    httpClientIp('10.0.0.2', xff(['127.0.0.1', '203.0.113.7, 10.0.0.9']), trusted),
    '203.0.113.7',
    'repeated header lines are one list in order',
  );
  assert.equal(
    httpClientIp('10.0.0.2', xff('10.0.0.7, 10.0.0.9'), trusted),
    '10.0.0.7',
    'every hop trusted: the furthest one',
  );
  assert.equal(
    httpClientIp('10.0.0.2', xff('127.0.0.1, bogus, 203.0.113.7'), trusted),
    '203.0.113.7',
    'what lies left of the client is never read',
  );
  assert.equal(httpClientIp('10.0.0.2', xff('203.0.113.7, bogus'), trusted), '10.0.0.2', 'malformed → peer');
  assert.equal(
    httpClientIp('10.0.0.2', xff('203.0.113.7,,10.0.0.9'), trusted),
    '10.0.0.2',
    'empty hop → peer',
  );
  assert.equal(httpClientIp('10.0.0.2', xff('203.0.113.7:4711'), trusted), '10.0.0.2', 'ports are malformed');
  assert.equal(httpClientIp('10.0.0.2', xff('fe80::1%eth0'), trusted), '10.0.0.2', 'zone ids are malformed');
  assert.equal(httpClientIp('10.0.0.2', xff(''), trusted), '10.0.0.2');
  assert.equal(
    httpClientIp('10.0.0.2', { 'x-forwarded-for': '10.0.0.9', 'x-real-ip': '203.0.113.8' }, trusted),
    '10.0.0.9',
    'X-Real-IP only counts without X-Forwarded-For',
  );
  assert.equal(httpClientIp('10.0.0.2', { 'x-real-ip': ' 2001:DB8:0::1 ' }, trusted), '2001:db8::1');
  assert.equal(httpClientIp('10.0.0.2', { 'x-real-ip': 'localhost' }, trusted), '10.0.0.2');
  assert.equal(
    httpClientIp('203.0.113.50', { 'x-forwarded-for': '127.0.0.1', 'x-real-ip': '127.0.0.1' }, trusted),
    '203.0.113.50',
    'an untrusted peer gets no say at all',
  );
});

test('net: canonicalIp', () => {
  assert.equal(canonicalIp('192.0.2.1'), '192.0.2.1');
  assert.equal(canonicalIp('2001:DB8:0:0::1'), '2001:db8::1');
  assert.equal(canonicalIp('::FFFF:192.0.2.1'), '192.0.2.1');
  assert.equal(canonicalIp('::1'), '::1');
  assert.equal(canonicalIp('[::1]'), undefined);
  assert.equal(canonicalIp('01.2.3.4'), undefined);
  assert.equal(canonicalIp(''), undefined);
});

test('net: a malformed trusted_proxies entry is refused', () => {
  assert.throws(() => addressList(['10.0.0.0/8', 'proxy.example']), /not an IP address/);
});
