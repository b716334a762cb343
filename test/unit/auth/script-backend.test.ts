/** Script backends (SPEC §5): executables by exit code and stdout, modules called in-process. */
import assert from 'node:assert/strict';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import type { AuthRequest } from '../../../src/auth/backend.js';
import { createBackend } from '../../../src/auth/index.js';
import {
  ExecBackend,
  ModuleBackend,
  createScriptBackend,
  decideScript,
  isScriptPath,
} from '../../../src/auth/script-backend.js';
import { config, spec } from '../sessions/helpers.js';

const dir = mkdtempSync(join(tmpdir(), 'streamgate-script-'));
test.after(() => rmSync(dir, { recursive: true, force: true }));

function script(name: string, body: string, executable = true): string {
  const p = join(dir, name);
  writeFileSync(p, body);
  if (executable) chmodSync(p, 0o755);
  return p;
}

const areq: AuthRequest = {
  name: 'live/cam1',
  proto: 'rtmp',
  ip: '10.0.0.1',
  request_type: 'new_session',
  request_number: 0,
  session_id: 'sid',
  stream_clients: 0,
  total_clients: 0,
  token: 'tok',
  qs: 'token=tok',
};
const opts = { defaultAuthDuration: 180 };
const ctx = { kind: 'play' as const };

test('isScriptPath tells paths from URLs', () => {
  assert.equal(isScriptPath('/opt/auth.sh'), true);
  assert.equal(isScriptPath('./auth.mjs'), true);
  assert.equal(isScriptPath('http://x/auth'), false);
  assert.equal(isScriptPath('auth://chain'), false);
  assert.equal(isScriptPath('true'), false);
});

test('decideScript validates fields like the HTTP headers', () => {
  assert.deepEqual(
    decideScript(true, { user_id: ' u ', max_sessions: 0, unique: 'true', auth_duration: 'x' }, 180),
    {
      kind: 'allow',
      authDurationSec: 180,
      userId: 'u',
      unique: true,
    },
  );
  assert.deepEqual(decideScript(false, { auth_duration: 9 }, 180), {
    kind: 'deny',
    status: 403,
    authDurationSec: 9,
    reason: 'backend_denied',
  });
});

test('exec: stdin gets the request; exit 0 + JSON stdout -> grant with fields', async () => {
  const p = script(
    'allow.mjs',
    `#!/usr/bin/env node
let s = ''; for await (const c of process.stdin) s += c;
const r = JSON.parse(s);
process.stdout.write(JSON.stringify({ user_id: r.token + '-' + r.name, max_sessions: 2, unique: true, auth_duration: 60, config: { a: 1 } }));
`,
  );
  const b = createScriptBackend(spec(p), opts);
  assert.ok(b instanceof ExecBackend, 'an executable #! .mjs is spawned, not imported');
  assert.deepEqual(await b.check(areq, ctx), {
    kind: 'allow',
    authDurationSec: 60,
    userId: 'tok-live/cam1',
    maxSessions: 2,
    unique: true,
    config: { a: 1 },
  });
});

test('exec: exit 1 deny, exit 2 unavailable, garbage stdout still decided by exit code', async () => {
  const deny = script('deny.sh', '#!/bin/sh\necho \'{"auth_duration": 7}\'\nexit 1\n');
  const other = script('other.sh', '#!/bin/sh\nexit 2\n');
  const garbage = script('garbage.sh', '#!/bin/sh\necho not-json\nexit 0\n');
  assert.deepEqual(await new ExecBackend(spec(deny), opts).check(areq), {
    kind: 'deny',
    status: 403,
    authDurationSec: 7,
    reason: 'backend_denied',
  });
  assert.deepEqual(await new ExecBackend(spec(other), opts).check(areq), {
    kind: 'unavailable',
    reason: 'error',
  });
  assert.deepEqual(await new ExecBackend(spec(garbage), opts).check(areq), {
    kind: 'allow',
    authDurationSec: 180,
  });
});

test('exec: a script over its timeout is killed and unavailable; a missing one is unavailable', async () => {
  const slow = script('slow.sh', '#!/bin/sh\nsleep 5\n');
  const started = Date.now();
  assert.deepEqual(await new ExecBackend(spec(slow, { timeoutSec: 1 }), opts).check(areq), {
    kind: 'unavailable',
    reason: 'timeout',
  });
  assert.ok(Date.now() - started < 2500);
  assert.deepEqual(await new ExecBackend(spec(join(dir, 'missing.sh')), opts).check(areq), {
    kind: 'unavailable',
    reason: 'error',
  });
});

test('module: default export called in-process, loaded once', async () => {
  const p = script(
    'mod.mjs',
    `let loads = (globalThis.__sgLoads ?? 0) + 1; globalThis.__sgLoads = loads;
export default async (req) => req.token === 'tok'
  ? { allow: true, user_id: 'u-' + loads, auth_duration: 30 }
  : { allow: false, auth_duration: 5 };
`,
    false,
  );
  const b = createScriptBackend(spec(p), opts);
  assert.ok(b instanceof ModuleBackend);
  assert.deepEqual(await b.check(areq, ctx), { kind: 'allow', authDurationSec: 30, userId: 'u-1' });
  assert.deepEqual(await b.check(areq, ctx), { kind: 'allow', authDurationSec: 30, userId: 'u-1' });
  assert.deepEqual(await b.check({ ...areq, token: 'x' }, ctx), {
    kind: 'deny',
    status: 403,
    authDurationSec: 5,
    reason: 'backend_denied',
  });
});

test('module: throwing, slow, malformed or missing default -> unavailable', async () => {
  const throwing = script('throw.mjs', 'export default async () => { throw new Error("x"); };', false);
  const slow = script(
    'slow.mjs',
    'export default () => new Promise((r) => setTimeout(() => r({ allow: true }), 3000).unref());',
    false,
  );
  const bad = script('bad.mjs', 'export default async () => ({ ok: true });', false);
  const none = script('none.mjs', 'export const x = 1;', false);
  for (const p of [throwing, bad, none]) {
    assert.equal((await new ModuleBackend(spec(p), opts).check(areq)).kind, 'unavailable', p);
  }
  assert.deepEqual(await new ModuleBackend(spec(slow, { timeoutSec: 1 }), opts).check(areq), {
    kind: 'unavailable',
    reason: 'timeout',
  });
});

test('samples/script-backend.mjs through createBackend: known token allowed with user id, unknown denied', async () => {
  const p = fileURLToPath(new URL('../../../samples/script-backend.mjs', import.meta.url));
  const b = createBackend(spec(p), config());
  assert.deepEqual(await b.check({ ...areq, token: 't0k3n-bob-2' }, ctx), {
    kind: 'allow',
    authDurationSec: 180,
    userId: 'bob',
    maxSessions: 1,
  });
  assert.deepEqual(await b.check({ ...areq, token: 'nope' }, ctx), {
    kind: 'deny',
    status: 403,
    authDurationSec: 30,
    reason: 'backend_denied',
  });
});
