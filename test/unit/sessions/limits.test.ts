/** Pure tables of AUTH-SPEC §4.3, §5.1, §5.2, A8 and §8.2. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { protocolAllowed } from '../../../src/config/resolve.js';
import { retryDelayMs, sessionsOverLimit, softGraceMs, uniqueLosers } from '../../../src/sessions/limits.js';
import type { LimitCandidate } from '../../../src/sessions/limits.js';

test('retry after unavailable: 10 s, doubling, capped at auth duration, never under 10 s (§4.3)', () => {
  assert.deepEqual(
    [1, 2, 3, 4, 5, 6].map((n) => retryDelayMs(n, 180) / 1000),
    [10, 20, 40, 80, 160, 180],
  );
  assert.equal(retryDelayMs(1, 5), 10_000, 'short auth duration still waits 10 s');
  assert.equal(retryDelayMs(7, 5), 10_000);
  assert.equal(retryDelayMs(1, 15), 10_000);
  assert.equal(retryDelayMs(2, 15), 15_000);
  assert.equal(retryDelayMs(100, 86_400), 86_400_000);
});

const c = (
  id: string,
  openedAt: number,
  seq: number,
  proto: LimitCandidate['proto'] = 'rtmp',
): LimitCandidate => ({
  id,
  openedAt,
  seq,
  proto,
});

test('max sessions: the newest lose until N remain (§5.1, A10)', () => {
  const s = [c('a', 1, 1), c('c', 3, 3), c('b', 2, 2)];
  assert.deepEqual(
    sessionsOverLimit(s, 2).map((x) => x.id),
    ['c'],
  );
  assert.deepEqual(
    sessionsOverLimit(s, 1).map((x) => x.id),
    ['c', 'b'],
  );
  assert.deepEqual(sessionsOverLimit(s, 3), []);
  const same = [c('a', 5, 1), c('b', 5, 2)];
  assert.deepEqual(
    sessionsOverLimit(same, 1).map((x) => x.id),
    ['b'],
    'creation order breaks ties',
  );
});

test('unique: everyone but the winner loses (§5.2)', () => {
  const s = [c('a', 1, 1), c('b', 2, 2), c('c', 3, 3)];
  assert.deepEqual(
    uniqueLosers(s, s[2]!).map((x) => x.id),
    ['a', 'b'],
  );
});

test('soft grace: 30 s persistent, 90 s when HLS is involved (A8)', () => {
  assert.equal(softGraceMs([c('a', 1, 1, 'rtmp'), c('b', 1, 2, 'rtsp')]), 30_000);
  assert.equal(softGraceMs([c('a', 1, 1, 'rtmp'), c('b', 1, 2, 'hls')]), 90_000);
});

test('protocol switch: blacklist by default, whitelist when asked (§8.2)', () => {
  assert.equal(protocolAllowed(undefined, 'hls'), true);
  assert.equal(protocolAllowed({ whitelist: false, flags: { hls: false } }, 'hls'), false);
  assert.equal(protocolAllowed({ whitelist: false, flags: { hls: false } }, 'rtmp'), true);
  assert.equal(protocolAllowed({ whitelist: true, flags: { rtmp: true } }, 'rtmp'), true);
  assert.equal(protocolAllowed({ whitelist: true, flags: { rtmp: true } }, 'hls'), false);
});
