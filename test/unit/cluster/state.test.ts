/** `workers N`: the primary's pure state (owners, shared sessions), the restart back-off and the directive. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseConfig } from '../../../src/config/parse.js';
import { isPrimaryMessage, isWorkerMessage } from '../../../src/cluster/messages.js';
import { restartDelay, workerCount } from '../../../src/cluster/primary.js';
import { PrimaryState, type PrimaryEvent } from '../../../src/cluster/primary-state.js';
import { SharedSessions } from '../../../src/cluster/shared-sessions.js';

const T0 = 1_700_000_000_000;
const relay1 = { host: '127.0.0.1', port: 1001 };
const relay2 = { host: '127.0.0.1', port: 1002 };

function twoWorkers(): PrimaryState {
  const p = new PrimaryState();
  p.handle(1, { t: 'ready', addresses: {}, relay: relay1 });
  p.handle(2, { t: 'ready', addresses: {}, relay: relay2 });
  return p;
}

test('workers directive: a count or auto, once, at the top level', () => {
  const ok = (text: string) => {
    const r = parseConfig(text, 't.conf');
    if ('errors' in r) assert.fail(r.errors.map((e) => e.message).join('; '));
    return r.config;
  };
  const errs = (text: string) => {
    const r = parseConfig(text, 't.conf');
    assert.ok('errors' in r, 'expected errors');
    return r.errors.map((e) => `${e.line}:${e.col}: ${e.message}`);
  };
  assert.equal(ok('http 8080;').workers, undefined);
  assert.equal(ok('workers 4;').workers, 4);
  assert.equal(ok('workers auto;').workers, 'auto');
  assert.deepEqual(errs('workers 0;\nworkers two;\nworkers 300;'), [
    "1:9: 'workers' must be a whole number from 1 to 256 or 'auto', got '0'",
    "2:9: 'workers' must be a whole number from 1 to 256 or 'auto', got 'two'",
    "3:9: 'workers' must be a whole number from 1 to 256 or 'auto', got '300'",
  ]);
  assert.deepEqual(errs('workers 2;\nworkers 3;'), ["2:1: duplicate 'workers' (already set at 1:1)"]);
  assert.match(
    errs('stream s { input fake://x; workers 2; }')[0] ?? '',
    /'workers' is not allowed inside a stream/,
  );
  assert.equal(workerCount({}), 1, 'absent: one process, as before');
  assert.equal(workerCount({ workers: 3 }), 3);
  assert.equal(
    workerCount({ workers: 'auto' }, () => 6),
    6,
  );
  assert.equal(
    workerCount({ workers: 'auto' }, () => 0),
    1,
  );
});

test('restart back-off: 250 ms doubling per crash in a row, capped at 30 s', () => {
  assert.deepEqual([0, 1, 2, 3].map(restartDelay), [250, 500, 1000, 2000]);
  assert.equal(restartDelay(-1), 250);
  assert.equal(restartDelay(20), 30_000);
});

test('owners: a publish is announced to the other workers, a lookup finds it, unpublish clears it', () => {
  const p = twoWorkers();
  assert.deepEqual(p.handle(2, { t: 'lookup', rid: 7, name: 'live/a' }), [
    { to: 2, msg: { t: 'reply', rid: 7, value: null } },
  ]);
  assert.deepEqual(p.handle(1, { t: 'published', name: 'live/a' }), [
    { to: 'all', except: 1, msg: { t: 'owner', name: 'live/a', worker: 1, relay: relay1 } },
  ]);
  assert.deepEqual(p.handle(2, { t: 'lookup', rid: 8, name: 'live/a' }), [
    { to: 2, msg: { t: 'reply', rid: 8, value: { worker: 1, relay: relay1 } } },
  ]);
  // Only the owner can give a name up.
  assert.deepEqual(p.handle(2, { t: 'unpublished', name: 'live/a' }), []);
  assert.deepEqual(p.handle(1, { t: 'unpublished', name: 'live/a' }), [
    { to: 'all', except: 1, msg: { t: 'no_owner', name: 'live/a' } },
  ]);
  assert.equal(p.owners.lookup('live/a'), undefined);
});

test('owners: a second worker publishing the same name is a conflict, not a new owner', () => {
  const p = twoWorkers();
  p.handle(1, { t: 'published', name: 'live/a' });
  const events: PrimaryEvent[] = [];
  assert.deepEqual(p.handle(2, { t: 'published', name: 'live/a' }, events), []);
  assert.deepEqual(events, [{ kind: 'publish_conflict', worker: 2, stream: 'live/a' }]);
  assert.equal(p.owners.lookup('live/a')?.worker, 1);
  // The owner announcing again (a restarted input) is not a conflict.
  assert.equal(p.handle(1, { t: 'published', name: 'live/a' }).length, 1);
});

test('owners: a worker that exits takes its streams with it, and the others are told', () => {
  const p = twoWorkers();
  p.handle(1, { t: 'published', name: 'live/a' });
  p.handle(1, { t: 'published', name: 'tv' });
  p.handle(2, { t: 'published', name: 'live/b' });
  const gone = p.workerGone(1);
  assert.deepEqual(
    gone.out.map((o) => o.msg),
    [
      { t: 'no_owner', name: 'live/a' },
      { t: 'no_owner', name: 'tv' },
    ],
  );
  assert.deepEqual(p.owners.names(), ['live/b']);
  // A name published before its worker said ready has no relay to offer yet.
  const q = new PrimaryState();
  assert.deepEqual(q.handle(3, { t: 'published', name: 'x' }), []);
  assert.equal(q.owners.lookup('x'), undefined);
});

test('shared sessions: per-user totals across workers, "newer" in the order every node computes', () => {
  const p = twoWorkers();
  const reg = (w: number, id: string, openedAt: number, userId = 'u1') =>
    // Epoch milliseconds, as sessions carry them (the order compares `<openedAt>:<id>` strings).
    p.handle(w, { t: 'register', rid: 1, session: { id, kind: 'play', userId, openedAt: T0 + openedAt } })[0]
      ?.msg;
  assert.deepEqual(reg(1, 's1', 100), { t: 'reply', rid: 1, value: { total: 1, newer: 0 } });
  assert.deepEqual(reg(2, 's2', 200), { t: 'reply', rid: 1, value: { total: 2, newer: 0 } });
  // Registered late but opened earlier: s2 is newer than it.
  assert.deepEqual(reg(2, 's0', 50), { t: 'reply', rid: 1, value: { total: 3, newer: 2 } });
  assert.deepEqual(reg(1, 'x1', 300, 'other'), { t: 'reply', rid: 1, value: { total: 1, newer: 0 } });
  p.handle(2, { t: 'unregister', id: 's0' });
  assert.deepEqual(reg(1, 's3', 400), { t: 'reply', rid: 1, value: { total: 3, newer: 0 } });
  // Publish sessions of the same user count separately.
  const pub = p.handle(1, {
    t: 'register',
    rid: 2,
    session: { id: 'p1', kind: 'publish', userId: 'u1', openedAt: 1 },
  });
  assert.deepEqual(pub[0]?.msg, { t: 'reply', rid: 2, value: { total: 1, newer: 0 } });
  assert.equal(p.workerGone(1).sessionsDropped, 4);
  assert.deepEqual(reg(2, 's4', 500), { t: 'reply', rid: 1, value: { total: 2, newer: 0 } });
});

test('shared sessions: bans expire, can be cleared, and X-Unique goes to every worker', () => {
  let now = 1_000;
  const p = new PrimaryState(() => now);
  const ban = {
    idKey: 'k',
    until: 2_000,
    reason: 'session_limit',
    ban: true,
    name: 'live/a',
    createdAt: now,
  };
  p.handle(1, { t: 'set_ban', entry: ban });
  p.handle(1, { t: 'set_ban', entry: { ...ban, idKey: 'old', until: 500 } });
  assert.deepEqual(p.handle(2, { t: 'get_ban', rid: 3, idKey: 'k' })[0]?.msg, {
    t: 'reply',
    rid: 3,
    value: ban,
  });
  assert.deepEqual(p.handle(2, { t: 'get_ban', rid: 4, idKey: 'old' })[0]?.msg, {
    t: 'reply',
    rid: 4,
    value: null,
  });
  now = 2_000;
  assert.equal(p.shared.getBan('k'), undefined, 'expired');
  now = 1_000;
  p.handle(1, { t: 'set_ban', entry: ban });
  p.handle(2, { t: 'clear_ban', idKey: 'k' });
  assert.equal(p.shared.getBan('k'), undefined, 'cleared');
  assert.deepEqual(p.handle(2, { t: 'reload_all' }), [{ to: 'all', except: 2, msg: { t: 'reload' } }]);
  const kick = { kind: 'play' as const, userId: 'u1', winner: 's9' };
  assert.deepEqual(p.handle(2, { t: 'unique', kick }), [{ to: 'all', msg: { t: 'unique', kick } }]);
});

test('shared sessions: a flood of bans nobody reads again is swept once expired', () => {
  let now = 0;
  const s = new SharedSessions(() => now);
  for (let i = 0; i < 10_000; i++) {
    s.setBan({ idKey: `k${i}`, until: 10, reason: 'x', ban: true, name: 'n', createdAt: 0 });
  }
  now = 20;
  s.setBan({ idKey: 'fresh', until: 30, reason: 'x', ban: true, name: 'n', createdAt: 20 });
  assert.equal(s.getBan('k1'), undefined);
  assert.ok(s.getBan('fresh'));
  assert.equal((s as unknown as { bans: Map<string, unknown> }).bans.size, 1);
});

test('messages: only our own types pass the guards (Node sends internal ones on the channel too)', () => {
  assert.equal(isWorkerMessage({ t: 'lookup', rid: 1, name: 'a' }), true);
  assert.equal(isWorkerMessage({ cmd: 'NODE_CLUSTER' }), false);
  assert.equal(isWorkerMessage(null), false);
  assert.equal(isWorkerMessage('ready'), false);
  assert.equal(isPrimaryMessage({ t: 'shutdown' }), true);
  assert.equal(isPrimaryMessage({ t: 'lookup' }), false);
});

test('fan-out API calls: every worker is asked, the caller gets all answers once', () => {
  const p = twoWorkers();
  p.handle(3, { t: 'ready', addresses: {}, relay: relay2 });
  const out = p.handle(2, { t: 'fanout', rid: 5, op: 'list', arg: { name: 'live/a' } });
  assert.deepEqual(
    out.map((o) => o.to),
    [1, 2, 3],
  );
  const cid = out[0]?.msg.t === 'call' ? out[0].msg.cid : -1;
  assert.deepEqual(out[0]?.msg, { t: 'call', cid, op: 'list', arg: { name: 'live/a' } });
  assert.deepEqual(p.handle(1, { t: 'call_result', cid, value: ['a'] }), []);
  assert.deepEqual(
    p.handle(1, { t: 'call_result', cid, value: ['again'] }),
    [],
    'a second answer is ignored',
  );
  assert.deepEqual(p.handle(2, { t: 'call_result', cid, value: [] }), []);
  // Worker 3 dies before answering: the caller gets what came.
  const gone = p.workerGone(3);
  assert.deepEqual(gone.out, [{ to: 2, msg: { t: 'reply', rid: 5, value: [['a'], []] } }]);
  assert.deepEqual(p.handle(3, { t: 'call_result', cid, value: ['late'] }), []);
});

test('fan-out API calls: the deadline answers with what came; a caller that died gets nothing', () => {
  const p = twoWorkers();
  const out = p.handle(1, { t: 'fanout', rid: 9, op: 'kick', arg: 'sid' });
  const cid = out[0]?.msg.t === 'call' ? out[0].msg.cid : -1;
  p.handle(2, { t: 'call_result', cid, value: true });
  assert.deepEqual(p.expireCall(cid), [{ to: 1, msg: { t: 'reply', rid: 9, value: [true] } }]);
  assert.deepEqual(p.expireCall(cid), [], 'answered once');
  const again = p.handle(1, { t: 'fanout', rid: 10, op: 'bans', arg: null });
  const cid2 = again[0]?.msg.t === 'call' ? again[0].msg.cid : -1;
  p.workerGone(1);
  assert.deepEqual(p.handle(2, { t: 'call_result', cid: cid2, value: [] }), []);
});
