/** auth://NAME chains (AUTH-SPEC §6): precedence table §6.3 and acceptance §12 items 18–19. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { AuthBackend, AuthDecision, AuthRequest } from '../../../src/auth/backend.js';
import { ChainBackend, combineChain } from '../../../src/auth/chain.js';
import { createBackend } from '../../../src/auth/index.js';
import { allow, chainConfig, config, denyD, unavailable } from '../sessions/helpers.js';

const r = (over: Partial<AuthRequest> = {}): AuthRequest => ({
  name: 's',
  proto: 'hls',
  ip: '10.1.1.1',
  request_type: 'new_session',
  request_number: 0,
  session_id: 'sid',
  stream_clients: 0,
  total_clients: 0,
  token: 't',
  ...over,
});
const fixed = (d: AuthDecision): AuthBackend & { calls: number } => {
  const b = {
    calls: 0,
    check: () => {
      b.calls++;
      return Promise.resolve(d);
    },
  };
  return b;
};
const ctx = { kind: 'play' as const };
const redirect: AuthDecision = { kind: 'redirect', location: 'http://x/' };

test('§6.3 precedence: first allow > first redirect > first deny > all unavailable', () => {
  const a1 = allow({ userId: 'one' });
  const a2 = allow({ userId: 'two' });
  assert.equal(combineChain([denyD(), a1, redirect, a2], false, false, 180), a1);
  assert.equal(combineChain([unavailable(), redirect, denyD()], false, false, 180), redirect);
  const d5 = denyD(5);
  assert.equal(
    combineChain([unavailable(), d5, denyD(9)], true, false, 180),
    d5,
    'explicit deny beats allow default',
  );
  assert.deepEqual(combineChain([unavailable(), unavailable()], true, false, 180), {
    kind: 'allow',
    authDurationSec: 180,
    retry: true,
  });
  assert.equal(combineChain([unavailable()], false, false, 180).kind, 'unavailable');
  assert.equal(
    combineChain([unavailable()], true, true, 180).kind,
    'unavailable',
    'started sessions keep state',
  );
});

test('§12.18: allow token friend1 with a dead backend; allow default lets others in except deny ip', async () => {
  const dead = fixed(unavailable('connect'));
  const plain = new ChainBackend(chainConfig('c', [['allow', 'token', 'friend1']], []), [dead], {
    defaultAuthDuration: 180,
  });
  assert.equal((await plain.check(r({ token: 'friend1' }), ctx)).kind, 'allow');
  assert.equal(dead.calls, 0, 'a static rule decides without the backend');
  assert.equal((await plain.check(r({ token: 'other' }), ctx)).kind, 'unavailable');

  const withDefault = new ChainBackend(
    chainConfig(
      'c',
      [
        ['allow', 'token', 'friend1'],
        ['deny', 'ip', '8.8.8.8'],
      ],
      [],
      true,
    ),
    [dead],
    { defaultAuthDuration: 180 },
  );
  assert.deepEqual(await withDefault.check(r({ token: 'other' }), ctx), {
    kind: 'allow',
    authDurationSec: 180,
    retry: true,
  });
  const denied = await withDefault.check(r({ token: 'other', ip: '8.8.8.8' }), ctx);
  assert.equal(denied.kind, 'deny');
});

test('§12.19: allow ip 10/8 and deny token bad -> token rule wins', async () => {
  const c = new ChainBackend(
    chainConfig('c', [
      ['allow', 'ip', '10.0.0.0/8'],
      ['deny', 'token', 'bad'],
    ]),
    [],
    {
      defaultAuthDuration: 180,
    },
  );
  assert.equal((await c.check(r({ ip: '10.1.1.1', token: 'bad' }), ctx)).kind, 'deny');
  assert.equal((await c.check(r({ ip: '10.1.1.1', token: 'ok' }), ctx)).kind, 'allow');
  assert.equal((await c.check(r({ ip: '11.1.1.1', token: 'ok' }), ctx)).kind, 'deny', 'no allow default');
});

test('backends are asked in parallel; the first allow in configured order wins', async () => {
  const order: string[] = [];
  const slowAllow: AuthBackend = {
    check: () =>
      new Promise((res) => setTimeout(() => (order.push('slow'), res(allow({ userId: 'slow' }))), 30)),
  };
  const fastAllow: AuthBackend = {
    check: () => (order.push('fast'), Promise.resolve(allow({ userId: 'fast' }))),
  };
  const c = new ChainBackend(chainConfig('c', []), [slowAllow, fastAllow], { defaultAuthDuration: 180 });
  const started = Date.now();
  const d = await c.check(r(), ctx);
  assert.ok(Date.now() - started < 200);
  assert.deepEqual(order, ['fast', 'slow']);
  assert.equal(d.kind === 'allow' ? d.userId : '', 'slow');
});

test('createBackend: auth://NAME builds the chain; an undefined chain or scheme refuses', async () => {
  const cfg = config({
    authBackends: new Map([['lo', chainConfig('lo', [['allow', 'ip', '127.0.0.1/8']])]]),
  });
  const warnings: string[] = [];
  const b = createBackend({ ...spec('auth://lo') }, cfg, { warn: (m) => warnings.push(m) });
  assert.equal((await b.check(r({ ip: '::ffff:127.0.0.1' }), ctx)).kind, 'allow');
  assert.equal((await b.check(r({ ip: '10.0.0.1' }), ctx)).kind, 'deny');
  assert.equal(
    (await createBackend(spec('auth://missing'), cfg, { warn: (m) => warnings.push(m) }).check(r(), ctx))
      .kind,
    'unavailable',
  );
  assert.equal(
    (await createBackend(spec('ks://123'), cfg, { warn: (m) => warnings.push(m) }).check(r(), ctx)).kind,
    'unavailable',
  );
  assert.equal(warnings.length, 2);
  assert.equal((await createBackend(spec('true'), cfg).check(r(), ctx)).kind, 'allow');
});

function spec(url: string) {
  return {
    url,
    sessionKeys: [],
    softLimitation: false,
    domainsStrict: false,
    timeoutSec: 3,
    extra: {},
    loc: { file: 't', line: 1, col: 1 },
  };
}
