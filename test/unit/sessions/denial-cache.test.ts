/**
 * The denial and ban cache (AUTH-SPEC §4.5) under `denial_cache_bytes`: least recently used
 * first, plain denials before bans, evictions counted, sizes exposed for `/metrics`.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { DEFAULT_LIMITS, limitHits } from '../../../src/core/limits.js';
import { denialEntryBytes, MemoryStore, type BanEntry } from '../../../src/sessions/store.js';
import type { StoredSession } from '../../../src/sessions/store.js';
import { denyD, harness, request } from './helpers.js';

const NOW = 1_700_000_000_000;

function entry(idKey: string, ban = false, until = NOW + 180_000): BanEntry {
  return {
    idKey,
    until,
    reason: ban ? 'session_limit' : 'backend_denied',
    ban,
    name: 'live/cam1',
    tokenHash: 'abcdef012345',
    createdAt: NOW,
  };
}

/** Keys of the cached entries, in API order (bans, then denials). */
function keysOf(store: MemoryStore<StoredSession>): string[] {
  return store.bans(NOW).map((e) => e.idKey);
}

test('entry size: its strings plus a fixed overhead; two-byte strings count double', () => {
  const e = entry('k'.repeat(40));
  const base = denialEntryBytes(e);
  assert.ok(base > 40 + 14 + 9 + 12, 'at least the characters');
  assert.equal(denialEntryBytes({ ...e, userId: 'u1' }), base + 16 + 2);
  assert.equal(denialEntryBytes({ ...e, name: 'live/camé' }), base, 'é still fits one byte');
  assert.equal(denialEntryBytes({ ...e, name: 'live/cam✓' }), base + 9, '✓ makes the string two-byte');
});

test('over the byte cap the least recently used denial goes first; a lookup renews an entry', () => {
  const one = denialEntryBytes(entry('d0'));
  const store = new MemoryStore<StoredSession>({ denialCacheBytes: () => one * 3 });
  const hitsBefore = limitHits().get('denial_cache_bytes') ?? 0;
  for (const k of ['d0', 'd1', 'd2']) store.setBan(entry(k));
  assert.deepEqual(keysOf(store), ['d0', 'd1', 'd2']);
  assert.ok(store.getBan('d0', NOW), 'd0 used: now the most recent');
  store.setBan(entry('d3'));
  assert.deepEqual(keysOf(store), ['d2', 'd0', 'd3'], 'd1 was the least recently used');
  store.setBan(entry('d4'));
  assert.deepEqual(keysOf(store), ['d0', 'd3', 'd4']);
  const stats = store.denialCacheStats();
  assert.deepEqual(stats, { entries: 3, bans: 0, bytes: one * 3, maxBytes: one * 3, evictions: 2 });
  assert.equal((limitHits().get('denial_cache_bytes') ?? 0) - hitsBefore, 2);
});

test('bans are kept over denials: denials are evicted first, bans only when no denial is left', () => {
  // Bans here are a byte smaller than denials (a shorter reason): room for three of either.
  const one = denialEntryBytes(entry('d0'));
  const store = new MemoryStore<StoredSession>({ denialCacheBytes: () => one * 3 });
  store.setBan(entry('b0', true));
  store.setBan(entry('d0'));
  store.setBan(entry('b1', true));
  store.setBan(entry('d1'));
  assert.deepEqual(keysOf(store), ['b0', 'b1', 'd1'], 'the older ban outlived the newer denial d0');
  store.setBan(entry('b2', true));
  assert.deepEqual(keysOf(store), ['b0', 'b1', 'b2'], 'the last denial went before any ban');
  store.setBan(entry('d2'));
  assert.deepEqual(keysOf(store), ['b0', 'b1', 'b2'], 'a new denial cannot push out a ban');
  store.setBan(entry('b3', true));
  assert.deepEqual(keysOf(store), ['b1', 'b2', 'b3'], 'among bans, the least recently used goes');
  assert.equal(store.denialCacheStats().bans, 3);
});

test('bytes follow every removal path: expiry, clear, replacement and sweep', () => {
  const store = new MemoryStore<StoredSession>();
  store.setBan(entry('a', false, NOW + 1000));
  store.setBan(entry('b'));
  store.setBan({ ...entry('b', true), userId: 'user-1', until: NOW + 500_000 });
  store.setBan(entry('c', false, NOW + 2000));
  const total = store.denialCacheStats().bytes;
  assert.equal(
    total,
    denialEntryBytes(entry('a')) +
      denialEntryBytes({ ...entry('b', true), userId: 'user-1' }) +
      denialEntryBytes(entry('c')),
  );
  assert.equal(store.getBan('a', NOW + 1000), undefined, 'expired on lookup');
  assert.equal(store.clearBan('b'), true);
  assert.equal(store.sweep(NOW + 2000), 1);
  assert.deepEqual(store.denialCacheStats(), {
    entries: 0,
    bans: 0,
    bytes: 0,
    maxBytes: DEFAULT_LIMITS.denial_cache_bytes,
    evictions: 0,
  });
});

test('manager: a flood of bad tokens keeps the cache under denial_cache_bytes; cacheStats() shows it', async () => {
  const cap = 64 * 1024;
  const h = harness({
    config: {
      limits: { ...DEFAULT_LIMITS, denial_cache_bytes: cap, new_sessions_per_ip_burst: 100_000 },
    },
  });
  h.backend.answer = () => denyD();
  for (let i = 0; i < 2000; i++) await h.manager.open(request({ token: `bad-${i}` }));
  assert.equal(h.backend.calls.length, 2000);
  const stats = h.manager.cacheStats();
  assert.ok(stats.denialCache.bytes <= cap, `${stats.denialCache.bytes} <= ${cap}`);
  assert.ok(stats.denialCache.bytes > cap - 1000, 'the cache is used up to its cap');
  assert.equal(stats.denialCache.evictions, 2000 - stats.denialCache.entries);
  assert.equal(stats.denialCache.maxBytes, cap);
  assert.equal(stats.rateLimitBuckets, 1);
  // The newest denial is still cached, the oldest was evicted and costs a backend call again.
  assert.equal((await h.manager.open(request({ token: 'bad-1999' }))).allow, false);
  assert.equal(h.backend.calls.length, 2000);
  await h.manager.open(request({ token: 'bad-0' }));
  assert.equal(h.backend.calls.length, 2001);
  h.manager.close();
});
