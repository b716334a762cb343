/**
 * Two origins sharing `session_store redis://…` (SPEC §7): X-Max-Sessions, X-Unique and bans
 * hold across both, with a real redis-server and real RTMP players.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { createServer, type AddressInfo } from 'node:net';
import { startStreamgate, type RunningStreamgate } from '../helpers/streamgate.js';
import { sleep, stopProcess } from '../helpers/clients.js';
import { skipWithout } from '../helpers/tools.js';
import { rtmpProbe } from '../helpers/rtmp-client.js';
import { startBackend, type BackendAnswer, type TestBackend } from '../helpers/backend.js';

const skip = skipWithout(['redis-server', ['--version']], ['ffmpeg']);

let redis: ChildProcess;
let backend: TestBackend;
let a: RunningStreamgate;
let b: RunningStreamgate;

async function freePort(): Promise<number> {
  const s = createServer();
  s.listen(0, '127.0.0.1');
  await once(s, 'listening');
  const port = (s.address() as AddressInfo).port;
  await new Promise((r) => s.close(r));
  return port;
}

before(async () => {
  if (skip) return;
  const port = await freePort();
  redis = spawn(
    'redis-server',
    ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'],
    {
      stdio: 'ignore',
    },
  );
  await sleep(500);
  backend = await startBackend((q): BackendAnswer => {
    const token = q.get('token') ?? '';
    if (token.startsWith('max')) {
      return { status: 200, headers: { 'X-UserId': 'max-user', 'X-Max-Sessions': '1' } };
    }
    if (token.startsWith('uniq')) {
      return { status: 200, headers: { 'X-UserId': 'uniq-user', 'X-Unique': 'true' } };
    }
    return { status: 403 };
  });
  const config = `session_store redis://127.0.0.1:${port};\nstream tv { input fake://fake; on_play ${backend.url}; }`;
  [a, b] = await Promise.all([startStreamgate(config), startStreamgate(config)]);
  await sleep(2000); // both fake inputs running
});

after(async () => {
  if (skip) return;
  await Promise.all([a.stop(), b.stop()]);
  await backend.close();
  await stopProcess(redis);
});

test('cluster: X-Max-Sessions 1 counts sessions on both origins', { skip, timeout: 30_000 }, async () => {
  const first = rtmpProbe(a.ports['rtmp'] ?? 0, 'static', 'tv?token=max-1', { ms: 5000 });
  await sleep(1500);
  const second = await rtmpProbe(b.ports['rtmp'] ?? 0, 'static', 'tv?token=max-2', { ms: 1500 });
  assert.deepEqual(
    second.statuses.map((s) => s.code),
    ['NetStream.Play.Failed'],
    'the second device, on the other origin, is refused',
  );
  const f = await first;
  assert.equal(f.closedByServer, false, 'the first device keeps playing');
  assert.ok(f.mediaMessages > 50);
  // The refused identity is banned on every origin, including the one that never saw it.
  const calls = backend.calls.length;
  const retry = await rtmpProbe(a.ports['rtmp'] ?? 0, 'static', 'tv?token=max-2', { ms: 1000 });
  assert.deepEqual(
    retry.statuses.map((s) => s.code),
    ['NetStream.Play.Failed'],
  );
  assert.equal(backend.calls.length, calls, 'refused from the shared ban, without a backend call');
});

test(
  'cluster: X-Unique on one origin closes the same user on the other',
  { skip, timeout: 30_000 },
  async () => {
    const older = rtmpProbe(a.ports['rtmp'] ?? 0, 'static', 'tv?token=uniq-1', { ms: 6000 });
    await sleep(1500);
    const newer = await rtmpProbe(b.ports['rtmp'] ?? 0, 'static', 'tv?token=uniq-2', { ms: 2000 });
    assert.ok(
      newer.statuses.some((s) => s.code === 'NetStream.Play.Start'),
      'the newest device plays',
    );
    const o = await older;
    assert.equal(o.closedByServer, true, 'the older device on the other origin was closed');
    assert.ok(o.mediaMessages > 0);
  },
);
