/**
 * JWT verification and minting (SPEC §6): HS256 with secrets, RS256/ES256/EdDSA through a JWKS,
 * refusal of `alg: none` and of algorithm/key mismatches, the playback claims, and the cached
 * JWKS source, all on fixed clocks.
 */
import assert from 'node:assert/strict';
import { createHmac, generateKeyPairSync, type JsonWebKey, type KeyObject } from 'node:crypto';
import { test } from 'node:test';
import { JwksSource, parseJwks } from '../../../src/tokens/jwks.js';
import { checkJwt, decodeJwt, signJwt, streamGranted, type JwtKeys } from '../../../src/tokens/jwt.js';

const NOW = 1_700_000_000_000;
const NOW_S = NOW / 1000;
const base = { sub: 'u1', streams: ['live/*', 'demo'], exp: NOW_S + 60 };

function b64(o: unknown): string {
  return Buffer.from(JSON.stringify(o)).toString('base64url');
}

function pair(type: 'rsa' | 'ec' | 'ed25519'): { privateKey: KeyObject; jwk: JsonWebKey } {
  const kp =
    type === 'rsa'
      ? generateKeyPairSync('rsa', { modulusLength: 2048 })
      : type === 'ec'
        ? generateKeyPairSync('ec', { namedCurve: 'P-256' })
        : generateKeyPairSync('ed25519');
  return { privateKey: kp.privateKey, jwk: kp.publicKey.export({ format: 'jwk' }) };
}

const rsa = pair('rsa');
const ec = pair('ec');
const ed = pair('ed25519');

test('HS256: mint, verify, claims map onto the grant', () => {
  const t = signJwt({ ...base, max_sessions: 2, unique: true }, { secret: 'k' });
  assert.equal(decodeJwt(t)?.header['alg'], 'HS256');
  const r = checkJwt(
    t,
    { secrets: ['other', 'k'] },
    { now: NOW, stream: 'live/cam1', ip: '1.2.3.4', proto: 'hls' },
  );
  assert.ok(r.ok);
  assert.deepEqual(r.grant, {
    exp: NOW_S + 60,
    remainingSec: 60,
    matched: 'live/*',
    userId: 'u1',
    maxSessions: 2,
    unique: true,
  });
  const wrong = checkJwt(t, { secrets: ['nope'] }, { now: NOW });
  assert.equal(!wrong.ok && wrong.reason, 'bad_signature');
});

test('RS256, ES256 and EdDSA verify through JWKS keys, picked by kid', () => {
  const jwks = [
    { ...rsa.jwk, kid: 'r1' },
    { ...ec.jwk, kid: 'e1' },
    { ...ed.jwk, kid: 'd1' },
  ];
  for (const [k, kid, alg] of [
    [rsa, 'r1', 'RS256'],
    [ec, 'e1', 'ES256'],
    [ed, 'd1', 'EdDSA'],
  ] as const) {
    const t = signJwt(base, { privateKey: k.privateKey, kid });
    assert.equal(decodeJwt(t)?.header['alg'], alg);
    assert.ok(checkJwt(t, { jwks }, { now: NOW, stream: 'demo' }).ok, alg);
    // Without a kid every fitting key is tried.
    assert.ok(
      checkJwt(signJwt(base, { privateKey: k.privateKey }), { jwks }, { now: NOW, stream: 'demo' }).ok,
      alg,
    );
  }
  const unknownKid = checkJwt(
    signJwt(base, { privateKey: rsa.privateKey, kid: 'zz' }),
    { jwks },
    { now: NOW },
  );
  assert.equal(!unknownKid.ok && unknownKid.reason, 'no_matching_key');
  const otherKey = pair('ec');
  const forged = checkJwt(
    signJwt(base, { privateKey: otherKey.privateKey, kid: 'e1' }),
    { jwks },
    { now: NOW },
  );
  assert.equal(!forged.ok && forged.reason, 'bad_signature');
});

test('alg none is refused, whatever keys are configured', () => {
  const t = `${b64({ alg: 'none', typ: 'JWT' })}.${b64(base)}.`;
  const r = checkJwt(t, { secrets: ['k'], jwks: [rsa.jwk] }, { now: NOW });
  assert.equal(!r.ok && r.reason, 'alg_none');
  const upper = checkJwt(`${b64({ alg: 'NONE' })}.${b64(base)}.`, { secrets: ['k'] }, { now: NOW });
  assert.equal(!upper.ok && upper.reason, 'alg_none');
});

test('alg/key mismatches: HS with only a JWKS, RS with only a secret, RSA key as HMAC secret, ES256 on an RSA key', () => {
  const hs = signJwt(base, { secret: 'k' });
  assert.equal(
    (checkJwt(hs, { jwks: [rsa.jwk] }, { now: NOW }) as { reason: string }).reason,
    'alg_not_allowed',
  );
  const rs = signJwt(base, { privateKey: rsa.privateKey });
  assert.equal(
    (checkJwt(rs, { secrets: ['k'] }, { now: NOW }) as { reason: string }).reason,
    'alg_not_allowed',
  );
  // The classic confusion: HS256 signed with the public key's text as the secret.
  const pubText = JSON.stringify(rsa.jwk);
  const input = `${b64({ alg: 'HS256' })}.${b64(base)}`;
  const confused = `${input}.${createHmac('sha256', pubText).update(input).digest('base64url')}`;
  assert.equal(
    (checkJwt(confused, { jwks: [rsa.jwk] }, { now: NOW }) as { reason: string }).reason,
    'alg_not_allowed',
  );
  // A header claiming ES256 over an RSA-only JWKS finds no key.
  const es = signJwt(base, { privateKey: ec.privateKey });
  assert.equal(
    (checkJwt(es, { jwks: [rsa.jwk] }, { now: NOW }) as { reason: string }).reason,
    'no_matching_key',
  );
  // A JWK pinned to another alg is not used.
  assert.equal(
    (checkJwt(rs, { jwks: [{ ...rsa.jwk, alg: 'RS512' }] }, { now: NOW }) as { reason: string }).reason,
    'no_matching_key',
  );
  assert.equal(
    (
      checkJwt(`${b64({ alg: 'XX1' })}.${b64(base)}.AA`, { secrets: ['k'] }, { now: NOW }) as {
        reason: string;
      }
    ).reason,
    'alg_not_allowed',
  );
});

test('claims: exp required and strict, nbf with 30 s skew, streams required and matched', () => {
  const keys: JwtKeys = { secrets: ['k'] };
  const c = (claims: Record<string, unknown>, stream?: string, now = NOW) =>
    checkJwt(signJwt(claims, { secret: 'k' }), keys, { now, ...(stream ? { stream } : {}) });
  assert.equal((c({ streams: ['a'] }) as { reason: string }).reason, 'no_expiry');
  assert.equal((c(base, 'demo', NOW + 60_000) as { reason: string }).reason, 'expired');
  assert.ok(c(base, 'demo', NOW + 59_000).ok);
  assert.ok(c({ ...base, nbf: NOW_S + 30 }, 'demo').ok);
  assert.equal((c({ ...base, nbf: NOW_S + 31 }, 'demo') as { reason: string }).reason, 'not_yet_valid');
  assert.equal((c({ exp: NOW_S + 60 }, 'demo') as { reason: string }).reason, 'no_streams');
  assert.equal((c(base, 'vod/x') as { reason: string }).reason, 'stream_not_granted');
  assert.ok(c({ ...base, streams: 'vod/x' }, 'vod/x').ok);
});

test('claims: ip and proto (string or list) restrict; sub becomes the user id', () => {
  const t = signJwt({ ...base, ip: ['10.0.0.1'], proto: 'rtmp' }, { secret: 'k' });
  const at = (ip: string, proto: string) =>
    checkJwt(t, { secrets: ['k'] }, { now: NOW, stream: 'demo', ip, proto });
  assert.ok(at('::ffff:10.0.0.1', 'rtmp').ok);
  assert.equal((at('10.0.0.2', 'rtmp') as { reason: string }).reason, 'ip_mismatch');
  assert.equal((at('10.0.0.1', 'hls') as { reason: string }).reason, 'proto_not_allowed');
  const anon = checkJwt(
    signJwt({ streams: ['*'], exp: NOW_S + 5 }, { secret: 'k' }),
    { secrets: ['k'] },
    { now: NOW, stream: 'x' },
  );
  assert.ok(anon.ok);
  assert.equal(anon.grant.userId, undefined);
});

test('streamGranted: exact, prefix/* only under the prefix, *', () => {
  assert.equal(streamGranted(['live/*'], 'live/cam1'), 'live/*');
  assert.equal(streamGranted(['live/*'], 'live'), undefined);
  assert.equal(streamGranted(['live/*'], 'livestream/x'), undefined);
  assert.equal(streamGranted(['*'], 'x'), '*');
});

test('malformed tokens are refused, never thrown', () => {
  for (const t of ['', 'a.b', 'a.b.c.d', '!!.!!.!!', `${b64([1])}.${b64(base)}.x`]) {
    const r = checkJwt(t, { secrets: ['k'] }, { now: NOW });
    assert.equal(!r.ok && r.reason, 'malformed', t);
  }
});

test('JwksSource: caches, refreshes on an unknown kid at most once per interval, keeps old keys on failure', async () => {
  let now = 0;
  let loads = 0;
  let fail = false;
  let doc = { keys: [{ ...rsa.jwk, kid: 'a' }] };
  const src = new JwksSource('https://idp.test/jwks', {
    now: () => now,
    ttlMs: 60_000,
    minRefreshMs: 10_000,
    load: () => {
      loads++;
      return fail ? Promise.reject(new Error('down')) : Promise.resolve(JSON.stringify(doc));
    },
  });
  assert.equal((await src.keys('a')).length, 1);
  await src.keys('a');
  assert.equal(loads, 1);
  doc = {
    keys: [
      { ...rsa.jwk, kid: 'a' },
      { ...ec.jwk, kid: 'b' },
    ],
  };
  await src.keys('b'); // unknown kid but within minRefreshMs: no reload
  assert.equal(loads, 1);
  now = 10_000;
  assert.equal((await src.keys('b')).length, 2);
  assert.equal(loads, 2);
  fail = true;
  now = 100_000;
  assert.equal((await src.keys()).length, 2);
  assert.equal(loads, 3);
  const dead = new JwksSource('/nope', { now: () => now, load: () => Promise.reject(new Error('ENOENT')) });
  await assert.rejects(dead.keys(), /ENOENT/);
  await assert.rejects(dead.keys(), /ENOENT/);
  assert.deepEqual(parseJwks(JSON.stringify(rsa.jwk)).length, 1);
  assert.throws(() => parseJwks('{}'), /no keys/);
});

test('JwksSource over http (loopback): fetched with undici once, then served from the cache', async (t) => {
  const { createServer } = await import('node:http');
  let hits = 0;
  const srv = createServer((_req, res) => {
    hits++;
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ keys: [{ ...ed.jwk, kid: 'd' }] }));
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  t.after(() => srv.close());
  const port = (srv.address() as { port: number }).port;
  const src = new JwksSource(`http://127.0.0.1:${port}/jwks.json`);
  const token = signJwt(base, { privateKey: ed.privateKey, kid: 'd' });
  for (let i = 0; i < 3; i++) {
    assert.ok(checkJwt(token, { jwks: await src.keys('d') }, { now: NOW, stream: 'demo' }).ok);
  }
  assert.equal(hits, 1);
  const missing = new JwksSource(`http://127.0.0.1:${port}/jwks.json`, {
    load: () => Promise.reject(new Error('x')),
  });
  await assert.rejects(missing.keys());
});
