/**
 * The MySQL wire codec and connection machine against bytes captured from the real mariadb
 * client (10.11, libmariadb 3.3) talking to this server: its native and caching_sha2
 * logins, a query and COM_QUIT; then the ways a client can be wrong or hostile.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import fc from 'fast-check';
import { checkScramble, NATIVE, SHA2, scrambleResponse } from '../../../src/sql/wire/auth.js';
import {
  decodeHandshakeResponse,
  encodeResultSet,
  frame,
  lenencInt,
  PacketReader,
  PacketTooLarge,
  Reader,
  TYPE,
} from '../../../src/sql/wire/codec.js';
import {
  encodeReply,
  MAX_BAD_COMMANDS,
  MysqlMachine,
  parseCommand,
  type MachineEvent,
} from '../../../src/sql/wire/machine.js';

const SCRAMBLE = Buffer.from('0102030405060708090a0b0c0d0e0f1011121314', 'hex');

function capture(name: string): { dir: 'S' | 'C'; bytes: Buffer }[] {
  const text = readFileSync(new URL(`../../fixtures/mysql/${name}`, import.meta.url), 'utf8');
  return text
    .trim()
    .split('\n')
    .map((l) => ({ dir: l[0] as 'S' | 'C', bytes: Buffer.from(l.slice(2), 'hex') }));
}

function machine(password = 's3cret', maxPacketBytes = 1 << 20): MysqlMachine {
  return new MysqlMachine({
    serverVersion: '8.0.0-streamgate-test',
    connectionId: 7,
    scramble: SCRAMBLE,
    account: { user: 'admin', password },
    databases: ['flussonic', 'streamgate'],
    clientIp: '127.0.0.1',
    maxPacketBytes,
  });
}

const sent = (evs: MachineEvent[]): Buffer =>
  Buffer.concat(evs.flatMap((e) => (e.type === 'send' ? [e.bytes] : [])));
const errCode = (bytes: Buffer): number | undefined =>
  bytes[4] === 0xff ? bytes.readUInt16LE(5) : undefined;
const SELECT_1 = { kind: 'rows' as const, columns: [{ name: '1', type: TYPE.LONGLONG }], rows: [['1']] };

/** Replays a capture: every server packet we produce must equal the one the client accepted. */
function replay(name: string, opts: { chunked?: boolean } = {}): MachineEvent[] {
  const m = machine();
  const all: MachineEvent[] = [];
  const script = capture(name);
  let expected: Buffer[] = [];
  let produced: Buffer[] = [m.greeting()];
  for (const step of script) {
    if (step.dir === 'S') {
      expected.push(step.bytes);
      continue;
    }
    assert.deepEqual(Buffer.concat(produced).toString('hex'), Buffer.concat(expected).toString('hex'));
    expected = [];
    produced = [];
    const chunks = opts.chunked ? [...step.bytes].map((b) => Buffer.from([b])) : [step.bytes];
    for (const c of chunks) {
      const evs = m.receive(c);
      all.push(...evs);
      produced.push(sent(evs));
      for (const e of evs) if (e.type === 'command') produced.push(encodeReply(SELECT_1, 'flussonic'));
    }
  }
  assert.deepEqual(Buffer.concat(produced).toString('hex'), Buffer.concat(expected).toString('hex'));
  return all;
}

test('mariadb client, mysql_native_password: login, SELECT 1, COM_QUIT', () => {
  const evs = replay('mariadb-10.11-native.txt');
  const auth = evs.find((e) => e.type === 'authenticated');
  assert.ok(auth && auth.type === 'authenticated');
  assert.equal(auth.user, 'admin');
  assert.equal(auth.plugin, NATIVE);
  assert.equal(auth.database, 'flussonic');
  assert.equal(auth.attrs['program_name'], 'mysql');
  assert.deepEqual(
    evs.filter((e) => e.type === 'command').map((e) => e.type === 'command' && e.command),
    [{ kind: 'query', sql: 'select 1' }],
  );
  assert.deepEqual(evs.at(-1), { type: 'close', reason: 'quit', detail: 'COM_QUIT' });
});

test('mariadb client, caching_sha2_password: auth switch, fast auth, query', () => {
  const evs = replay('mariadb-10.11-caching-sha2.txt');
  const auth = evs.find((e) => e.type === 'authenticated');
  assert.ok(auth && auth.type === 'authenticated' && auth.plugin === SHA2);
});

test('the same captures fed one byte at a time', () => {
  replay('mariadb-10.11-native.txt', { chunked: true });
  replay('mariadb-10.11-caching-sha2.txt', { chunked: true });
});

test("the real client's scramble answers are what auth.ts computes", () => {
  const native = capture('mariadb-10.11-native.txt').find((s) => s.dir === 'C') as { bytes: Buffer };
  const resp = decodeHandshakeResponse(native.bytes.subarray(4));
  assert.equal(resp.authPlugin, NATIVE);
  assert.deepEqual(resp.authResponse, scrambleResponse(NATIVE, 's3cret', SCRAMBLE));
  assert.ok(checkScramble(NATIVE, 's3cret', SCRAMBLE, resp.authResponse));
  assert.ok(!checkScramble(NATIVE, 's3cretx', SCRAMBLE, resp.authResponse));
  const sha2 = capture('mariadb-10.11-caching-sha2.txt').filter((s) => s.dir === 'C')[1] as { bytes: Buffer };
  assert.ok(checkScramble(SHA2, 's3cret', SCRAMBLE, sha2.bytes.subarray(4)));
  assert.ok(!checkScramble(SHA2, 'other', SCRAMBLE, sha2.bytes.subarray(4)));
  assert.ok(!checkScramble(NATIVE, 's3cret', SCRAMBLE, Buffer.alloc(0)), 'empty answer, non-empty password');
});

test('a wrong password or user gets ERR 1045 / 28000 and the connection ends', () => {
  const client = capture('mariadb-10.11-native.txt').find((s) => s.dir === 'C') as { bytes: Buffer };
  const wrongUser = Buffer.from(client.bytes);
  wrongUser.set(Buffer.from('admix'), wrongUser.indexOf(Buffer.from('admin\0')));
  const cases: [MysqlMachine, Buffer, string][] = [
    [machine('not-it'), client.bytes, 'admin'],
    [machine(), wrongUser, 'admix'],
  ];
  for (const [m, bytes, user] of cases) {
    m.greeting();
    const evs = m.receive(bytes);
    const out = sent(evs);
    assert.equal(errCode(out), 1045);
    assert.ok(
      out
        .toString('latin1')
        .includes(`#28000Access denied for user '${user}'@'127.0.0.1' (using password: YES)`),
    );
    assert.ok(evs.some((e) => e.type === 'auth_failed'));
    assert.equal(evs.at(-1)?.type, 'close');
    assert.ok(!m.authenticated);
  }
});

test('an unknown database in the login is ER_BAD_DB', () => {
  const m = machine();
  m.greeting();
  const client = capture('mariadb-10.11-native.txt').find((s) => s.dir === 'C') as { bytes: Buffer };
  const b = Buffer.from(client.bytes);
  b.set(Buffer.from('flussonix'), b.indexOf(Buffer.from('flussonic\0')));
  const evs = m.receive(b);
  assert.equal(errCode(sent(evs)), 1049);
  assert.equal(evs.at(-1)?.type, 'close');
});

/** A machine past authentication. */
function ready(): MysqlMachine {
  const m = machine();
  m.greeting();
  const client = capture('mariadb-10.11-native.txt').find((s) => s.dir === 'C') as { bytes: Buffer };
  m.receive(client.bytes);
  assert.ok(m.authenticated);
  return m;
}

test('a packet announced over the limit is refused from its header (ER 1153), nothing buffered', () => {
  const m = machine('s3cret', 1024);
  m.greeting();
  const head = Buffer.from([0x01, 0x04, 0x00, 0x01]); // 1025 bytes announced
  const evs = m.receive(head);
  assert.equal(errCode(sent(evs)), 1153);
  assert.deepEqual(evs.at(-1), {
    type: 'close',
    reason: 'packet_too_large',
    detail: 'packet of 1025 bytes is over the limit',
  });
  assert.deepEqual(m.receive(Buffer.alloc(2000)), [], 'nothing more is read');
  const r = new PacketReader(16);
  assert.throws(() => r.push(Buffer.from([0xff, 0xff, 0xff, 0x00])), PacketTooLarge);
});

test('packets out of sequence end the connection with ER 1156', () => {
  const m = ready();
  const evs = m.receive(frame(Buffer.from([0x0e]), 5).bytes);
  assert.equal(errCode(sent(evs)), 1156);
  assert.equal(evs.at(-1)?.type, 'close');
});

test('unknown commands are answered one by one; a flood of them closes the connection', () => {
  const m = ready();
  const bad = frame(Buffer.from([0x55, 1, 2, 3]), 0).bytes;
  for (let i = 0; i < MAX_BAD_COMMANDS; i++) {
    const evs = m.receive(bad);
    assert.equal(evs.length, 1);
    assert.equal(evs[0]?.type === 'command' && evs[0].command.kind, 'bad');
  }
  const evs = m.receive(bad);
  assert.equal(errCode(sent(evs)), 1047);
  assert.equal(evs.at(-1)?.type === 'close' && evs.at(-1)?.type, 'close');
});

test('garbage never throws: before or after login, any bytes give events or a clean close', () => {
  fc.assert(
    fc.property(
      fc.array(fc.uint8Array({ maxLength: 300 }), { maxLength: 6 }),
      fc.boolean(),
      (chunks, authed) => {
        const m = authed ? ready() : machine();
        if (!authed) m.greeting();
        for (const c of chunks) m.receive(Buffer.from(c));
      },
    ),
    { numRuns: 300, seed: 1 },
  );
});

test('commands parse without throwing, including empty and truncated ones', () => {
  assert.deepEqual(parseCommand(Buffer.alloc(0)), { kind: 'bad', detail: 'empty command packet' });
  assert.deepEqual(parseCommand(Buffer.from([0x04])), { kind: 'field_list', table: '' });
  assert.deepEqual(parseCommand(Buffer.from([0x02, 0x61])), { kind: 'init_db', db: 'a' });
  assert.deepEqual(parseCommand(Buffer.from([0x16, 0x61])), { kind: 'prepare' });
});

test('an SSLRequest is refused with a hint instead of hanging', () => {
  const m = machine();
  m.greeting();
  const ssl = Buffer.alloc(32);
  ssl.writeUInt32LE(0x200 | 0x800 | 0x8000, 0);
  const evs = m.receive(frame(ssl, 1).bytes);
  assert.match(sent(evs).toString('latin1'), /does not offer TLS/);
});

test('length-encoded integers at their thresholds, and the reader refuses to run past the end', () => {
  for (const n of [0, 250, 251, 0xffff, 0x10000, 0xffffff, 0x1000000, 2 ** 40]) {
    assert.equal(new Reader(lenencInt(n)).lenencInt(), n);
  }
  assert.throws(() => new Reader(Buffer.from([0xfc, 0x01])).lenencInt(), /ends early/);
});

test('a result set: column count, definitions, EOF, rows with NULL, EOF, consecutive sequence ids', () => {
  const b = encodeResultSet(
    [
      { name: 'user_id', type: TYPE.VAR_STRING },
      { name: 'n', type: TYPE.LONGLONG },
    ],
    [
      ['u1', '2'],
      [null, '3'],
    ],
    'flussonic',
    1,
  );
  const seqs: number[] = [];
  const payloads: Buffer[] = [];
  const r = new PacketReader(1 << 20);
  for (const p of r.push(b)) {
    seqs.push(p.seq);
    payloads.push(p.payload);
  }
  assert.deepEqual(seqs, [1, 2, 3, 4, 5, 6, 7]);
  assert.deepEqual(payloads[0], Buffer.from([2]));
  assert.deepEqual(payloads[5], Buffer.from([0xfb, 0x01, 0x33]));
  assert.equal(payloads[3]?.[0], 0xfe);
});

test('a payload of 16 MiB or more is split into frames (the last one may be empty)', () => {
  const big = Buffer.alloc(0xffffff);
  const f = frame(big, 1);
  assert.equal(f.bytes.length, 0xffffff + 4 + 4);
  assert.equal(f.next, 3);
});
