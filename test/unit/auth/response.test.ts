/** AUTH-SPEC §2.1–§2.3: status classes, header validation and body handling, as pure functions. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  classifyStatus,
  decideHttp,
  parseAuthDuration,
  parseJsonBody,
  parseMaxSessions,
  parseUnique,
  parseUserId,
  requestParams,
} from '../../../src/auth/backend.js';

const headers =
  (h: Record<string, string>) =>
  (n: string): string | undefined =>
    h[n];

test('status classes: 2xx allow, 302 redirect, 500/502/503/504 unavailable, other deny (§2.1, A11)', () => {
  const table: [number, string][] = [
    [200, 'allow'],
    [204, 'allow'],
    [302, 'redirect'],
    [301, 'deny'],
    [401, 'deny'],
    [403, 'deny'],
    [404, 'deny'],
    [410, 'deny'],
    [500, 'unavailable'],
    [501, 'deny'],
    [502, 'unavailable'],
    [503, 'unavailable'],
    [504, 'unavailable'],
  ];
  for (const [status, cls] of table) assert.equal(classifyStatus(status), cls, String(status));
});

test('X-AuthDuration: integer >= 1, clamped to 86400, garbage -> default (§2.2, A30, §12 item 23)', () => {
  assert.equal(parseAuthDuration('600', 180), 600);
  assert.equal(parseAuthDuration(' 5 ', 180), 5);
  assert.equal(parseAuthDuration('0', 180), 180);
  assert.equal(parseAuthDuration('-5', 180), 180);
  assert.equal(parseAuthDuration('abc', 180), 180);
  assert.equal(parseAuthDuration('1.5', 180), 180);
  assert.equal(parseAuthDuration('99999999', 180), 86_400);
  assert.equal(parseAuthDuration(undefined, 180), 180);
  assert.equal(parseAuthDuration(30, 180), 30);
});

test('X-Max-Sessions, X-UserId, X-Unique validation (§2.2)', () => {
  assert.equal(parseMaxSessions('2'), 2);
  assert.equal(parseMaxSessions('0'), undefined);
  assert.equal(parseMaxSessions('x'), undefined);
  assert.equal(parseUserId('  u1 '), 'u1');
  assert.equal(parseUserId('   '), undefined);
  assert.equal(parseUserId(42), '42');
  assert.equal(parseUnique('TRUE'), true);
  assert.equal(parseUnique('true'), true);
  assert.equal(parseUnique('1'), false);
  assert.equal(parseUnique('yes'), false);
  assert.equal(parseUnique(undefined), false);
});

test('200 with headers and a config body becomes a full grant', () => {
  const d = decideHttp(
    200,
    headers({ 'x-authduration': '600', 'x-userid': 'u1', 'x-max-sessions': '2', 'x-unique': 'True' }),
    { config: { protocols: { hls: false } }, other: 1 },
    180,
  );
  assert.deepEqual(d, {
    kind: 'allow',
    authDurationSec: 600,
    userId: 'u1',
    maxSessions: 2,
    unique: true,
    config: { protocols: { hls: false } },
  });
});

test('garbage bodies are ignored and a grant stays a grant (§2.3, §12 item 23)', () => {
  assert.equal(parseJsonBody('not json', 'application/json'), undefined);
  assert.equal(parseJsonBody('{"config":{}}', 'text/html'), undefined);
  assert.equal(parseJsonBody('', undefined), undefined);
  assert.deepEqual(parseJsonBody('{"a":1}', undefined), { a: 1 });
  for (const body of [undefined, 'x', [1, 2], { config: 'nope' }, { config: [1] }, null]) {
    const d = decideHttp(200, headers({ 'x-authduration': 'abc' }), body, 180);
    assert.deepEqual(d, { kind: 'allow', authDurationSec: 180 });
  }
});

test('403 keeps X-AuthDuration as the denial TTL (A18); 302 carries Location', () => {
  assert.deepEqual(decideHttp(403, headers({ 'x-authduration': '5' }), undefined, 180), {
    kind: 'deny',
    status: 403,
    authDurationSec: 5,
    reason: 'backend_denied',
  });
  assert.deepEqual(decideHttp(302, headers({ location: 'http://cdn2/x/index.m3u8' }), undefined, 180), {
    kind: 'redirect',
    location: 'http://cdn2/x/index.m3u8',
  });
  assert.equal(decideHttp(302, headers({}), undefined, 180).kind, 'deny');
  assert.deepEqual(decideHttp(503, headers({ 'x-userid': 'u' }), undefined, 180), {
    kind: 'unavailable',
    reason: 'http5xx',
  });
});

test('request parameters in §1.3 order, optional ones only when set', () => {
  const p = requestParams({
    name: 'fake',
    proto: 'hls',
    ip: '10.77.0.150',
    request_type: 'new_session',
    request_number: 0,
    session_id: 'sid',
    stream_clients: 1,
    total_clients: 2,
    token: 't',
    qs: 'token=t',
  });
  assert.deepEqual(
    p.map(([k]) => k),
    [
      'name',
      'proto',
      'ip',
      'request_type',
      'request_number',
      'session_id',
      'stream_clients',
      'total_clients',
      'token',
      'qs',
    ],
  );
});
