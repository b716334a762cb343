/**
 * Token decoders (src/tokens/ks.ts, jwt.ts, securetoken.ts). They answer every input with a
 * result (`ok: false` and a reason for garbage), never an exception; a token they mint
 * verifies; and a mutated token never verifies with contents other than what was signed.
 */
import assert from 'node:assert/strict';
import { generateKeyPairSync, type JsonWebKey } from 'node:crypto';
import fc from 'fast-check';
import { checkJwt, decodeJwt, signJwt, type JwtKeys } from '../../src/tokens/jwt.js';
import { checkKs, decodeKs, mintKsV1, mintKsV2, parsePrivileges, type KsInfo } from '../../src/tokens/ks.js';
import { checkSecureToken, mintSecureToken, parseSecureToken } from '../../src/tokens/securetoken.js';
import {
  applyMutations,
  defineTarget,
  expectNoThrow,
  mutationArb,
  textArb,
  withinBudget,
} from './support.js';

const NOW = 1_700_000_000_000;
const NOW_SEC = NOW / 1000;

/** Mutates a string through its bytes (so multi-byte characters break too). */
function mutateText(
  s: string,
  mutations: Parameters<typeof applyMutations>[1],
  encoding: BufferEncoding = 'utf8',
): string {
  return applyMutations(Buffer.from(s, encoding), mutations).toString(encoding);
}

/** Object keys that reach Object.prototype when code indexes a plain object with them. */
const PROTO_KEYS = ['__proto__', 'constructor', 'toString', 'valueOf', 'hasOwnProperty', 'prototype'];

// ---------------------------------------------------------------------------------------------
// JWT

const EC = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
const ED = generateKeyPairSync('ed25519');
const JWKS: JsonWebKey[] = [
  { ...EC.publicKey.export({ format: 'jwk' }), kid: 'ec1' },
  { ...ED.publicKey.export({ format: 'jwk' }), kid: 'ed1' },
  { kty: 'oct', k: 'c2VjcmV0' },
  { kty: 'RSA', n: 'AQAB', e: 'AQAB', kid: 'broken' },
];
const KEY_SETS: readonly JwtKeys[] = [
  { secrets: ['s3cret', 'other'] },
  { jwks: JWKS },
  { secrets: ['s3cret'], jwks: JWKS },
  {},
];

const jsonKeyArb = fc.oneof(
  fc.constantFrom(...PROTO_KEYS, 'alg', 'kid', 'exp', 'streams'),
  fc.string({ maxLength: 6 }),
);
/** JSON values whose objects may use prototype keys: what JSON.parse hands the claim checks. */
const jsonArb: fc.Arbitrary<unknown> = fc.letrec<{ v: unknown }>((tie) => ({
  v: fc.oneof(
    { depthSize: 'small' },
    fc.constantFrom(null, true, false, 0, -1, 1e308, 1.5, '', 'HS256', '*', 'live/*'),
    fc.double({ noNaN: true, noDefaultInfinity: true }),
    fc.string({ maxLength: 10 }),
    fc.array(tie('v'), { maxLength: 3 }),
    fc.dictionary(jsonKeyArb, tie('v'), { maxKeys: 3, noNullPrototype: true }),
  ),
})).v;

const ALGS = [
  'HS256',
  'HS384',
  'HS512',
  'RS256',
  'ES256',
  'ES384',
  'EdDSA',
  'none',
  'NONE',
  'hs256',
  ...PROTO_KEYS,
];

const headerArb = fc.record(
  {
    alg: fc.oneof(fc.constantFrom(...ALGS), jsonArb),
    kid: fc.oneof(fc.constantFrom('ec1', 'ed1', 'nope'), jsonArb),
    typ: fc.constant('JWT'),
  },
  { requiredKeys: [] },
);
const claimsArb = fc.record(
  {
    exp: fc.oneof(fc.constant(NOW_SEC + 3600), fc.constant(NOW_SEC - 1), jsonArb),
    nbf: fc.oneof(fc.constant(NOW_SEC), jsonArb),
    streams: fc.oneof(fc.constantFrom('*', 'live/*', 'live/cam1', ['live/cam1', 'x']), jsonArb),
    ip: fc.oneof(fc.constantFrom('1.2.3.4', ['::ffff:1.2.3.4']), jsonArb),
    proto: fc.oneof(fc.constantFrom('rtmp', ['hls', 'rtsp']), jsonArb),
    sub: fc.oneof(fc.constantFrom('alice', 42, ' '), jsonArb),
    max_sessions: jsonArb,
    unique: fc.oneof(fc.constantFrom(true, 'true'), jsonArb),
  },
  { requiredKeys: [] },
);

const b64json = (v: unknown): string => Buffer.from(JSON.stringify(v) ?? 'null').toString('base64url');

const jwtTokenArb = fc.oneof(
  { weight: 1, arbitrary: textArb('eyJhbGciOi.-_AZaz09', 120) },
  {
    weight: 3,
    arbitrary: fc
      .tuple(headerArb, claimsArb, fc.oneof(fc.constant(''), fc.base64String({ maxLength: 90 })))
      .map(
        ([h, c, s]) =>
          `${b64json(h)}.${b64json(c)}.${s.replace(/=/g, '').replace(/\+/g, '-').replace(/\//g, '_')}`,
      ),
  },
  {
    weight: 3,
    arbitrary: fc
      .tuple(
        claimsArb,
        fc.constantFrom<Parameters<typeof signJwt>[1]>(
          { secret: 's3cret' },
          { secret: 's3cret', alg: 'HS512' },
          { privateKey: EC.privateKey, kid: 'ec1' },
          { privateKey: ED.privateKey },
        ),
        fc.array(mutationArb, { maxLength: 3 }),
      )
      .map(([c, key, ms]) => mutateText(signJwt(c as Record<string, unknown>, key), ms, 'latin1')),
  },
);

function checkJwtToken(token: string): void {
  withinBudget(token.length, () =>
    expectNoThrow(() => {
      const decoded = decodeJwt(token);
      for (const keys of KEY_SETS) {
        const r = checkJwt(token, keys, { now: NOW, stream: 'live/cam1', ip: '1.2.3.4', proto: 'rtmp' });
        // Only a token that decodes can verify.
        if (r.ok) assert.ok(decoded, 'an undecodable token verified');
      }
    }),
  );
}

// ---------------------------------------------------------------------------------------------
// KS

const safeArb = (chars: string, maxLength: number): fc.Arbitrary<string> =>
  fc.array(fc.constantFrom(...chars), { maxLength }).map((a) => a.join(''));
const ALNUM = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789';

const ksMintArb = fc.record({
  version: fc.constantFrom(1 as const, 2 as const),
  secret: fc.string({ minLength: 1, maxLength: 20 }),
  partnerId: fc.nat({ max: 99_999_999 }),
  userId: fc.option(safeArb(`${ALNUM}@._-`, 20), { nil: undefined }),
  type: fc.option(fc.integer({ min: 0, max: 2 }), { nil: undefined }),
  expirySec: fc.option(fc.integer({ min: 1, max: 10 ** 8 }), { nil: undefined }),
  privileges: fc.option(
    fc
      .array(
        fc.tuple(
          safeArb('abcdefghijklmnopqrstuvwxyz', 10).filter((k) => k !== ''),
          safeArb(`${ALNUM}/*._-`, 12),
        ),
        { maxLength: 4 },
      )
      .map((ps) => ps.map(([k, v]) => (v === '' ? k : `${k}:${v}`)).join(',')),
    { nil: undefined },
  ),
  masterPartnerId: fc.option(safeArb('0123456789', 6), { nil: undefined }),
  additionalData: fc.option(safeArb(`${ALNUM}._-`, 12), { nil: undefined }),
  rand: fc.uint8Array({ minLength: 16, maxLength: 16 }).map((a) => Buffer.from(a)),
});
type KsMint = typeof ksMintArb extends fc.Arbitrary<infer T> ? T : never;

function mintKs(m: KsMint): string {
  const o = { ...m, now: NOW, rand: m.version === 1 ? m.rand.toString('hex').slice(0, 5) : m.rand };
  return m.version === 1 ? mintKsV1(o) : mintKsV2(o);
}

function expectedKsInfo(m: KsMint): KsInfo {
  const info: KsInfo = {
    version: m.version,
    partnerId: String(m.partnerId),
    validUntil: Math.floor(NOW / 1000) + (m.expirySec ?? 86_400),
    type: m.type ?? 0,
    userId: m.userId ?? '',
    privileges: parsePrivileges(m.privileges ?? ''),
  };
  if (m.version === 1 && (m.masterPartnerId !== undefined || m.additionalData !== undefined)) {
    info.masterPartnerId = m.masterPartnerId ?? '';
    info.additionalData = m.additionalData ?? '';
  }
  if (m.version === 2 && m.masterPartnerId !== undefined) info.masterPartnerId = m.masterPartnerId;
  if (m.version === 2 && m.additionalData !== undefined) info.additionalData = m.additionalData;
  return info;
}

function checkKsToken(token: string, secrets: readonly string[]): KsInfo | undefined {
  return withinBudget(token.length, () =>
    expectNoThrow(() => {
      decodeKs(token, secrets);
      const r = checkKs(token, {
        secrets,
        now: NOW,
        ip: '1.2.3.4',
        uri: '/live/cam1',
        stream: 'live/cam1',
        partnerId: '',
      });
      return r.ok || r.reason === 'NO_PRIVILEGE' ? r.info : undefined;
    }),
  );
}

// ---------------------------------------------------------------------------------------------
// securetoken

const secureMintArb = fc.record({
  key: fc.string({ minLength: 1, maxLength: 20 }),
  stream: fc.string({ maxLength: 20 }),
  ip: fc.constantFrom('1.2.3.4', '::1', ''),
  userId: fc.option(fc.string({ maxLength: 8 }), { nil: undefined }),
  expirySec: fc.integer({ min: 1, max: 10 ** 6 }),
  salt: safeArb(ALNUM, 16).filter((s) => s !== ''),
});

export const tokenTargets = [
  defineTarget({
    name: 'jwt',
    property:
      'checkJwt/decodeJwt: any text, any header/claim JSON (prototype keys included), any keys → never throws; signJwt → checkJwt verifies the claims',
    arbitrary: fc.record({
      token: jwtTokenArb,
      mint: fc.record({
        claims: fc.dictionary(fc.string({ maxLength: 6 }), jsonArb, { maxKeys: 4, noNullPrototype: true }),
        key: fc.constantFrom<Parameters<typeof signJwt>[1]>(
          { secret: 's3cret', alg: 'HS384' },
          { privateKey: EC.privateKey, kid: 'ec1' },
          { privateKey: ED.privateKey },
        ),
      }),
    }),
    check: ({ token, mint }) => {
      checkJwtToken(token);
      const claims = { ...mint.claims, exp: NOW_SEC + 60, streams: ['live/cam1'] };
      const r = checkJwt(signJwt(claims, mint.key), KEY_SETS[2] as JwtKeys, {
        now: NOW,
        stream: 'live/cam1',
      });
      const nbf = (claims as Record<string, unknown>)['nbf'];
      if (nbf !== undefined && (typeof nbf !== 'number' || nbf > NOW_SEC + 30)) return;
      assert.ok(r.ok, `a minted token was refused: ${r.ok ? '' : r.detail}`);
      assert.deepStrictEqual(r.claims, JSON.parse(JSON.stringify(claims)));
    },
    replay: (file) => checkJwtToken(file.toString('utf8')),
  }),
  defineTarget({
    name: 'ks',
    property:
      'decodeKs/checkKs: any text → never throws; mintKsV1/V2 → checkKs gives the fields back; a mutated KS never verifies with other fields',
    arbitrary: fc.record({
      mint: ksMintArb,
      mutations: fc.array(mutationArb, { maxLength: 4 }),
      where: fc.constantFrom('text' as const, 'bytes' as const),
      garbage: textArb(`${ALNUM}+/=-_ |;`, 200),
    }),
    check: ({ mint, mutations, where, garbage }) => {
      checkKsToken(garbage, ['s3cret']);
      const token = mintKs(mint);
      const want = expectedKsInfo(mint);
      assert.deepStrictEqual(checkKsToken(token, ['wrong', mint.secret]), want, 'minted KS');
      // Mutate the base64 text, or the decoded bytes (so the decoder's later stages see the damage).
      const mutated =
        where === 'text'
          ? mutateText(token, mutations, 'latin1')
          : applyMutations(
              Buffer.from(token.replace(/-/g, '+').replace(/_/g, '/'), 'base64'),
              mutations,
            ).toString('base64');
      const info = checkKsToken(mutated, [mint.secret]);
      // KS v2 encrypts every field but the partner id in front of them (AUTH-SPEC §10.3): Kaltura
      // picks the partner's secret by it, and checkKs compares it with the configured partner.
      const signed = info && mint.version === 2 ? { ...info, partnerId: want.partnerId } : info;
      if (signed) assert.deepStrictEqual(signed, want, 'a mutated KS verified with different fields');
    },
    replay: (file) => {
      checkKsToken(file.toString('utf8'), ['s3cret']);
    },
  }),
  defineTarget({
    name: 'securetoken',
    property:
      'checkSecureToken/parseSecureToken: any text → never throws; mint → check verifies; a mutated token never verifies with other parts',
    arbitrary: fc.record({
      mint: secureMintArb,
      mutations: fc.array(mutationArb, { maxLength: 4 }),
      garbage: textArb('0123456789abcdefABCDEF- ', 120),
    }),
    check: ({ mint, mutations, garbage }) => {
      const opts = {
        key: mint.key,
        stream: mint.stream,
        ip: mint.ip,
        now: NOW,
        ...(mint.userId !== undefined ? { userId: mint.userId } : {}),
      };
      withinBudget(garbage.length, () =>
        expectNoThrow(() => [parseSecureToken(garbage), checkSecureToken(garbage, opts)]),
      );
      const token = mintSecureToken({ ...opts, expirySec: mint.expirySec, salt: mint.salt });
      const good = checkSecureToken(token, opts);
      assert.ok(good.ok, `a minted token was refused: ${good.ok ? '' : good.detail}`);
      const mutated = mutateText(token, mutations, 'latin1');
      const r = expectNoThrow(() => checkSecureToken(mutated, opts));
      if (r.ok) assert.deepStrictEqual(r.parts, good.parts, 'a mutated token verified with different parts');
    },
    replay: (file) => {
      const token = file.toString('utf8');
      expectNoThrow(() => checkSecureToken(token, { key: 'k', stream: 's', ip: '1.2.3.4', now: NOW }));
    },
  }),
];
