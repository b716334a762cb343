/**
 * SqlExecutor over a real history file written by the server's own SqliteHistory: per-user
 * totals, hour/day buckets, column types, the read-only walls and the result caps.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import Database from 'better-sqlite3';
import { SqliteHistory, type HistoryRow } from '../../../src/sessions/history.js';
import { SqlExecutor, type QueryRequest, type QueryResult } from '../../../src/sql/executor.js';
import { planQuery } from '../../../src/sql/guard.js';
import { TYPE } from '../../../src/sql/wire/codec.js';

const dir = mkdtempSync(join(tmpdir(), 'sg-sql-'));
const file = join(dir, 'history.db');
let writer: SqliteHistory;
let ex: SqlExecutor;

const T0 = Date.UTC(2026, 0, 2, 10, 15, 0);
function row(i: number, user: string | null, bytes: number, openedAt: number): HistoryRow {
  return {
    id: `s${i}`,
    user_id: user,
    name: 'live/cam1',
    proto: i % 2 ? 'hls' : 'rtmp',
    ip: '10.0.0.1',
    token_hash: 'abcdef012345',
    bytes,
    opened_at: openedAt,
    closed_at: openedAt + 90_000,
    close_reason: 'client_closed',
    user_agent: null,
    referer: null,
  };
}

before(() => {
  writer = new SqliteHistory(`sqlite://${file}`);
  writer.write(row(1, 'alice', 100, T0));
  writer.write(row(2, 'alice', 250, T0 + 3_600_000));
  writer.write(row(3, 'bob', 1000, T0 + 86_400_000));
  writer.write(row(4, null, 7, T0));
  // Rows are committed once per event-loop turn; the reader must see them now.
  writer.flush();
  ex = new SqlExecutor(file);
});

after(() => {
  ex.close();
  writer.close();
  rmSync(dir, { recursive: true, force: true });
});

function run(sql: string, extra: Partial<QueryRequest> = {}): QueryResult {
  const plan = planQuery(sql, { database: 'flussonic', variables: {} });
  assert.equal(plan.kind, 'select', sql);
  return ex.run({
    sql: plan.kind === 'select' ? plan.sql : '',
    live: {},
    ctx: { database: 'flussonic', user: 'admin', connectionId: 1, version: 'v' },
    maxRows: 1000,
    maxBytes: 1 << 20,
    ...extra,
  });
}

function ok(r: QueryResult): Extract<QueryResult, { ok: true }> {
  assert.ok(r.ok, JSON.stringify(r));
  return r;
}

test('per-user counts and byte totals from the history the server wrote', () => {
  const r = ok(
    run('SELECT user_id, COUNT(*), SUM(bytes) FROM sessions_history GROUP BY user_id ORDER BY user_id'),
  );
  assert.deepEqual(r.rows, [
    [null, '1', '7'],
    ['alice', '2', '350'],
    ['bob', '1', '1000'],
  ]);
  assert.deepEqual(
    r.columns.map((c) => [c.name, c.type]),
    [
      ['user_id', TYPE.VAR_STRING],
      ['COUNT(*)', TYPE.LONGLONG],
      ['SUM(bytes)', TYPE.LONGLONG],
    ],
  );
});

test('time columns: DATETIME text in UTC, epoch ms, duration; GROUP BY hour and day', () => {
  const r = ok(
    run("SELECT opened_at, closed_at, opened_at_ms, duration FROM sessions_history WHERE id = 's1'"),
  );
  assert.deepEqual(r.rows[0], ['2026-01-02 10:15:00', '2026-01-02 10:16:30', String(T0), '90']);
  assert.equal(r.columns[0]?.type, TYPE.DATETIME);
  assert.equal(r.columns[2]?.type, TYPE.LONGLONG);
  const byDay = ok(run('SELECT DATE(opened_at) AS d, COUNT(*) FROM sessions_history GROUP BY d ORDER BY d'));
  assert.deepEqual(byDay.rows, [
    ['2026-01-02', '3'],
    ['2026-01-03', '1'],
  ]);
  assert.equal(byDay.columns[0]?.type, TYPE.DATE);
  const byHour = ok(
    run(
      "SELECT DATE_FORMAT(opened_at, '%Y-%m-%d %H:00') h, SUM(bytes) FROM sessions_history GROUP BY h ORDER BY h",
    ),
  );
  assert.deepEqual(byHour.rows, [
    ['2026-01-02 10:00', '107'],
    ['2026-01-02 11:00', '250'],
    ['2026-01-03 10:00', '1000'],
  ]);
  const hours = ok(run('SELECT HOUR(opened_at), COUNT(*) FROM sessions_history GROUP BY 1 ORDER BY 1'));
  assert.deepEqual(hours.rows, [
    ['10', '3'],
    ['11', '1'],
  ]);
  const fromUnix = ok(run("SELECT FROM_UNIXTIME(opened_at_ms / 1000) FROM sessions_history WHERE id = 's2'"));
  assert.deepEqual(fromUnix.rows, [['2026-01-02 11:15:00']]);
});

test('live tables are refilled from the snapshot that comes with the query', () => {
  const sessions = [['id1', 'u9', 'live/a', 'hls', '1.2.3.4', 'h', 5, '2026-01-01 00:00:00', 0, 3, 'play']];
  let r = ok(run('SELECT user_id, bytes, opened_at FROM sessions', { live: { sessions } }));
  assert.deepEqual(r.rows, [['u9', '5', '2026-01-01 00:00:00']]);
  assert.equal(r.columns[2]?.type, TYPE.DATETIME);
  r = ok(run('SELECT COUNT(*) FROM sessions', { live: { sessions: [] } }));
  assert.deepEqual(r.rows, [['0']]);
});

test('a statement that would write is refused even when it gets past the guard', () => {
  for (const sql of [
    'DELETE FROM sessions_history',
    'DELETE FROM main.sessions_history',
    'INSERT INTO temp.sessions (id) VALUES (1)',
    'CREATE TABLE x (a)',
    "ATTACH ':memory:' AS m",
    'PRAGMA user_version = 3',
  ]) {
    const r = ex.run({
      sql,
      live: {},
      ctx: { database: null, user: '', connectionId: 0, version: '' },
      maxRows: 10,
      maxBytes: 1000,
    });
    assert.ok(!r.ok, sql);
    assert.equal(r.err.code, 1290, sql);
  }
  assert.deepEqual(ok(run('SELECT COUNT(*) FROM sessions_history')).rows, [['4']]);
});

test('results over the row or byte cap are refused, not cut short', () => {
  const rows = run('SELECT * FROM sessions_history', { maxRows: 3 });
  assert.ok(!rows.ok && rows.err.code === 1104 && rows.limit === 'sql_max_rows');
  const bytes = run('SELECT * FROM sessions_history', { maxBytes: 100 });
  assert.ok(!bytes.ok && bytes.err.code === 1104 && bytes.limit === 'sql_max_result_bytes');
  assert.equal(ok(run('SELECT * FROM sessions_history', { maxRows: 4 })).rows.length, 4);
});

test('SQLite errors come back as the MySQL errors clients know', () => {
  const cases: [string, number][] = [
    ['SELECT * FROM nosuch', 1146],
    ['SELECT nosuch FROM streams', 1054],
    ['SELECT nosuchfn(1)', 1305],
    ['SELECT FROM WHERE', 1064],
  ];
  for (const [sql, code] of cases) {
    const r = run(sql);
    assert.ok(!r.ok && r.err.code === code, `${sql}: ${JSON.stringify(r)}`);
  }
});

test('MySQL functions clients use: DATABASE(), VERSION(), IF(), NOW()', () => {
  const r = ok(run("SELECT DATABASE(), VERSION(), IF(1 > 0, 'y', 'n'), LENGTH(NOW())"));
  assert.deepEqual(r.rows, [['flussonic', 'v', 'y', '19']]);
});

test('a fresh history file (no session closed yet) reads as an empty table, then as the table once written', () => {
  const freshDir = mkdtempSync(join(tmpdir(), 'sg-sql-fresh-'));
  const freshFile = join(freshDir, 'history.db');
  new Database(freshFile).close(); // the server creates the file at start, the table with the first row
  const reader = new SqlExecutor(freshFile);
  const fresh = new SqliteHistory(`sqlite://${freshFile}`);
  try {
    const plan = planQuery('SELECT COUNT(*) FROM sessions_history', { database: 'flussonic', variables: {} });
    const count = (): unknown => {
      const r = reader.run({
        sql: plan.kind === 'select' ? plan.sql : '',
        live: {},
        ctx: { database: 'flussonic', user: 'admin', connectionId: 1, version: 'v' },
        maxRows: 10,
        maxBytes: 1 << 16,
      });
      return ok(r).rows[0]?.[0];
    };
    assert.equal(count(), '0');
    fresh.write(row(9, 'carol', 5, T0));
    fresh.flush();
    assert.equal(count(), '1');
  } finally {
    reader.close();
    fresh.close();
    rmSync(freshDir, { recursive: true, force: true });
  }
});
