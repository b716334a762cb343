/**
 * JSON Web Tokens for the `jwt://` verifier (SPEC §6): HMAC (`jwt://?secret=S`) and public-key
 * signatures from a JWKS (`jwt://?jwks=…`: RS256/384/512, ES256/384, EdDSA), and the playback
 * claims `sub`, `exp`, `nbf`, `streams`, `ip`, `max_sessions`, `unique`, `proto`.
 *
 * Pure: keys, time and the request come in as arguments (fetching a JWKS is jwks.ts). The header
 * `alg` is never trusted on its own: `none` is refused, and an algorithm must agree with the kind
 * of key configured, so an RSA public key can never be used as an HMAC secret (the classic
 * alg-confusion attack) and an HS token is refused when only a JWKS is configured.
 */
import {
  createHmac,
  createPublicKey,
  sign as cryptoSign,
  timingSafeEqual,
  verify as cryptoVerify,
  type JsonWebKey,
  type KeyObject,
} from 'node:crypto';

export type JwtAlg = 'HS256' | 'HS384' | 'HS512' | 'RS256' | 'RS384' | 'RS512' | 'ES256' | 'ES384' | 'EdDSA';

/**
 * The token's own `alg` indexes these tables, so they have no prototype: `constructor` or
 * `toString` must find nothing rather than an Object.prototype function.
 */
function algTable<T>(entries: Record<string, T>): Record<string, T> {
  return Object.assign(Object.create(null) as Record<string, T>, entries);
}

const HMAC_ALGS = algTable({ HS256: 'sha256', HS384: 'sha384', HS512: 'sha512' });
const RSA_ALGS = algTable({ RS256: 'sha256', RS384: 'sha384', RS512: 'sha512' });
/** ES algorithms: hash, OpenSSL curve name, raw signature length (r‖s, RFC 7518 §3.4). */
const EC_ALGS = algTable({
  ES256: { hash: 'sha256', curve: 'prime256v1', sigLen: 64 },
  ES384: { hash: 'sha384', curve: 'secp384r1', sigLen: 96 },
});

/** nbf tolerance: a token minted on a server whose clock runs a little ahead still plays. */
export const JWT_NBF_SKEW_SEC = 30;

/** What a verifier is configured with; either or both. */
export interface JwtKeys {
  /** HMAC secrets (`jwt://?secret=S1,S2`). */
  secrets?: readonly string[];
  /** Public keys from a JWKS (`jwt://?jwks=…`). */
  jwks?: readonly JsonWebKey[];
}

export interface DecodedJwt {
  header: Record<string, unknown>;
  payload: Record<string, unknown>;
  signingInput: string;
  signature: Buffer;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

const B64URL = /^[A-Za-z0-9_-]*$/;

function jsonPart(part: string): Record<string, unknown> | undefined {
  if (!B64URL.test(part) || part === '') return undefined;
  try {
    const v = JSON.parse(Buffer.from(part, 'base64url').toString('utf8')) as unknown;
    return isObject(v) ? v : undefined;
  } catch {
    return undefined;
  }
}

/** Splits and parses a compact JWS; undefined when it is not one. */
export function decodeJwt(token: string): DecodedJwt | undefined {
  const parts = token.trim().split('.');
  if (parts.length !== 3) return undefined;
  const [h, p, s] = parts as [string, string, string];
  const header = jsonPart(h);
  const payload = jsonPart(p);
  if (header === undefined || payload === undefined || !B64URL.test(s)) return undefined;
  return { header, payload, signingInput: `${h}.${p}`, signature: Buffer.from(s, 'base64url') };
}

export type JwtRefusal =
  | 'malformed'
  | 'alg_none'
  | 'alg_not_allowed'
  | 'no_matching_key'
  | 'bad_signature'
  | 'expired'
  | 'no_expiry'
  | 'not_yet_valid'
  | 'no_streams'
  | 'stream_not_granted'
  | 'ip_mismatch'
  | 'proto_not_allowed';

/** Whether `key` is the kind of key `alg` needs (RFC 7518 §3.1); anything else is a mismatch. */
function keyFits(alg: string, key: KeyObject): boolean {
  if (RSA_ALGS[alg] !== undefined) return key.asymmetricKeyType === 'rsa';
  const ec = EC_ALGS[alg];
  if (ec !== undefined) {
    return key.asymmetricKeyType === 'ec' && key.asymmetricKeyDetails?.namedCurve === ec.curve;
  }
  if (alg === 'EdDSA') return key.asymmetricKeyType === 'ed25519' || key.asymmetricKeyType === 'ed448';
  return false;
}

function verifyWithKey(alg: string, input: Buffer, sig: Buffer, key: KeyObject): boolean {
  try {
    const rsa = RSA_ALGS[alg];
    if (rsa !== undefined) return cryptoVerify(rsa, input, key, sig);
    const ec = EC_ALGS[alg];
    if (ec !== undefined) {
      if (sig.length !== ec.sigLen) return false;
      return cryptoVerify(ec.hash, input, { key, dsaEncoding: 'ieee-p1363' }, sig);
    }
    if (alg === 'EdDSA') return cryptoVerify(null, input, key, sig);
  } catch {
    // A key OpenSSL refuses for this operation is simply not the signer.
  }
  return false;
}

/** The JWKS entries that may have signed a token with this header. */
function candidateKeys(header: Record<string, unknown>, jwks: readonly JsonWebKey[]): KeyObject[] {
  const alg = String(header['alg']);
  const kid = typeof header['kid'] === 'string' ? header['kid'] : undefined;
  const out: KeyObject[] = [];
  for (const jwk of jwks) {
    if (kid !== undefined && jwk['kid'] !== undefined && jwk['kid'] !== kid) continue;
    if (jwk['use'] !== undefined && jwk['use'] !== 'sig') continue;
    if (jwk['alg'] !== undefined && jwk['alg'] !== alg) continue;
    if (jwk.kty === 'oct') continue;
    let key: KeyObject;
    try {
      key = createPublicKey({ key: jwk, format: 'jwk' });
    } catch {
      continue;
    }
    if (keyFits(alg, key)) out.push(key);
  }
  return out;
}

export type JwtSignatureCheck = { ok: true; alg: JwtAlg; kid?: string } | { ok: false; reason: JwtRefusal };

/** Checks the signature of a decoded token against the configured keys. */
export function verifyJwtSignature(d: DecodedJwt, keys: JwtKeys): JwtSignatureCheck {
  const alg = d.header['alg'];
  if (typeof alg !== 'string') return { ok: false, reason: 'malformed' };
  if (alg.toLowerCase() === 'none') return { ok: false, reason: 'alg_none' };
  const input = Buffer.from(d.signingInput, 'ascii');
  const hmac = HMAC_ALGS[alg];
  if (hmac !== undefined) {
    if (keys.secrets === undefined || keys.secrets.length === 0) {
      return { ok: false, reason: 'alg_not_allowed' };
    }
    for (const secret of keys.secrets) {
      const want = createHmac(hmac, secret).update(input).digest();
      if (want.length === d.signature.length && timingSafeEqual(want, d.signature)) {
        return { ok: true, alg: alg as JwtAlg };
      }
    }
    return { ok: false, reason: 'bad_signature' };
  }
  if (RSA_ALGS[alg] === undefined && EC_ALGS[alg] === undefined && alg !== 'EdDSA') {
    return { ok: false, reason: 'alg_not_allowed' };
  }
  if (keys.jwks === undefined || keys.jwks.length === 0) return { ok: false, reason: 'alg_not_allowed' };
  const candidates = candidateKeys(d.header, keys.jwks);
  if (candidates.length === 0) return { ok: false, reason: 'no_matching_key' };
  for (const key of candidates) {
    if (verifyWithKey(alg, input, d.signature, key)) {
      const r: JwtSignatureCheck = { ok: true, alg: alg as JwtAlg };
      if (typeof d.header['kid'] === 'string') r.kid = d.header['kid'];
      return r;
    }
  }
  return { ok: false, reason: 'bad_signature' };
}

/** The playback grant read from valid claims. */
export interface JwtGrant {
  userId?: string;
  /** Unix seconds. */
  exp: number;
  maxSessions?: number;
  unique?: boolean;
  /** The `streams` entry that matched, when a stream was asked about. */
  matched?: string;
  remainingSec: number;
}

export interface JwtCheckOptions {
  /** Milliseconds since the epoch. */
  now: number;
  stream?: string;
  ip?: string;
  proto?: string;
}

export type JwtCheck =
  | { ok: true; header: Record<string, unknown>; claims: Record<string, unknown>; grant: JwtGrant }
  | {
      ok: false;
      reason: JwtRefusal;
      detail: string;
      header?: Record<string, unknown>;
      claims?: Record<string, unknown>;
    };

/** A claim that may be one string or a list of them. */
function stringList(v: unknown): string[] | undefined {
  if (typeof v === 'string') return [v];
  if (Array.isArray(v) && v.every((x) => typeof x === 'string')) return v as string[];
  return undefined;
}

/** SPEC §6 `streams`: an exact name, `prefix/*` for everything under `prefix/`, or `*`. */
export function streamGranted(patterns: readonly string[], stream: string): string | undefined {
  for (const p of patterns) {
    if (p === '*' || p === stream) return p;
    if (p.endsWith('/*') && stream.startsWith(p.slice(0, -1))) return p;
  }
  return undefined;
}

function normalizeIp(ip: string): string {
  const s = ip.trim().toLowerCase();
  return s.startsWith('::ffff:') && s.includes('.') ? s.slice('::ffff:'.length) : s;
}

/**
 * The claim rules. `exp` and `streams` are required: a token that names no expiry or no stream
 * would be a password for everything forever, which is what a signed playback token must not be.
 */
export function checkJwtClaims(
  claims: Record<string, unknown>,
  o: JwtCheckOptions,
): { ok: true; grant: JwtGrant } | { ok: false; reason: JwtRefusal; detail: string } {
  const nowSec = Math.floor(o.now / 1000);
  const exp = claims['exp'];
  if (typeof exp !== 'number' || !Number.isFinite(exp)) {
    return { ok: false, reason: 'no_expiry', detail: 'the exp claim is missing' };
  }
  if (exp <= nowSec) return { ok: false, reason: 'expired', detail: `expired ${nowSec - exp} s ago` };
  const nbf = claims['nbf'];
  if (nbf !== undefined) {
    if (typeof nbf !== 'number') return { ok: false, reason: 'not_yet_valid', detail: 'nbf is not a number' };
    if (nbf > nowSec + JWT_NBF_SKEW_SEC) {
      return { ok: false, reason: 'not_yet_valid', detail: `valid in ${nbf - nowSec} s` };
    }
  }
  const streams = stringList(claims['streams']);
  if (streams === undefined || streams.length === 0) {
    return { ok: false, reason: 'no_streams', detail: 'the streams claim is missing' };
  }
  const grant: JwtGrant = { exp, remainingSec: Math.max(1, Math.floor(exp - nowSec)) };
  if (o.stream !== undefined) {
    const matched = streamGranted(streams, o.stream);
    if (matched === undefined) {
      return { ok: false, reason: 'stream_not_granted', detail: `streams does not include ${o.stream}` };
    }
    grant.matched = matched;
  }
  const ips = claims['ip'] === undefined ? undefined : (stringList(claims['ip']) ?? []);
  if (ips !== undefined && o.ip !== undefined) {
    const client = normalizeIp(o.ip);
    if (!ips.some((ip) => normalizeIp(ip) === client)) {
      return { ok: false, reason: 'ip_mismatch', detail: `client ip ${o.ip} is not allowed` };
    }
  }
  const protos = claims['proto'] === undefined ? undefined : (stringList(claims['proto']) ?? []);
  if (protos !== undefined && o.proto !== undefined && !protos.includes(o.proto)) {
    return { ok: false, reason: 'proto_not_allowed', detail: `protocol ${o.proto} is not allowed` };
  }
  const sub = claims['sub'];
  if ((typeof sub === 'string' && sub.trim() !== '') || typeof sub === 'number') {
    grant.userId = String(sub).trim();
  }
  const max = claims['max_sessions'];
  if (typeof max === 'number' && Number.isInteger(max) && max >= 1) grant.maxSessions = max;
  if (claims['unique'] === true || claims['unique'] === 'true') grant.unique = true;
  return { ok: true, grant };
}

/** Signature, then claims; the header and claims are returned for `token verify` to print. */
export function checkJwt(token: string, keys: JwtKeys, o: JwtCheckOptions): JwtCheck {
  const d = decodeJwt(token);
  if (d === undefined) return { ok: false, reason: 'malformed', detail: 'not a compact JWS' };
  const sig = verifyJwtSignature(d, keys);
  if (!sig.ok) {
    return { ok: false, reason: sig.reason, detail: signatureDetail(sig.reason, d.header), header: d.header };
  }
  const c = checkJwtClaims(d.payload, o);
  if (!c.ok) return { ...c, header: d.header, claims: d.payload };
  return { ok: true, header: d.header, claims: d.payload, grant: c.grant };
}

function signatureDetail(reason: JwtRefusal, header: Record<string, unknown>): string {
  // Not String(): a JSON object whose `toString` is data makes it throw.
  const alg = typeof header['alg'] === 'string' ? header['alg'] : '(not a string)';
  switch (reason) {
    case 'alg_none':
      return 'unsigned tokens (alg none) are refused';
    case 'alg_not_allowed':
      return `alg ${alg} does not fit the configured keys`;
    case 'no_matching_key':
      return `no ${alg} key${typeof header['kid'] === 'string' ? ` with kid ${header['kid']}` : ''} in the JWKS`;
    case 'bad_signature':
      return 'signature does not verify';
    default:
      return reason;
  }
}

export type JwtSigningKey =
  { secret: string; alg?: 'HS256' | 'HS384' | 'HS512' } | { privateKey: KeyObject; kid?: string };

/** The algorithm a private key signs with. */
export function algForKey(key: KeyObject): JwtAlg | undefined {
  if (key.asymmetricKeyType === 'rsa') return 'RS256';
  if (key.asymmetricKeyType === 'ed25519' || key.asymmetricKeyType === 'ed448') return 'EdDSA';
  if (key.asymmetricKeyType === 'ec') {
    const curve = key.asymmetricKeyDetails?.namedCurve;
    if (curve === 'prime256v1') return 'ES256';
    if (curve === 'secp384r1') return 'ES384';
  }
  return undefined;
}

/** Mints a compact JWS; the tool a payment server or SSO portal runs (`streamgate token mint`). */
export function signJwt(payload: Record<string, unknown>, key: JwtSigningKey): string {
  let alg: JwtAlg;
  const header: Record<string, unknown> = { typ: 'JWT' };
  if ('secret' in key) {
    alg = key.alg ?? 'HS256';
  } else {
    const a = algForKey(key.privateKey);
    if (a === undefined) {
      throw new Error(`unsupported private key type ${key.privateKey.asymmetricKeyType ?? '?'}`);
    }
    alg = a;
    if (key.kid !== undefined) header['kid'] = key.kid;
  }
  header['alg'] = alg;
  const input = `${Buffer.from(JSON.stringify(header)).toString('base64url')}.${Buffer.from(
    JSON.stringify(payload),
  ).toString('base64url')}`;
  let sig: Buffer;
  if ('secret' in key) {
    sig = createHmac(HMAC_ALGS[alg] ?? 'sha256', key.secret)
      .update(input)
      .digest();
  } else if (alg === 'EdDSA') {
    sig = cryptoSign(null, Buffer.from(input), key.privateKey);
  } else {
    const ec = EC_ALGS[alg];
    sig = ec
      ? cryptoSign(ec.hash, Buffer.from(input), { key: key.privateKey, dsaEncoding: 'ieee-p1363' })
      : cryptoSign(RSA_ALGS[alg] ?? 'sha256', Buffer.from(input), key.privateKey);
  }
  return `${input}.${sig.toString('base64url')}`;
}
