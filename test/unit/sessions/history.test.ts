/** SQLite history (SPEC §7, AUTH-SPEC §9.1; acceptance §12 item 27). */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { SqliteHistory, historyPath } from '../../../src/sessions/history.js';
import { tokenHash } from '../../../src/core/secrets.js';
import { allow, granted, harness, request } from './helpers.js';

test('§12.27: a closed session is in history with user_id, bytes, opened_at, closed_at; token only hashed', async () => {
  const h = harness();
  h.backend.answer = () => allow({ userId: 'u1' });
  const s = granted(
    await h.manager.open(
      request({ proto: 'rtmp', token: 'secret-token', userAgent: 'VLC', referer: 'http://r/' }),
    ),
  );
  s.addBytes(5000);
  await h.clock.advance(42_000);
  s.close('client_closed');
  s.close('kicked');
  const rows = h.history.query({});
  assert.equal(rows.length, 1);
  assert.deepEqual(rows[0], {
    id: s.id,
    user_id: 'u1',
    name: 'live/cam1',
    proto: 'rtmp',
    ip: '10.0.0.1',
    token_hash: tokenHash('secret-token'),
    bytes: 5000,
    opened_at: s.openedAt,
    closed_at: s.openedAt + 42_000,
    close_reason: 'client_closed',
    user_agent: 'VLC',
    referer: 'http://r/',
  });
  assert.ok(!JSON.stringify(rows).includes('secret-token'));
  h.manager.close();
});

test('history filters: user_id, name, from, to', () => {
  const hs = new SqliteHistory('sqlite://:memory:');
  const row = (id: string, user: string | null, name: string, opened: number, closed: number) => ({
    id,
    user_id: user,
    name,
    proto: 'hls',
    ip: '1.1.1.1',
    token_hash: null,
    bytes: 0,
    opened_at: opened,
    closed_at: closed,
    close_reason: 'x',
    user_agent: null,
    referer: null,
  });
  hs.write(row('a', 'u1', 's1', 100, 200));
  hs.write(row('b', 'u2', 's1', 300, 400));
  hs.write(row('c', 'u1', 's2', 500, 600));
  const ids = (f: Parameters<SqliteHistory['query']>[0]) =>
    hs
      .query(f)
      .map((r) => r.id)
      .sort();
  assert.deepEqual(ids({ user_id: 'u1' }), ['a', 'c']);
  assert.deepEqual(ids({ name: 's1' }), ['a', 'b']);
  assert.deepEqual(ids({ from: 350 }), ['b', 'c']);
  assert.deepEqual(ids({ to: 350 }), ['a', 'b']);
  assert.deepEqual(ids({ from: 250, to: 450, user_id: 'u2' }), ['b']);
  assert.deepEqual(ids({ limit: 1 }), ['c']);
  hs.close();
});

test('history file: the directory is created; bad URLs are refused', () => {
  const dir = mkdtempSync(join(tmpdir(), 'streamgate-hist-'));
  try {
    const path = join(dir, 'nested', 'h.db');
    const hs = new SqliteHistory(`sqlite://${path}`);
    assert.ok(existsSync(path));
    hs.close();
    assert.throws(() => historyPath('mysql://x'));
    assert.throws(() => historyPath('sqlite://'));
    assert.equal(historyPath('sqlite://:memory:'), ':memory:');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('kill -9 right after a close: on restart the closed sessions are in history', () => {
  const dir = mkdtempSync(join(tmpdir(), 'streamgate-hist-'));
  try {
    const path = join(dir, 'h.db');
    const child = spawnSync(
      process.execPath,
      [
        '--import',
        'tsx',
        fileURLToPath(new URL('fixtures/history-crash-child.ts', import.meta.url)),
        path,
        '5',
      ],
      { encoding: 'utf8', timeout: 30_000 },
    );
    assert.equal(child.signal, 'SIGKILL', child.stderr);
    const closed = child.stdout.split('\n').filter(Boolean);
    assert.equal(closed.length, 5);
    const hs = new SqliteHistory(`sqlite://${path}`);
    const rows = hs.query({});
    assert.deepEqual(rows.map((r) => r.id).sort(), [...closed].sort());
    assert.ok(rows.every((r) => r.close_reason === 'client_closed' && r.bytes === 1000));
    hs.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
