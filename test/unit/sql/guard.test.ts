/** The read-only guard and MySQL → SQLite translation (src/sql/guard.ts). */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { planQuery, tokenize, type GuardContext, type Plan } from '../../../src/sql/guard.js';

const ctx: GuardContext = {
  database: 'flussonic',
  variables: {
    version: '8.0.0-streamgate',
    version_comment: 'streamgate',
    max_allowed_packet: 1024,
    autocommit: 1,
  },
};

function err(p: Plan): { code: number; state: string; message: string } {
  assert.ok(p.kind === 'reply' && p.reply.kind === 'err', `expected an error, got ${JSON.stringify(p)}`);
  return p.reply.err;
}

function rows(p: Plan): unknown[][] {
  assert.ok(p.kind === 'reply' && p.reply.kind === 'rows', `expected rows, got ${JSON.stringify(p)}`);
  return p.reply.rows as unknown[][];
}

function select(p: Plan): Extract<Plan, { kind: 'select' }> {
  assert.equal(p.kind, 'select', JSON.stringify(p));
  return p as Extract<Plan, { kind: 'select' }>;
}

test('writes and everything that is not a read are refused with 1290 before SQLite sees them', () => {
  for (const sql of [
    'INSERT INTO sessions_history VALUES (1)',
    'update sessions_history set bytes = 0',
    'DELETE FROM sessions_history',
    'DROP TABLE sessions_history',
    'REPLACE INTO streams VALUES (1)',
    'CREATE TABLE x (a)',
    'ALTER TABLE streams ADD c INT',
    'ATTACH DATABASE "/tmp/x.db" AS x',
    'DETACH main',
    'PRAGMA writable_schema = 1',
    'pragma journal_mode',
    'VACUUM',
    'TRUNCATE sessions_history',
    'LOAD DATA INFILE "x" INTO TABLE streams',
    'GRANT ALL ON *.* TO x',
    '/* hi */ delete from sessions',
    'KILL 1',
  ]) {
    const e = err(planQuery(sql, ctx));
    assert.equal(e.code, 1290, sql);
    assert.equal(e.state, 'HY000');
  }
});

test('one statement per query: a second one after ; is refused, a trailing ; is fine', () => {
  assert.equal(err(planQuery('SELECT 1; DROP TABLE sessions_history', ctx)).code, 1064);
  assert.equal(select(planQuery('SELECT 1;', ctx)).sql, 'SELECT 1');
  assert.equal(select(planQuery("SELECT ';' AS semi", ctx)).sql, "SELECT ';' AS semi");
});

test('MySQL strings become SQLite strings: double quotes, backslash escapes, doubled quotes', () => {
  assert.equal(
    select(planQuery(`SELECT * FROM streams WHERE name = "a'b"`, ctx)).sql,
    "SELECT * FROM streams WHERE name = 'a''b'",
  );
  assert.equal(
    select(planQuery(String.raw`SELECT 'it\'s', 'x''y', "q\"q"`, ctx)).sql,
    "SELECT 'it''s', 'x''y', 'q\"q'",
  );
});

test('@@variables become literals and the column keeps the name the client wrote', () => {
  const p = select(planQuery('SELECT @@version_comment LIMIT 1', ctx));
  assert.equal(p.sql, "SELECT 'streamgate' LIMIT 1");
  assert.deepEqual(p.renames, [["'streamgate'", '@@version_comment']]);
  const q = select(planQuery('select @@session.max_allowed_packet, @@GLOBAL.autocommit', ctx));
  assert.equal(q.sql, 'select 1024, 1');
  assert.equal(err(planQuery('SELECT @@nope', ctx)).code, 1193);
  assert.equal(err(planQuery('SELECT @x', ctx)).code, 1235);
});

test('flussonic./streamgate. qualifiers are dropped; live tables are found, also backquoted', () => {
  const p = select(
    planQuery(
      'SELECT COUNT(*) FROM `flussonic`.`sessions` s JOIN streamgate . streams t ON s.name = t.name',
      ctx,
    ),
  );
  assert.equal(p.sql, 'SELECT COUNT(*) FROM `sessions` s JOIN streams t ON s.name = t.name');
  assert.deepEqual(p.live.sort(), ['sessions', 'streams']);
  assert.deepEqual(select(planQuery('SELECT * FROM sessions_history', ctx)).live, []);
  // A string that mentions a table does not make it live.
  assert.deepEqual(select(planQuery("SELECT 'sessions'", ctx)).live, []);
});

test('comments are removed, /*! … */ bodies are kept as MySQL runs them', () => {
  assert.equal(select(planQuery('SELECT 1 -- two\n, 2 # three\n', ctx)).sql, 'SELECT 1 , 2');
  assert.deepEqual(planQuery('/*!40101 SET NAMES utf8mb4 */', ctx), { kind: 'reply', reply: { kind: 'ok' } });
  assert.equal(err(planQuery('/*!40101 DROP TABLE x */', ctx)).code, 1290);
  assert.equal(err(planQuery('-- nothing', ctx)).code, 1065);
  assert.equal(err(planQuery("SELECT 'open", ctx)).code, 1064);
});

test('the start-up statements clients send are answered here', () => {
  for (const sql of [
    'SET NAMES utf8mb4',
    'SET autocommit=1',
    'SET SESSION sql_mode = ""',
    'BEGIN',
    'COMMIT',
    'ROLLBACK',
    'START TRANSACTION READ ONLY',
  ]) {
    assert.deepEqual(planQuery(sql, ctx), { kind: 'reply', reply: { kind: 'ok' } }, sql);
  }
  assert.deepEqual(rows(planQuery('SHOW DATABASES', ctx)), [['flussonic']]);
  assert.deepEqual(rows(planQuery('show tables', ctx)), [['sessions'], ['sessions_history'], ['streams']]);
  assert.deepEqual(rows(planQuery("SHOW TABLES LIKE 'sess%'", ctx)), [['sessions'], ['sessions_history']]);
  assert.equal(err(planQuery('SHOW TABLES', { ...ctx, database: undefined })).code, 1046);
  assert.deepEqual(rows(planQuery('SHOW TABLES FROM streamgate', { ...ctx, database: undefined })).length, 3);
  assert.equal(err(planQuery('SHOW TABLES FROM mysql', ctx)).code, 1049);
  assert.deepEqual(planQuery('USE `streamgate`', ctx), { kind: 'use', db: 'streamgate' });
  const cols = rows(planQuery('SHOW COLUMNS FROM sessions_history', ctx));
  for (const c of [
    'user_id',
    'name',
    'proto',
    'ip',
    'bytes',
    'opened_at',
    'closed_at',
    'close_reason',
    'token_hash',
  ]) {
    assert.ok(
      cols.some((r) => r[0] === c),
      c,
    );
  }
  assert.ok(!cols.some((r) => r[0] === 'token'), 'never the token');
  assert.deepEqual(
    rows(planQuery("SHOW FIELDS FROM flussonic.streams LIKE 'name'", ctx)).map((r) => r[0]),
    ['name'],
  );
  assert.equal(rows(planQuery('DESCRIBE sessions', ctx)).length > 5, true);
  assert.equal(err(planQuery('DESC nosuch', ctx)).code, 1146);
  assert.match(
    String(rows(planQuery('SHOW CREATE TABLE sessions_history', ctx))[0]?.[1]),
    /CREATE TABLE `sessions_history`/,
  );
  assert.deepEqual(rows(planQuery("SHOW VARIABLES LIKE 'version%'", ctx)), [
    ['version', '8.0.0-streamgate'],
    ['version_comment', 'streamgate'],
  ]);
  assert.deepEqual(rows(planQuery('SHOW WARNINGS', ctx)), []);
  assert.equal(err(planQuery('SHOW PROCESSLIST', ctx)).code, 1235);
  assert.equal(err(planQuery('EXPLAIN SELECT 1', ctx)).code, 1235);
});

test('the tokenizer keeps quoted names and strings whole', () => {
  const t = tokenize('SELECT `a``b`, \'x -- y\', "z # w" FROM t');
  assert.deepEqual(
    t.filter((x) => x.k !== 'ws').map((x) => [x.k, x.v]),
    [
      ['word', 'SELECT'],
      ['bq', 'a`b'],
      ['punct', ','],
      ['str', 'x -- y'],
      ['punct', ','],
      ['str', 'z # w'],
      ['word', 'FROM'],
      ['word', 't'],
    ],
  );
});
