/**
 * `workers N` without Redis: two session managers (two workers) whose ClusterStore is the
 * IPC store, wired through the primary's pure state with asynchronous delivery as the
 * cluster channel has. Per-user limits, bans and X-Unique hold across them.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { FakeClock } from '../../../src/clock.js';
import { IpcClusterStore, Requests } from '../../../src/cluster/ipc-store.js';
import type { PrimaryMessage, WorkerMessage } from '../../../src/cluster/messages.js';
import { PrimaryState } from '../../../src/cluster/primary-state.js';
import { SqliteHistory } from '../../../src/sessions/history.js';
import { Sessions } from '../../../src/sessions/manager.js';
import { captureLog, config, FakeBackend, granted, request, spec } from '../sessions/helpers.js';

interface Worker {
  id: number;
  manager: Sessions;
  backend: FakeBackend;
  requests: Requests;
  deliver(m: PrimaryMessage): void;
}

function cluster(count = 2): {
  workers: Worker[];
  primary: PrimaryState;
  sent: WorkerMessage[];
  clock: FakeClock;
} {
  const clock = new FakeClock();
  const primary = new PrimaryState(() => clock.now());
  const workers: Worker[] = [];
  const sent: WorkerMessage[] = [];
  const route = (from: number, m: WorkerMessage): void => {
    sent.push(m);
    // The channel is asynchronous: nothing is answered within the sender's turn.
    setImmediate(() => {
      for (const o of primary.handle(from, m)) {
        for (const w of workers) {
          if (o.to === 'all' ? w.id !== o.except : w.id === o.to) setImmediate(() => w.deliver(o.msg));
        }
      }
    });
  };
  for (let id = 1; id <= count; id++) {
    const backend = new FakeBackend();
    const send = (m: WorkerMessage): void => route(id, m);
    const requests = new Requests(send, 1_000);
    const { log } = captureLog();
    let onUnique = (_k: unknown): void => undefined;
    const store = new IpcClusterStore(send, requests, log);
    const manager = new Sessions({
      config: config(),
      policy: () => ({ onPlay: spec('http://backend.test/auth') }),
      clock,
      log,
      history: new SqliteHistory('sqlite://:memory:'),
      backendFactory: () => backend,
      cluster: store,
    });
    onUnique = (k) => manager.uniqueHandler()(k as Parameters<ReturnType<Sessions['uniqueHandler']>>[0]);
    workers.push({
      id,
      manager,
      backend,
      requests,
      deliver: (m) => {
        if (m.t === 'reply') requests.reply(m.rid, m.value);
        else if (m.t === 'unique') onUnique(m.kick);
      },
    });
  }
  return { workers, primary, sent, clock };
}

const user = (extra: { maxSessions?: number; unique?: boolean }) => () => ({
  kind: 'allow' as const,
  authDurationSec: 180,
  userId: 'u1',
  ...extra,
});

test('workers: X-Max-Sessions 1 holds across two workers; the refused identity is banned on both', async () => {
  const { workers, clock } = cluster();
  const [w1, w2] = workers as [Worker, Worker];
  w1.backend.answer = user({ maxSessions: 1 });
  w2.backend.answer = user({ maxSessions: 1 });
  const first = granted(await w1.manager.open(request({ proto: 'rtmp', token: 'dev-a' })));
  // Opened a millisecond apart or more: within one, the session ids decide who is newer.
  await clock.advance(1000);
  const second = await w2.manager.open(request({ proto: 'rtmp', token: 'dev-b' }));
  assert.equal(second.allow, false, 'the second device, on the other worker, is refused');
  assert.equal(second.allow === false && second.reason, 'session_limit');
  assert.equal(first.closed, false, 'the first keeps playing');
  // The ban reached the primary: worker 1 refuses dev-b without asking its backend.
  const calls = w1.backend.calls.length;
  const again = await w1.manager.open(request({ proto: 'rtmp', token: 'dev-b' }));
  assert.equal(again.allow === false && again.reason, 'banned');
  assert.equal(w1.backend.calls.length, calls);
  // When the first closes, the count drops everywhere: a third device is let in on worker 2.
  first.close('client_closed');
  await new Promise((r) => setImmediate(r));
  granted(await w2.manager.open(request({ proto: 'rtmp', token: 'dev-c' })));
  for (const w of workers) w.manager.close();
});

test("workers: X-Unique on one worker kicks the user's older session on the other", async () => {
  const { workers, clock } = cluster();
  const [w1, w2] = workers as [Worker, Worker];
  w1.backend.answer = user({ unique: true });
  w2.backend.answer = user({ unique: true });
  const older = granted(await w1.manager.open(request({ proto: 'rtmp', token: 'tv' })));
  await clock.advance(1000);
  let killed = '';
  older.onKill((reason) => (killed = reason));
  const newer = granted(await w2.manager.open(request({ proto: 'rtmp', token: 'phone' })));
  await new Promise((r) => setTimeout(r, 10));
  assert.equal(older.closed, true);
  assert.equal(killed, 'duplicated_user_id');
  assert.equal(newer.closed, false, 'the newest stays');
  for (const w of workers) w.manager.close();
});

test("workers: a crashed worker's sessions stop counting against the user", async () => {
  const { workers, primary } = cluster();
  const [w1, w2] = workers as [Worker, Worker];
  w1.backend.answer = user({ maxSessions: 1 });
  w2.backend.answer = user({ maxSessions: 1 });
  granted(await w1.manager.open(request({ proto: 'rtmp', token: 'dev-a' })));
  assert.equal(primary.shared.size, 1);
  primary.workerGone(1);
  granted(await w2.manager.open(request({ proto: 'rtmp', token: 'dev-b' })));
  for (const w of workers) w.manager.close();
});

test('workers: a primary that does not answer never refuses a session (limits then hold per worker)', async () => {
  const { log } = captureLog();
  // The store's deadline timer does not hold a process open (a worker has its listeners for that).
  const keepAlive = setTimeout(() => undefined, 5_000);
  const requests = new Requests(() => undefined, 20);
  const store = new IpcClusterStore(() => undefined, requests, log);
  const t0 = Date.now();
  assert.equal(await store.register({ id: 's', kind: 'play', userId: 'u', openedAt: 1 }), undefined);
  assert.ok(Date.now() - t0 >= 15, 'waited for the deadline');
  assert.equal(await store.getBan('k'), undefined);
  const closed = new Requests(() => {
    throw new Error('channel closed');
  });
  assert.equal(await closed.ask(() => ({ t: 'lookup', rid: 0, name: 'x' }), 'none'), 'none');
  // A reply after the deadline is ignored.
  requests.reply(1, { total: 9, newer: 9 });
  clearTimeout(keepAlive);
});
