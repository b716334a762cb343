/** SQLite history (SPEC §7, AUTH-SPEC §9.1; acceptance §12 item 27). */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { pino } from 'pino';
import { BATCH_MAX, SqliteHistory, historyPath, type HistoryRow } from '../../../src/sessions/history.js';
import { createSessionCore } from '../../../src/sessions/index.js';
import { tokenHash } from '../../../src/core/secrets.js';
import { allow, config, granted, harness, request, spec } from './helpers.js';

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

test('kill -9 after the turn of the closes: on restart the closed sessions are in history', () => {
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

function row(id: string): HistoryRow {
  return {
    id,
    user_id: null,
    name: 'live/cam1',
    proto: 'hls',
    ip: '10.0.0.1',
    token_hash: null,
    bytes: 0,
    opened_at: 1,
    closed_at: 2,
    close_reason: 'idle_timeout',
    user_agent: null,
    referer: null,
  };
}

test('batching: rows commit at the end of the turn, or at once when BATCH_MAX are queued', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'streamgate-hist-'));
  try {
    const url = `sqlite://${join(dir, 'h.db')}`;
    const writer = new SqliteHistory(url);
    // A second connection sees only what the writer committed (WAL readers see commits).
    const reader = new SqliteHistory(url);
    for (let i = 0; i < BATCH_MAX; i++) writer.write(row(`a${i}`));
    assert.equal(reader.query({ limit: 10_000 }).length, BATCH_MAX, 'a full batch commits at once');
    writer.write(row('late'));
    assert.equal(reader.query({ limit: 10_000 }).length, BATCH_MAX, 'one queued row waits for the turn');
    assert.equal(writer.query({ limit: 10_000 }).length, BATCH_MAX + 1, 'the writer reads its own queue');
    writer.write(row('next-turn'));
    await new Promise((r) => setImmediate(r));
    assert.equal(reader.query({ limit: 10_000 }).length, BATCH_MAX + 2, 'the end of the turn commits');
    writer.close();
    reader.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('graceful shutdown loses no row: closeAll then close in the same turn, more than a batch', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'streamgate-hist-'));
  try {
    const url = `sqlite://${join(dir, 'h.db')}`;
    const core = await createSessionCore({
      config: { ...config(), history: url },
      log: pino({ level: 'silent' }),
      policy: () => ({ onPlay: spec('true') }),
    });
    const ids: string[] = [];
    const n = BATCH_MAX * 2 + 7;
    for (let i = 0; i < n; i++) {
      const d = await core.manager.open(request({ proto: i % 2 ? 'rtmp' : 'hls', token: `t${i}` }));
      ids.push(granted(d).id);
    }
    // Some close on their own just before the shutdown, in the same turn.
    for (const id of ids.slice(0, 10)) core.manager.get(id)?.close('client_closed');
    core.closeAll('server_shutdown');
    core.close();
    const hs = new SqliteHistory(url);
    const rows = hs.query({ limit: 10_000 });
    assert.deepEqual(rows.map((r) => r.id).sort(), [...ids].sort());
    assert.equal(rows.filter((r) => r.close_reason === 'server_shutdown').length, n - 10);
    hs.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a failed commit is reported with its row count; the store keeps working', () => {
  const lost: number[] = [];
  const hs = new SqliteHistory('sqlite://:memory:', { onError: (_err, n) => lost.push(n) });
  hs.write(row('x'));
  hs.write(row('y'));
  hs.write({ ...row('bad'), name: null as unknown as string }); // NOT NULL: the batch fails
  hs.flush();
  assert.deepEqual(lost, [3]);
  hs.write(row('z'));
  assert.deepEqual(
    hs.query({}).map((r) => r.id),
    ['z'],
  );
  hs.close();
});
