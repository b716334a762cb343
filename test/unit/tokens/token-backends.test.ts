/**
 * The ks://, jwt:// and securetoken:// backends as createBackend builds them with no extra
 * wiring (SPEC §6, AUTH-SPEC §10.7): URL forms, where the token is read, decision mapping
 * (user id, auth duration capped by the token's lifetime, limits), and misconfiguration.
 */
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import type { AuthDecision, AuthRequest } from '../../../src/auth/backend.js';
import { createBackend } from '../../../src/auth/index.js';
import { parseTokenUrl } from '../../../src/auth/token-backends.js';
import { signJwt } from '../../../src/tokens/jwt.js';
import { mintKsV1, mintKsV2 } from '../../../src/tokens/ks.js';
import { mintSecureToken } from '../../../src/tokens/securetoken.js';
import { config, spec } from '../sessions/helpers.js';

const NOW = 1_700_000_000_000;
const NOW_S = NOW / 1000;
const ctx = { kind: 'play' as const };

function req(over: Partial<AuthRequest> = {}): AuthRequest {
  return {
    name: 'stream1',
    proto: 'rtmp',
    ip: '10.0.0.1',
    request_type: 'new_session',
    request_number: 0,
    session_id: 'sid',
    stream_clients: 0,
    total_clients: 0,
    ...over,
  };
}

function backend(url: string, now: { t: number }, extra: Record<string, string> = {}) {
  const warnings: string[] = [];
  const b = createBackend(spec(url, { extra }), config(), {
    now: () => now.t,
    warn: (m) => warnings.push(m),
  });
  return { b, warnings };
}

test('URL forms: host, query values kept verbatim (+ stays +), extra options fill in', () => {
  const u = parseTokenUrl({ url: 'ks://123?secret=a+b,c%2Cd&x', extra: { secrets: 'e', secret: 'ignored' } });
  assert.equal(u.host, '123');
  assert.equal(u.params.get('secret'), 'a+b,c,d');
  assert.equal(u.params.get('secrets'), 'e');
  assert.equal(u.params.get('x'), '');
  assert.equal(
    parseTokenUrl({ url: 'jwt://?jwks=https://idp/jwks.json', extra: {} }).params.get('jwks'),
    'https://idp/jwks.json',
  );
});

test('§12.29 through createBackend: ks://123?secret=s allows stream1, denies stream2, EXPIRED after 60 s', async () => {
  const now = { t: NOW };
  const { b } = backend('ks://123?secret=s', now);
  const ks = mintKsV2({
    secret: 's',
    partnerId: 123,
    userId: 'u1',
    expirySec: 60,
    privileges: 'sview:stream1',
    now: NOW,
  });
  assert.deepEqual(await b.check(req({ token: ks }), ctx), {
    kind: 'allow',
    authDurationSec: 60,
    userId: 'u1',
  });
  assert.deepEqual(await b.check(req({ token: ks, name: 'stream2' }), ctx), {
    kind: 'deny',
    status: 403,
    authDurationSec: 180,
    reason: 'NO_PRIVILEGE',
  });
  now.t += 60_000;
  const late = await b.check(req({ token: ks, request_type: 'update_session' }), ctx);
  assert.equal(late.kind === 'deny' && late.reason, 'EXPIRED');
});

test('ks: auth duration is min(default 180, remaining) and at least 1; secrets= list; ks= wins over token=', async () => {
  const now = { t: NOW };
  const { b } = backend('ks://123?secrets=old,new', now);
  const long = mintKsV1({ secret: 'new', partnerId: 123, expirySec: 3600, privileges: 'sview:*', now: NOW });
  assert.deepEqual(
    await b.check(req({ token: 'random-auto-token', qs: `ks=${encodeURIComponent(long)}` }), ctx),
    {
      kind: 'allow',
      authDurationSec: 180,
    },
  );
  now.t = NOW + 3599_500;
  const last = (await b.check(req({ token: long }), ctx)) as Extract<AuthDecision, { kind: 'allow' }>;
  assert.equal(last.authDurationSec, 1);
});

test('ks: the anonymous widget user 0 is no user; another partner is INVALID_PARTNER; a missing token INVALID_STR', async () => {
  const now = { t: NOW };
  const { b } = backend('ks://123?secret=s', now);
  const widget = mintKsV2({
    secret: 's',
    partnerId: 123,
    userId: '0',
    type: 1,
    expirySec: 60,
    privileges: 'view:*,widget:1',
    now: NOW,
  });
  assert.deepEqual(await b.check(req({ token: widget }), ctx), { kind: 'allow', authDurationSec: 60 });
  const other = mintKsV2({ secret: 's', partnerId: 9, expirySec: 60, privileges: 'sview:*', now: NOW });
  assert.equal(((await b.check(req({ token: other }), ctx)) as { reason: string }).reason, 'INVALID_PARTNER');
  assert.equal(
    ((await b.check(req({ token: 'garbage!' }), ctx)) as { reason: string }).reason,
    'INVALID_STR',
  );
});

test('ks: iprestrict against the client ip, urirestrict against /<name>; actionslimit warns with a token hash only', async () => {
  const now = { t: NOW };
  const { b, warnings } = backend('ks://123?secret=s', now);
  const ks = mintKsV2({
    secret: 's',
    partnerId: 123,
    expirySec: 60,
    privileges: 'sview:live/cam1,iprestrict:10.0.0.1,urirestrict:/live/*,actionslimit:3',
    now: NOW,
  });
  assert.equal((await b.check(req({ token: ks, name: 'live/cam1' }), ctx)).kind, 'allow');
  assert.ok(warnings.some((w) => /actionslimit:3 ignored/.test(w)));
  assert.ok(warnings.every((w) => !w.includes(ks)));
  const ip = await b.check(req({ token: ks, name: 'live/cam1', ip: '10.0.0.9' }), ctx);
  assert.equal(ip.kind === 'deny' && ip.reason, 'EXCEEDED_RESTRICTED_IP');
});

test('misconfigured verifiers refuse (unavailable) and say why', async () => {
  const now = { t: NOW };
  for (const url of ['ks://123', 'ks://1?secret=s&require=edit', 'jwt://', 'securetoken://']) {
    const { b, warnings } = backend(url, now);
    assert.deepEqual(
      await b.check(req({ token: 't' }), ctx),
      { kind: 'unavailable', reason: 'unsupported' },
      url,
    );
    assert.equal(warnings.length, 1, url);
  }
  // Secrets may also come as options after the URL.
  const { b } = backend('ks://123', now, { secrets: 's' });
  const ks = mintKsV2({ secret: 's', partnerId: 123, expirySec: 60, privileges: 'sview:stream1', now: NOW });
  assert.equal((await b.check(req({ token: ks }), ctx)).kind, 'allow');
});

test('jwt://?secret=S: grant fields and reasons', async () => {
  const now = { t: NOW };
  const { b } = backend('jwt://?secret=k', now);
  const t = signJwt(
    { sub: 'u9', streams: ['stream1'], exp: NOW_S + 500, max_sessions: 2, unique: true, proto: ['rtmp'] },
    { secret: 'k' },
  );
  assert.deepEqual(await b.check(req({ token: t }), ctx), {
    kind: 'allow',
    authDurationSec: 180,
    userId: 'u9',
    maxSessions: 2,
    unique: true,
  });
  assert.equal(
    ((await b.check(req({ token: t, proto: 'hls' }), ctx)) as { reason: string }).reason,
    'jwt_proto_not_allowed',
  );
  assert.equal(
    ((await b.check(req({ token: t, name: 'x' }), ctx)) as { reason: string }).reason,
    'jwt_stream_not_granted',
  );
  now.t += 500_000;
  assert.equal(((await b.check(req({ token: t }), ctx)) as { reason: string }).reason, 'jwt_expired');
});

test('jwt://?jwks=FILE: RS256 and EdDSA from a JWKS file; a missing file is unavailable, not allow', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'streamgate-jwks-'));
  try {
    const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const ed = generateKeyPairSync('ed25519');
    const file = join(dir, 'jwks.json');
    writeFileSync(
      file,
      JSON.stringify({
        keys: [
          { ...rsa.publicKey.export({ format: 'jwk' }), kid: 'r' },
          { ...ed.publicKey.export({ format: 'jwk' }), kid: 'e' },
        ],
      }),
    );
    const now = { t: NOW };
    const { b } = backend(`jwt://?jwks=${file}`, now);
    const claims = { sub: 'u', streams: ['stream1'], exp: NOW_S + 60 };
    for (const [privateKey, kid] of [
      [rsa.privateKey, 'r'],
      [ed.privateKey, 'e'],
    ] as const) {
      assert.deepEqual(await b.check(req({ token: signJwt(claims, { privateKey, kid }) }), ctx), {
        kind: 'allow',
        authDurationSec: 60,
        userId: 'u',
      });
    }
    assert.equal(
      ((await b.check(req({ token: signJwt(claims, { secret: 'k' }) }), ctx)) as { reason: string }).reason,
      'jwt_alg_not_allowed',
    );
    // A header whose alg is an object (found by fuzzing) is refused, not a thrown TypeError.
    const hostile = ['{"alg":{"toString":0}}', JSON.stringify(claims)]
      .map((p) => Buffer.from(p).toString('base64url'))
      .join('.');
    const refused = await b.check(req({ token: `${hostile}.c2ln` }), ctx);
    assert.equal(refused.kind, 'deny');
    const { b: missing, warnings } = backend(`jwt://?jwks=${join(dir, 'none.json')}`, now);
    assert.deepEqual(
      await missing.check(req({ token: signJwt(claims, { privateKey: rsa.privateKey }) }), ctx),
      {
        kind: 'unavailable',
        reason: 'error',
      },
    );
    assert.equal(warnings.length, 1);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('securetoken://KEY: ip checked unless ?no_check_ip=true; user_id from the query', async () => {
  const now = { t: NOW };
  const { b } = backend('securetoken://K', now);
  const t = mintSecureToken({ key: 'K', stream: 'stream1', ip: '10.0.0.1', now: NOW, expirySec: 100 });
  assert.deepEqual(await b.check(req({ token: t }), ctx), { kind: 'allow', authDurationSec: 100 });
  assert.equal(
    ((await b.check(req({ token: t, ip: '10.0.0.2' }), ctx)) as { reason: string }).reason,
    'securetoken_bad_hash',
  );
  const { b: loose } = backend('securetoken://K?no_check_ip=true', now);
  const anyIpToken = mintSecureToken({ key: 'K', stream: 'stream1', userId: 'u3', now: NOW });
  assert.deepEqual(
    await loose.check(req({ token: anyIpToken, ip: '8.8.8.8', qs: `token=${anyIpToken}&user_id=u3` }), ctx),
    {
      kind: 'allow',
      authDurationSec: 180,
      userId: 'u3',
    },
  );
});
