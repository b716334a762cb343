/**
 * The SQL endpoint's parsers: the MySQL connection machine (src/sql/wire) fed mutated captures
 * of the real mariadb client in any chunking, and the read-only guard (src/sql/guard.ts) fed
 * any text. Neither may throw, and the guard hands SQLite nothing but a SELECT-like statement.
 */
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { planQuery } from '../../src/sql/guard.js';
import { MysqlMachine } from '../../src/sql/wire/machine.js';
import {
  chunkingArb,
  defineTarget,
  expectNoThrow,
  fixture,
  mutated,
  pieces,
  rawBytes,
  textArb,
  withinBudget,
  type FuzzTarget,
} from './support.js';

const SCRAMBLE = Buffer.from('0102030405060708090a0b0c0d0e0f1011121314', 'hex');

/** The client side of a capture, as one byte stream. */
function clientBytes(file: string): Buffer {
  const text = fixture(`test/fixtures/mysql/${file}`).toString('utf8');
  return Buffer.concat(
    text
      .trim()
      .split('\n')
      .filter((l) => l.startsWith('C '))
      .map((l) => Buffer.from(l.slice(2), 'hex')),
  );
}

const captures = [clientBytes('mariadb-10.11-native.txt'), clientBytes('mariadb-10.11-caching-sha2.txt')];

function feed(bytes: Buffer, chunks: Buffer[]): void {
  const m = new MysqlMachine({
    serverVersion: '8.0.0-fuzz',
    connectionId: 1,
    scramble: SCRAMBLE,
    account: { user: 'admin', password: 's3cret' },
    databases: ['flussonic'],
    clientIp: '127.0.0.1',
    maxPacketBytes: 4096,
  });
  m.greeting();
  let closed = false;
  withinBudget(bytes.length, () => {
    for (const c of chunks) {
      for (const ev of m.receive(c)) {
        assert.ok(!closed, 'no event after close');
        if (ev.type === 'close') closed = true;
        if (ev.type === 'send') assert.ok(ev.bytes.length >= 4);
      }
    }
  });
}

const SQL_ALPHABET = 'abcdefghijklmnopqrstuvwxyz SELECTFROMWHEREDROPINSERT@`\'"\\;#-*/!(),.0123456789\n';

export const mysqlTargets: readonly FuzzTarget[] = [
  defineTarget({
    name: 'mysql-machine',
    property:
      'MysqlMachine.receive: mutated mariadb captures or raw bytes, any chunking → never throws, nothing after close',
    arbitrary: fc.record({
      bytes: fc.oneof(mutated(fc.constantFrom(...captures)), rawBytes(1024)),
      chunking: chunkingArb,
    }),
    check: ({ bytes, chunking }) => expectNoThrow(() => feed(bytes, pieces(bytes, chunking))),
  }),
  defineTarget({
    name: 'mysql-guard',
    property:
      'planQuery: any text → never throws; only SELECT, WITH, VALUES or ( reaches SQLite, one statement',
    arbitrary: fc.oneof(textArb(SQL_ALPHABET, 200), fc.string({ maxLength: 200 })),
    check: (sql) => {
      const plan = expectNoThrow(() =>
        planQuery(sql, { database: 'flussonic', variables: { version: '1' } }),
      );
      if (plan.kind !== 'select') return;
      assert.match(plan.sql, /^(select|with|values|\()/i);
      // The statement SQLite gets is one statement: it rejects a second one, and the guard cut any.
      assert.ok(!/;\s*\S/.test(plan.sql.replace(/'(?:[^']|'')*'|`(?:[^`]|``)*`/g, '')), plan.sql);
    },
  }),
];
