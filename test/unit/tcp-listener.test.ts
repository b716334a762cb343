/**
 * TcpListener's connection caps on a loopback port: `max_connections` in total and
 * `max_connections_per_ip`, with clients on 127.0.0.1 and 127.0.0.2 (both loopback on Linux)
 * standing for two hosts.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { connect, type Socket } from 'node:net';
import { after, before, test } from 'node:test';
import { DEFAULT_LIMITS, limitHits, type LimitName, type Limits } from '../../src/core/limits.js';
import type { CloseReason } from '../../src/core/reasons.js';
import { TcpListener } from '../../src/tcp-listener.js';
import { captureLog } from './sessions/helpers.js';

let limits: Limits = DEFAULT_LIMITS;
let listener: TcpListener;
let port = 0;
let lines: string[] = [];
/** Sockets the listener handed to its client factory, and what they were closed with. */
const accepted: Socket[] = [];
const closedWith: CloseReason[] = [];

before(async () => {
  const captured = captureLog();
  lines = captured.lines;
  listener = new TcpListener(
    { host: '127.0.0.1', port: 0 },
    (socket) => {
      accepted.push(socket);
      return { close: (reason) => closedWith.push(reason) };
    },
    { proto: 'test', log: captured.log, limits: () => limits },
  );
  await listener.start();
  port = listener.address()?.port ?? 0;
});

after(async () => {
  await listener.stop();
});

interface Client {
  socket: Socket;
  closed: boolean;
}

async function open(from = '127.0.0.1'): Promise<Client> {
  const socket = connect({ port, host: '127.0.0.1', localAddress: from });
  socket.on('error', () => undefined);
  const client = { socket, closed: false };
  socket.on('close', () => (client.closed = true));
  await once(socket, 'connect');
  return client;
}

/** Gives the server time to accept (or refuse) what connected. */
const settle = (): Promise<void> => new Promise((r) => setTimeout(r, 100));

async function closeAll(clients: Client[]): Promise<void> {
  for (const c of clients) c.socket.destroy();
  const deadline = Date.now() + 2000;
  while (accepted.some((s) => !s.destroyed && !s.closed) && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 10));
  }
  for (const s of accepted) s.destroy();
  accepted.length = 0;
}

const hits = (limit: LimitName): number => limitHits().get(limit) ?? 0;
const refusals = (): Record<string, unknown>[] =>
  lines.map((l) => JSON.parse(l) as Record<string, unknown>).filter((e) => e['event'] === 'limit_exceeded');

test('tcp listener: max_connections_per_ip — the next socket from that address is closed, another host still connects', async () => {
  limits = { ...DEFAULT_LIMITS, max_connections_per_ip: 3 };
  const before = hits('max_connections_per_ip');
  const logged = refusals().length;
  const clients: Client[] = [];
  try {
    for (let i = 0; i < 3; i++) clients.push(await open());
    const over = await open();
    clients.push(over);
    await settle();
    assert.equal(over.closed, true, 'the 4th socket from 127.0.0.1 is closed at once');
    assert.deepEqual(
      clients.slice(0, 3).map((c) => c.closed),
      [false, false, false],
    );
    assert.equal(accepted.length, 3, 'no client object for the refused socket');

    const other = await open('127.0.0.2');
    clients.push(other);
    await settle();
    assert.equal(other.closed, false, 'an honest host from another address is served');
    assert.equal(accepted.length, 4);

    // Many more from the same address: each is refused and counted, the log gets one line.
    const flood = await Promise.all(Array.from({ length: 20 }, () => open()));
    clients.push(...flood);
    await settle();
    assert.ok(flood.every((c) => c.closed));
    assert.equal(hits('max_connections_per_ip'), before + 21);
    const lines = refusals().slice(logged);
    assert.equal(lines.length, 1, 'one line for 21 refusals within a few seconds');
    assert.equal(lines[0]?.['limit'], 'max_connections_per_ip');
    assert.equal(lines[0]?.['ip'], '127.0.0.1');
    assert.equal(lines[0]?.['proto'], 'test');
    assert.equal(lines[0]?.['count'], 1);
    // The others are told as one count when the period ends.
    const deadline = Date.now() + 12_000;
    while (refusals().length < logged + 2 && Date.now() < deadline) await settle();
    const summary = refusals()[logged + 1];
    assert.equal(summary?.['ip'], '127.0.0.1');
    assert.equal(summary?.['count'], 20);

    // A socket that leaves frees its place.
    clients[0]?.socket.destroy();
    await settle();
    const again = await open();
    clients.push(again);
    await settle();
    assert.equal(again.closed, false);
  } finally {
    await closeAll(clients);
  }
});

test('tcp listener: max_connections — the next socket from any address is closed until one leaves', async () => {
  limits = { ...DEFAULT_LIMITS, max_connections: 3 };
  const before = hits('max_connections');
  const clients: Client[] = [];
  try {
    clients.push(await open('127.0.0.1'), await open('127.0.0.2'), await open('127.0.0.3'));
    await settle();
    const over = await open('127.0.0.4');
    clients.push(over);
    await settle();
    assert.equal(over.closed, true);
    assert.equal(hits('max_connections'), before + 1);
    assert.deepEqual(
      clients.slice(0, 3).map((c) => c.closed),
      [false, false, false],
    );
    clients[1]?.socket.destroy();
    await settle();
    const next = await open('127.0.0.4');
    clients.push(next);
    await settle();
    assert.equal(next.closed, false);
  } finally {
    await closeAll(clients);
  }
});

test('tcp listener: limits are read at accept, so a lowered limit applies to the next socket only', async () => {
  limits = DEFAULT_LIMITS;
  const clients: Client[] = [];
  try {
    clients.push(await open(), await open());
    await settle();
    limits = { ...DEFAULT_LIMITS, max_connections_per_ip: 1 };
    const over = await open();
    clients.push(over);
    await settle();
    assert.equal(over.closed, true);
    assert.deepEqual(
      clients.slice(0, 2).map((c) => c.closed),
      [false, false],
      'open connections stay',
    );
  } finally {
    await closeAll(clients);
  }
});

test('tcp listener: stop ends every client with server_shutdown', async () => {
  limits = DEFAULT_LIMITS;
  const captured = captureLog();
  const reasons: CloseReason[] = [];
  const l = new TcpListener(
    { host: '127.0.0.1', port: 0 },
    () => ({ close: (reason) => reasons.push(reason) }),
    { proto: 'test', log: captured.log, limits: () => limits },
  );
  await l.start();
  const socket = connect(l.address()?.port ?? 0, '127.0.0.1');
  socket.on('error', () => undefined);
  await once(socket, 'connect');
  await settle();
  await l.stop();
  assert.deepEqual(reasons, ['server_shutdown']);
  socket.destroy();
  assert.deepEqual(closedWith, []);
});
