/** The session manager with a shared store (SPEC §7), against a fake ClusterStore. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { FakeClock } from '../../../src/clock.js';
import type { ClusterSession, ClusterStore, UniqueKick } from '../../../src/sessions/cluster.js';
import { SqliteHistory } from '../../../src/sessions/history.js';
import { Sessions } from '../../../src/sessions/manager.js';
import type { BanEntry } from '../../../src/sessions/store.js';
import { captureLog, config, FakeBackend, granted, request, spec } from './helpers.js';

class FakeCluster implements ClusterStore {
  registered: ClusterSession[] = [];
  unregistered: string[] = [];
  bans = new Map<string, BanEntry>();
  kicks: UniqueKick[] = [];
  /** What `register` reports: sessions of the user cluster-wide, and how many are newer. */
  counts = { total: 1, newer: 0 };
  async register(s: ClusterSession): Promise<{ total: number; newer: number }> {
    this.registered.push(s);
    return this.counts;
  }
  unregister(id: string): void {
    this.unregistered.push(id);
  }
  setBan(entry: BanEntry): void {
    this.bans.set(entry.idKey, entry);
  }
  async getBan(idKey: string): Promise<BanEntry | undefined> {
    return this.bans.get(idKey);
  }
  clearBan(idKey: string): void {
    this.bans.delete(idKey);
  }
  publishUnique(kick: UniqueKick): void {
    this.kicks.push(kick);
  }
  close(): void {}
}

function setup(): { manager: Sessions; cluster: FakeCluster; backend: FakeBackend; clock: FakeClock } {
  const clock = new FakeClock();
  const cluster = new FakeCluster();
  const backend = new FakeBackend();
  const manager = new Sessions({
    config: config(),
    policy: () => ({ onPlay: spec('http://backend.test/auth') }),
    clock,
    log: captureLog().log,
    history: new SqliteHistory('sqlite://:memory:'),
    backendFactory: () => backend,
    cluster,
  });
  return { manager, cluster, backend, clock };
}

const allowUser = (extra: { maxSessions?: number; unique?: boolean } = {}) => ({
  kind: 'allow' as const,
  authDurationSec: 180,
  userId: 'u1',
  ...extra,
});

test('cluster: the newest session beyond X-Max-Sessions across origins is refused and banned everywhere', async () => {
  const { manager, cluster, backend } = setup();
  backend.answer = () => allowUser({ maxSessions: 1 });
  cluster.counts = { total: 2, newer: 0 }; // another origin already holds one session of u1
  const d = await manager.open(request({ proto: 'rtmp', token: 'second' }));
  assert.equal(d.allow, false);
  assert.equal(d.allow === false && d.reason, 'session_limit');
  assert.equal(cluster.bans.size, 1, 'the ban is shared');
  assert.equal(cluster.unregistered.length, 1, 'the refused session leaves the shared count');
  manager.close();
});

test('cluster: an older session is not the one that loses', async () => {
  const { manager, cluster, backend } = setup();
  backend.answer = () => allowUser({ maxSessions: 1 });
  cluster.counts = { total: 2, newer: 1 }; // a newer one exists elsewhere; it loses on its own origin
  const s = granted(await manager.open(request({ proto: 'rtmp', token: 'older' })));
  assert.equal(s.closed, false);
  s.close('client_closed');
  assert.deepEqual(cluster.unregistered, [s.id]);
  manager.close();
});

test('cluster: a ban recorded by another origin refuses without a backend call', async () => {
  const { manager, cluster, backend, clock } = setup();
  const probe = granted(await manager.open(request({ token: 'victim' })));
  probe.close('client_closed');
  const calls = backend.calls.length;
  cluster.bans.set(probe.idKey, {
    idKey: probe.idKey,
    until: clock.now() + 60_000,
    reason: 'duplicated_user_id',
    ban: true,
    name: 'live/cam1',
    createdAt: clock.now(),
  });
  const d = await manager.open(request({ token: 'victim' }));
  assert.equal(d.allow === false && d.reason, 'banned');
  assert.equal(backend.calls.length, calls);
  manager.close();
});

test('cluster: X-Unique is announced, and a kick from another origin closes local sessions of the user', async () => {
  const { manager, cluster, backend } = setup();
  backend.answer = () => allowUser({ unique: true });
  const local = granted(await manager.open(request({ proto: 'rtmp', token: 'device-a' })));
  assert.deepEqual(cluster.kicks, [{ kind: 'play', userId: 'u1', winner: local.id }]);
  let killed = '';
  local.onKill((reason) => (killed = reason));
  manager.uniqueHandler()({ kind: 'play', userId: 'u1', winner: 'session-on-another-origin' });
  assert.equal(local.closed, true);
  assert.equal(killed, 'duplicated_user_id');
  manager.uniqueHandler()({ kind: 'play', userId: 'u1', winner: 'x' }); // nothing left to kick: no throw
  manager.close();
});
