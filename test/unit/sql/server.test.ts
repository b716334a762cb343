/**
 * The SQL endpoint in process on a loopback port, with its real query worker: login, queries
 * over history and live sessions, the query deadline (the worker is terminated and replaced),
 * and hostile clients that cost only their own connection.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import pino from 'pino';
import { defaultConfig } from '../../../src/config/build.js';
import type { Config } from '../../../src/config/types.js';
import { DEFAULT_LIMITS, limitHits } from '../../../src/core/limits.js';
import { SqliteHistory } from '../../../src/sessions/history.js';
import type { Session, SessionManager } from '../../../src/sessions/types.js';
import { createSqlServer, type SqlServer } from '../../../src/sql/server.js';
import type { StreamRegistry } from '../../../src/streams/registry.js';
import { TestMysqlClient } from './client.js';

const dir = mkdtempSync(join(tmpdir(), 'sg-sqlsrv-'));
const historyFile = join(dir, 'history.db');
let history: SqliteHistory;
let server: SqlServer;
let port = 0;
const config: Config = {
  ...defaultConfig('test', dir),
  editAuth: { user: 'admin', password: 'pw' },
  limits: { ...DEFAULT_LIMITS, sql_query_timeout: 0.5, handshake_timeout: 0.5 },
};
const openSession = {
  id: 'open-1',
  userId: 'carol',
  name: 'live/cam1',
  proto: 'hls',
  ip: '10.0.0.9',
  token: 'secret-token-never-shown',
  bytes: 4242,
  openedAt: Date.now() - 5000,
  kind: 'play',
} as unknown as Session;
const sessions = {
  list: () => [openSession],
  open: () => Promise.reject(new Error('unused')),
} as SessionManager;
const registry = { list: () => [] } as unknown as StreamRegistry;

before(async () => {
  history = new SqliteHistory(`sqlite://${historyFile}`);
  for (const [i, user, bytes] of [
    [1, 'alice', 10],
    [2, 'alice', 20],
    [3, 'bob', 5],
  ] as const) {
    history.write({
      id: `h${i}`,
      user_id: user,
      name: 'live/cam1',
      proto: 'rtmp',
      ip: '10.0.0.1',
      token_hash: 'x',
      bytes,
      opened_at: 1_700_000_000_000,
      closed_at: 1_700_000_060_000,
      close_reason: 'client_closed',
      user_agent: null,
      referer: null,
    });
  }
  server = createSqlServer({
    listen: { host: '127.0.0.1', port: 0 },
    config: () => config,
    log: pino({ level: 'silent' }),
    sessions,
    registry,
    serverVersion: '8.0.0-streamgate-test',
    historyPath: historyFile,
  });
  await server.start();
  port = server.address()?.port ?? 0;
});

after(async () => {
  await server.stop();
  history.close();
  rmSync(dir, { recursive: true, force: true });
});

/** This test process's query-worker children (running or not yet reaped). */
function queryProcesses(): string[] {
  const r = spawnSync('ps', ['-o', 'pid=,stat=,args=', '--ppid', String(process.pid)], { encoding: 'utf8' });
  return r.stdout.split('\n').filter((l) => l.includes('query-worker') && !/^\s*\d+\s+Z/.test(l));
}

async function loggedIn(): Promise<TestMysqlClient> {
  const c = await TestMysqlClient.open(port);
  const okPacket = await c.login('admin', 'pw', 'flussonic');
  assert.equal(okPacket?.payload[0], 0x00, 'OK after login');
  return c;
}

test('login, then history per user and the open sessions (token hashed)', async () => {
  const c = await loggedIn();
  assert.deepEqual(
    await c.query('SELECT user_id, COUNT(*), SUM(bytes) FROM sessions_history GROUP BY user_id'),
    {
      columns: ['user_id', 'COUNT(*)', 'SUM(bytes)'],
      rows: [
        ['alice', '2', '30'],
        ['bob', '1', '5'],
      ],
    },
  );
  const live = await c.query('SELECT * FROM sessions');
  assert.ok('rows' in live);
  assert.equal(live.rows.length, 1);
  assert.ok(!JSON.stringify(live).includes('secret-token'), 'never the token');
  assert.deepEqual(live.rows[0]?.slice(1, 5), ['carol', 'live/cam1', 'hls', '10.0.0.9']);
  c.close();
});

test('a write gets a MySQL error and the connection stays usable', async () => {
  const c = await loggedIn();
  const r = await c.query('DELETE FROM sessions_history');
  assert.ok('code' in r && r.code === 1290, JSON.stringify(r));
  assert.deepEqual(await c.query('SELECT COUNT(*) FROM sessions_history'), {
    columns: ['COUNT(*)'],
    rows: [['3']],
  });
  c.close();
});

test('bad credentials: 1045 and the connection is closed', async () => {
  for (const [user, pw] of [
    ['admin', 'wrong'],
    ['root', 'pw'],
  ]) {
    const c = await TestMysqlClient.open(port);
    const p = await c.login(user as string, pw as string);
    assert.equal(p?.payload[0], 0xff);
    assert.equal(p?.payload.readUInt16LE(1), 1045);
    assert.equal(await c.packet(), undefined, 'closed after the error');
  }
});

test('a query over sql_query_timeout is stopped with 3024; the next query runs in a fresh process', async () => {
  const c = await loggedIn();
  const before = limitHits().get('sql_query_timeout') ?? 0;
  const r = await c.query(
    'WITH RECURSIVE n(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM n) SELECT COUNT(*) FROM n',
  );
  assert.ok('code' in r && r.code === 3024, JSON.stringify(r));
  assert.equal(limitHits().get('sql_query_timeout'), before + 1);
  // The endless query's process was killed, not left spinning in SQLite's C code.
  for (let i = 0; i < 40 && queryProcesses().length > 0; i++) await new Promise((r) => setTimeout(r, 50));
  assert.deepEqual(queryProcesses(), []);
  assert.deepEqual(await c.query('SELECT COUNT(*) FROM sessions_history'), {
    columns: ['COUNT(*)'],
    rows: [['3']],
  });
  assert.equal(queryProcesses().length, 1, 'a fresh query process');
  c.close();
});

test('malformed packets and floods close that client only; others keep querying', async () => {
  const honest = await loggedIn();
  // Garbage instead of a login.
  const junk = await TestMysqlClient.open(port);
  await junk.packet();
  junk.socket.write(Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n'));
  assert.equal((await junk.packet())?.payload[0], 0xff);
  assert.equal(await junk.packet(), undefined);
  // An authenticated client flooding unknown commands.
  const flood = await loggedIn();
  const bad = Buffer.from([0x01, 0x00, 0x00, 0x00, 0x55]);
  flood.socket.write(Buffer.concat(Array(100).fill(bad)));
  let last;
  do last = await flood.packet();
  while (last);
  assert.ok(flood.closed);
  // A packet header announcing 16 MiB.
  const big = await loggedIn();
  big.socket.write(Buffer.from([0xff, 0xff, 0xff, 0x00]));
  const e = await big.packet();
  assert.equal(e?.payload.readUInt16LE(1), 1153);
  assert.equal(await big.packet(), undefined);
  // A silent client runs out of handshake_timeout.
  const silent = await TestMysqlClient.open(port);
  await silent.packet();
  assert.equal(await silent.packet(3000), undefined);
  assert.deepEqual(await honest.query('SELECT 1 AS one'), { columns: ['one'], rows: [['1']] });
  // Column names as MySQL gives them: a string literal by its value, a variable as written.
  assert.deepEqual(await honest.query("SELECT 'x', CONCAT('a', 'b'), @@version"), {
    columns: ['x', "CONCAT('a', 'b')", '@@version'],
    rows: [['x', 'ab', '8.0.0-streamgate-test']],
  });
  honest.close();
});
