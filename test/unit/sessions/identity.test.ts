/** AUTH-SPEC §3: identity keys, generated tokens, token hashes (acceptance §12 items 10–12). */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { test } from 'node:test';
import { safeEqual, tokenHash } from '../../../src/core/secrets.js';
import { generateToken, identityKey } from '../../../src/sessions/identity.js';
import { keys } from './helpers.js';

const v = { name: 'live/cam1', ip: '10.0.0.1', proto: 'hls', token: 'abc' };

test('identity: SHA-1 of the sorted key=value multiset (AUTH-SPEC §3.2)', () => {
  const expected = createHash('sha1')
    .update('ip=10.0.0.1\nname=live/cam1\nproto=hls\ntoken=abc')
    .digest('hex');
  assert.equal(identityKey(keys('name,ip,proto,token'), v), expected);
  assert.match(expected, /^[0-9a-f]{40}$/);
});

test('identity: order does not matter, duplicates do (§12 item 12)', () => {
  const a = identityKey(keys('ip,ip,name,proto'), v);
  const b = identityKey(keys('proto,name,ip,ip'), v);
  const c = identityKey(keys('ip,name,proto'), v);
  assert.equal(a, b);
  assert.notEqual(a, c);
});

test('identity: a missing value hashes as the literal undefined', () => {
  const expected = createHash('sha1')
    .update('ip=10.0.0.1\nname=live/cam1\nproto=hls\ntoken=undefined')
    .digest('hex');
  assert.equal(identityKey(keys('name,ip,proto,token'), { ...v, token: undefined }), expected);
});

test('identity: without token in the keys a token change keeps the identity (§12 item 10)', () => {
  const k = keys('ip,name,proto');
  assert.equal(identityKey(k, v), identityKey(k, { ...v, token: 'other' }));
  const d = keys('name,ip,proto,token');
  assert.notEqual(identityKey(d, v), identityKey(d, { ...v, token: 'other' }));
});

test('identity: separators in values are escaped, so pairs cannot collide', () => {
  const k = keys('name,ip,proto,token');
  assert.notEqual(
    identityKey(k, { ...v, token: 'a\nproto=hls' }),
    identityKey(k, { ...v, token: 'a', proto: 'hls\nproto=hls' }),
  );
});

test('identity: query:<param> keys read the query string', () => {
  const k = keys('name,ip,proto,query:uid');
  const q1 = { ...v, query: new URLSearchParams('uid=1') };
  const q2 = { ...v, query: new URLSearchParams('uid=2') };
  assert.notEqual(identityKey(k, q1), identityKey(k, q2));
});

test('identity: publish identities never equal play identities', () => {
  const k = keys('name,ip,proto,token');
  assert.notEqual(identityKey(k, v, 'publish'), identityKey(k, v, 'play'));
  assert.equal(identityKey(k, v, 'play'), identityKey(k, v));
});

test('generated tokens are base64url of 16 random bytes (§3.4)', () => {
  const t = generateToken();
  assert.match(t, /^[A-Za-z0-9_-]{22}$/);
  assert.equal(Buffer.from(t, 'base64url').length, 16);
  assert.notEqual(t, generateToken());
});

test('token hash is the first 12 hex of SHA-256 (SPEC §7)', () => {
  assert.equal(tokenHash('abc'), createHash('sha256').update('abc').digest('hex').slice(0, 12));
  assert.equal(tokenHash(undefined), undefined);
});

test('safeEqual compares exactly', () => {
  assert.equal(safeEqual('p1', 'p1'), true);
  assert.equal(safeEqual('p1', 'p2'), false);
  assert.equal(safeEqual('p1', 'p1x'), false);
  assert.equal(safeEqual('', ''), true);
});

test('session ids are random version-4 UUIDs, distinct across pool refills', async () => {
  const { sessionId } = await import('../../../src/sessions/identity.js');
  const re = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
  const seen = new Set<string>();
  for (let i = 0; i < 2000; i++) {
    const id = sessionId();
    assert.match(id, re);
    seen.add(id);
  }
  assert.equal(seen.size, 2000);
});

test('ownString keeps the characters, latin-1 or not', async () => {
  const { ownString } = await import('../../../src/sessions/identity.js');
  const url = new URL('http://h/p?token=abcdefghijklmnop&x=%C3%A9%F0%9F%98%80');
  for (const s of [
    url.searchParams.get('token') ?? '',
    url.searchParams.get('x') ?? '',
    'short',
    url.search.slice(1),
  ]) {
    assert.equal(ownString(s), s);
  }
});
