/** AUTH-SPEC §6.2, §6.4, §7.1: address matching, rule order and the domain lock. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { domainAllowed, evaluateRules, ipMatches, parseCidr, parseIp } from '../../../src/auth/rules.js';
import { chainConfig } from '../sessions/helpers.js';

test('parseIp: v4, v6, compressed v6, mapped v4, zone ids', () => {
  assert.deepEqual(parseIp('10.1.2.3'), { v: 4, bytes: [10, 1, 2, 3] });
  assert.deepEqual(parseIp('::ffff:127.0.0.1'), { v: 4, bytes: [127, 0, 0, 1] });
  assert.deepEqual(parseIp('::ffff:7f00:1'), { v: 4, bytes: [127, 0, 0, 1] });
  assert.equal(parseIp('::1')?.v, 6);
  assert.deepEqual(parseIp('::1')?.bytes, [...new Array<number>(15).fill(0), 1]);
  assert.equal(parseIp('fe80::1%eth0')?.v, 6);
  assert.equal(parseIp('2001:db8::1:2:3:4:5')?.bytes.length, 16);
  for (const bad of ['256.1.1.1', '1.2.3', 'x', '1::2::3', '1:2:3:4:5:6:7:8:9', '']) {
    assert.equal(parseIp(bad), undefined, bad);
  }
});

test('CIDR: full, abbreviated 172.16/24, bare, IPv6 (§6.4)', () => {
  assert.deepEqual(parseCidr('172.16/24'), { addr: { v: 4, bytes: [172, 16, 0, 0] }, prefix: 24 });
  assert.equal(ipMatches('172.16/24', '172.16.0.77'), true);
  assert.equal(ipMatches('172.16/24', '172.16.1.1'), false);
  assert.equal(ipMatches('10.0.0.0/8', '10.200.3.4'), true);
  assert.equal(ipMatches('10.0.0.0/8', '11.0.0.1'), false);
  assert.equal(ipMatches('8.8.8.8', '8.8.8.8'), true);
  assert.equal(ipMatches('8.8.8.8', '8.8.8.9'), false);
  assert.equal(ipMatches('10.1', '10.1.9.9'), true);
  assert.equal(ipMatches('2001:db8::/32', '2001:db8:1::5'), true);
  assert.equal(ipMatches('2001:db8::/32', '2001:db9::5'), false);
  assert.equal(ipMatches('::1', '::1'), true);
  assert.equal(ipMatches('0.0.0.0/0', '1.2.3.4'), true);
  assert.equal(ipMatches('10.0.0.0/33', '10.0.0.1'), false);
  assert.equal(ipMatches('garbage', '10.0.0.1'), false);
});

test('IPv4-mapped IPv6 clients match IPv4 rules (embedded loopback_publish)', () => {
  assert.equal(ipMatches('127.0.0.1/8', '::ffff:127.0.0.1'), true);
  assert.equal(ipMatches('127.0.0.1/8', '127.3.4.5'), true);
  assert.equal(ipMatches('127.0.0.1/8', '::ffff:10.0.0.1'), false);
  assert.equal(ipMatches('::1', '::ffff:127.0.0.1'), false);
});

const input = (
  over: Partial<Parameters<typeof evaluateRules>[1]> = {},
): Parameters<typeof evaluateRules>[1] => ({
  token: 't',
  ip: '10.1.1.1',
  userAgent: 'VLC/3.0',
  country: undefined,
  ...over,
});

test('rule order: token beats ip whatever the config order (§6.2, §12 item 19)', () => {
  const cfg = chainConfig('c', [
    ['allow', 'ip', '10.0.0.0/8'],
    ['deny', 'token', 'bad'],
  ]);
  assert.equal(evaluateRules(cfg.rules, input({ token: 'bad' }))?.action, 'deny');
  assert.equal(evaluateRules(cfg.rules, input({ token: 'good' }))?.action, 'allow');
  assert.equal(evaluateRules(cfg.rules, input({ token: 'good', ip: '11.0.0.1' })), undefined);
});

test('rule order: allow before deny within a kind; ua is a case-sensitive substring', () => {
  const cfg = chainConfig('c', [
    ['deny', 'ip', '10.0.0.0/8'],
    ['allow', 'ip', '10.1.1.1'],
    ['allow', 'ua', 'MAG'],
    ['deny', 'ua', 'curl'],
  ]);
  assert.equal(evaluateRules(cfg.rules, input())?.action, 'allow');
  assert.equal(evaluateRules(cfg.rules, input({ ip: '10.2.2.2' }))?.action, 'deny');
  assert.equal(evaluateRules(cfg.rules, input({ ip: '1.1.1.1', userAgent: 'MAG250' }))?.action, 'allow');
  assert.equal(evaluateRules(cfg.rules, input({ ip: '1.1.1.1', userAgent: 'mag250' })), undefined);
  assert.equal(evaluateRules(cfg.rules, input({ ip: '1.1.1.1', userAgent: 'curl/8' }))?.action, 'deny');
});

test('country rules never match without a GeoIP lookup', () => {
  const cfg = chainConfig('c', [['deny', 'country', 'GB']]);
  assert.equal(evaluateRules(cfg.rules, input()), undefined);
  assert.equal(evaluateRules(cfg.rules, input({ country: 'gb' }))?.action, 'deny');
});

test('domain lock: exact host or subdomain; missing Referer passes unless strict (§7.1)', () => {
  const d = ['example.com'];
  assert.equal(domainAllowed('https://evil.com/', d, false), false);
  assert.equal(domainAllowed('https://www.example.com/p', d, false), true);
  assert.equal(domainAllowed('https://example.com', d, false), true);
  assert.equal(domainAllowed('https://notexample.com/', d, false), false);
  assert.equal(domainAllowed('https://example.com.evil.com/', d, false), false);
  assert.equal(domainAllowed(undefined, d, false), true);
  assert.equal(domainAllowed('', d, false), true);
  assert.equal(domainAllowed(undefined, d, true), false);
  assert.equal(domainAllowed('garbage', d, false), false);
  assert.equal(domainAllowed('https://a.partner.tv/', ['example.com', 'partner.tv'], false), true);
});
