/**
 * Kaltura Session (KS) tokens, v1 and v2 (AUTH-SPEC §10.2–§10.4), and the playback check of the
 * `ks://` verifier (§10.7). An external entitlement system mints a KS with the partner secret;
 * the origin verifies it without calling anyone. Pure: time, randomness and secrets come in as
 * arguments, so tests fix all three and the CLI and the backend share every rule.
 */
import { createCipheriv, createDecipheriv, createHash, randomBytes, timingSafeEqual } from 'node:crypto';

/** Validation results as Kaltura numbers them (AUTH-SPEC §10.3 table). */
export const KS_CODES = {
  OK: 1,
  INVALID_STR: -1,
  INVALID_PARTNER: -2,
  INVALID_TYPE: -4,
  EXPIRED: -5,
  EXCEEDED_RESTRICTED_IP: -9,
  EXCEEDED_RESTRICTED_URI: -11,
} as const;

/**
 * Why a KS was refused. `INVALID_SIGNATURE` is Kaltura's INVALID_STR (code −1) for a well-formed
 * KS no configured secret signed; `NO_PRIVILEGE` is our §10.7 sview step, which has no KS code.
 */
export type KsRefusal =
  | 'INVALID_STR'
  | 'INVALID_SIGNATURE'
  | 'INVALID_PARTNER'
  | 'INVALID_TYPE'
  | 'EXPIRED'
  | 'EXCEEDED_RESTRICTED_IP'
  | 'EXCEEDED_RESTRICTED_URI'
  | 'NO_PRIVILEGE';

const REFUSAL_CODES: Record<KsRefusal, number> = {
  INVALID_STR: KS_CODES.INVALID_STR,
  INVALID_SIGNATURE: KS_CODES.INVALID_STR,
  INVALID_PARTNER: KS_CODES.INVALID_PARTNER,
  INVALID_TYPE: KS_CODES.INVALID_TYPE,
  EXPIRED: KS_CODES.EXPIRED,
  EXCEEDED_RESTRICTED_IP: KS_CODES.EXCEEDED_RESTRICTED_IP,
  EXCEEDED_RESTRICTED_URI: KS_CODES.EXCEEDED_RESTRICTED_URI,
  NO_PRIVILEGE: 0,
};

export function ksCode(reason: KsRefusal): number {
  return REFUSAL_CODES[reason];
}

/** One privilege `key[:value]`; `value` is '' for a bare key (AUTH-SPEC §10.4). */
export interface KsPrivilege {
  key: string;
  value: string;
}

/** The decoded content of a KS, whichever version carried it. */
export interface KsInfo {
  version: 1 | 2;
  partnerId: string;
  /** Absolute Unix seconds. */
  validUntil: number;
  /** 0 user, 1 widget, 2 admin (AUTH-SPEC §10.1). */
  type: number;
  userId: string;
  privileges: KsPrivilege[];
  masterPartnerId?: string;
  additionalData?: string;
}

/** Reserved v2 field names (AUTH-SPEC §10.3): everything else is a privilege. */
const V2_EXPIRY = '_e';
const V2_TYPE = '_t';
const V2_USER = '_u';
const V2_MASTER = '_m';
const V2_DATA = '_d';

const SHA1_LEN = 20;
const RAND_LEN = 16;
const BLOCK = 16;

function sha1(data: Buffer | string): Buffer {
  return createHash('sha1').update(data).digest();
}

/** Parses `k:v,k2,*` (AUTH-SPEC §10.4); `*` is stored as `all:*` like the server does (§10.3). */
export function parsePrivileges(text: string): KsPrivilege[] {
  const out: KsPrivilege[] = [];
  for (const raw of text.split(',')) {
    const p = raw.trim();
    if (p === '') continue;
    if (p === '*') {
      out.push({ key: 'all', value: '*' });
      continue;
    }
    const colon = p.indexOf(':');
    out.push(colon < 0 ? { key: p, value: '' } : { key: p.slice(0, colon), value: p.slice(colon + 1) });
  }
  return out;
}

/** The privilege string as a KS shows it: `all:*` is written `*` again (AUTH-SPEC §10.3 step 5). */
export function formatPrivileges(privs: readonly KsPrivilege[]): string {
  return privs.map(formatPrivilege).join(',');
}

export function formatPrivilege(p: KsPrivilege): string {
  if (p.key === 'all' && p.value === '*') return '*';
  return p.value === '' ? p.key : `${p.key}:${p.value}`;
}

/** PHP `urlencode`: only `-_.` and alphanumerics stay, space becomes `+` (http_build_query). */
function phpUrlencode(s: string): string {
  return encodeURIComponent(s)
    .replace(/[!'()*~]/g, (c) => '%' + c.charCodeAt(0).toString(16).toUpperCase())
    .replace(/%20/g, '+');
}

export interface MintKsOptions {
  secret: string;
  partnerId: string | number;
  userId?: string;
  /** Default 0 (USER). */
  type?: number;
  /** Relative seconds; Kaltura's default is 86 400 (AUTH-SPEC §10.1). */
  expirySec?: number;
  /** Comma-separated `k:v` list as accepted by `session.start`. */
  privileges?: string;
  masterPartnerId?: string;
  additionalData?: string;
  /** Milliseconds since the epoch. */
  now: number;
  /** v1: the `rand` field; v2: 16 random bytes. Tests fix it for reproducible tokens. */
  rand?: string | Buffer;
}

function validUntil(o: MintKsOptions): number {
  return Math.floor(o.now / 1000) + (o.expirySec ?? 86_400);
}

/** KS v1 (AUTH-SPEC §10.2): `base64(sha1hex(secret . INFO) "|" INFO)`, not encrypted. */
export function mintKsV1(o: MintKsOptions): string {
  const pid = String(o.partnerId);
  const rand = typeof o.rand === 'string' ? o.rand : String(Math.floor(Math.random() * 32_001));
  const fields = [
    pid,
    pid,
    String(validUntil(o)),
    String(o.type ?? 0),
    rand,
    o.userId ?? '',
    o.privileges ?? '',
  ];
  if (o.masterPartnerId !== undefined || o.additionalData !== undefined) {
    fields.push(o.masterPartnerId ?? '', o.additionalData ?? '');
  }
  const info = fields.join(';');
  const sig = sha1(o.secret + info).toString('hex');
  return Buffer.from(`${sig}|${info}`, 'utf8').toString('base64');
}

/** The key of AUTH-SPEC §10.3: the first 16 bytes of SHA-1(secret). */
function v2Key(secret: string): Buffer {
  return sha1(secret).subarray(0, BLOCK);
}

/** KS v2 (AUTH-SPEC §10.3): AES-128-CBC, zero IV, zero padding, URL-safe base64 with `=` kept. */
export function mintKsV2(o: MintKsOptions): string {
  const pairs: [string, string][] = parsePrivileges(o.privileges ?? '').map((p) => [p.key, p.value]);
  pairs.push([V2_EXPIRY, String(validUntil(o))], [V2_TYPE, String(o.type ?? 0)], [V2_USER, o.userId ?? '']);
  if (o.masterPartnerId !== undefined) pairs.push([V2_MASTER, o.masterPartnerId]);
  if (o.additionalData !== undefined) pairs.push([V2_DATA, o.additionalData]);
  const fields = Buffer.from(
    pairs.map(([k, v]) => `${phpUrlencode(k)}=${phpUrlencode(v)}`).join('&'),
    'utf8',
  );
  const rand = Buffer.isBuffer(o.rand) && o.rand.length === RAND_LEN ? o.rand : randomBytes(RAND_LEN);
  let plain = Buffer.concat([sha1(Buffer.concat([rand, fields])), rand, fields]);
  // Zero padding only up to the block boundary, as the PHP implementation does; no PKCS#7.
  const pad = (BLOCK - (plain.length % BLOCK)) % BLOCK;
  if (pad > 0) plain = Buffer.concat([plain, Buffer.alloc(pad)]);
  const cipher = createCipheriv('aes-128-cbc', v2Key(o.secret), Buffer.alloc(BLOCK));
  cipher.setAutoPadding(false);
  const encrypted = Buffer.concat([cipher.update(plain), cipher.final()]);
  const raw = Buffer.concat([Buffer.from(`v2|${String(o.partnerId)}|`, 'utf8'), encrypted]);
  return raw.toString('base64').replace(/\+/g, '-').replace(/\//g, '_');
}

export type KsDecode = { ok: true; info: KsInfo } | { ok: false; reason: KsRefusal; info?: KsInfo };

/**
 * AUTH-SPEC §10.3 decoding step 1: URL-safe alphabet mapped back, padding optional, strict
 * alphabet. A space is a `+` that went through form decoding of a query string (v1 is standard
 * base64), so it is mapped back too.
 */
function strictBase64(text: string): Buffer | undefined {
  let s = text.trim().replace(/ /g, '+').replace(/-/g, '+').replace(/_/g, '/');
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(s) || s.length === 0) return undefined;
  s = s.replace(/=+$/, '');
  if (s.length % 4 === 1) return undefined;
  const buf = Buffer.from(s, 'base64');
  // Canonical only: non-zero padding bits would let two spellings decode to the same KS.
  if (buf.toString('base64').replace(/=+$/, '') !== s) return undefined;
  return buf;
}

const V2_PREFIX = Buffer.from('v2|', 'latin1');

/** Decodes a KS and checks its signature against each secret (AUTH-SPEC §10.2, §10.3). */
export function decodeKs(ks: string, secrets: readonly string[]): KsDecode {
  const raw = strictBase64(ks);
  if (raw === undefined) return { ok: false, reason: 'INVALID_STR' };
  if (raw.subarray(0, V2_PREFIX.length).equals(V2_PREFIX)) return decodeV2(raw, secrets);
  return decodeV1(raw.toString('utf8'), secrets);
}

function decodeV1(text: string, secrets: readonly string[]): KsDecode {
  const bar = text.indexOf('|');
  if (bar < 0) return { ok: false, reason: 'INVALID_STR' };
  const sig = text.slice(0, bar);
  const infoText = text.slice(bar + 1);
  const parts = infoText.split(';');
  // The server requires at least 3 `;` parts (AUTH-SPEC §10.2); fewer cannot carry an expiry.
  if (parts.length < 3) return { ok: false, reason: 'INVALID_STR' };
  const info: KsInfo = {
    version: 1,
    partnerId: parts[0] ?? '',
    validUntil: toInt(parts[2]),
    type: toInt(parts[3]),
    userId: parts[5] ?? '',
    privileges: parsePrivileges(parts[6] ?? ''),
  };
  if (parts[7] !== undefined) info.masterPartnerId = parts[7];
  if (parts[8] !== undefined) info.additionalData = parts[8];
  const given = Buffer.from(sig.toLowerCase(), 'utf8');
  for (const secret of secrets) {
    const want = Buffer.from(sha1(secret + infoText).toString('hex'), 'utf8');
    if (want.length === given.length && timingSafeEqual(want, given)) return { ok: true, info };
  }
  return { ok: false, reason: 'INVALID_SIGNATURE', info };
}

function decodeV2(raw: Buffer, secrets: readonly string[]): KsDecode {
  const bar = raw.indexOf(0x7c, V2_PREFIX.length);
  if (bar < 0) return { ok: false, reason: 'INVALID_STR' };
  const partnerId = raw.subarray(V2_PREFIX.length, bar).toString('latin1');
  const encrypted = raw.subarray(bar + 1);
  if (!/^\d+$/.test(partnerId) || encrypted.length === 0 || encrypted.length % BLOCK !== 0) {
    return { ok: false, reason: 'INVALID_STR' };
  }
  for (const secret of secrets) {
    const decipher = createDecipheriv('aes-128-cbc', v2Key(secret), Buffer.alloc(BLOCK));
    decipher.setAutoPadding(false);
    let plain = Buffer.concat([decipher.update(encrypted), decipher.final()]);
    let end = plain.length;
    while (end > 0 && plain[end - 1] === 0) end--;
    plain = plain.subarray(0, end);
    if (plain.length < SHA1_LEN + RAND_LEN) continue;
    const hash = plain.subarray(0, SHA1_LEN);
    const rest = plain.subarray(SHA1_LEN);
    if (!timingSafeEqual(sha1(rest), hash)) continue;
    return { ok: true, info: parseV2Fields(partnerId, rest.subarray(RAND_LEN).toString('utf8')) };
  }
  return { ok: false, reason: 'INVALID_SIGNATURE', info: partnerOnly(partnerId) };
}

/** Only the partner id is readable without the secret; the rest stays encrypted. */
function partnerOnly(partnerId: string): KsInfo {
  return { version: 2, partnerId, validUntil: 0, type: 0, userId: '', privileges: [] };
}

function parseV2Fields(partnerId: string, fields: string): KsInfo {
  const info: KsInfo = { version: 2, partnerId, validUntil: 0, type: 0, userId: '', privileges: [] };
  for (const [k, v] of new URLSearchParams(fields)) {
    switch (k) {
      case V2_EXPIRY:
        info.validUntil = toInt(v);
        break;
      case V2_TYPE:
        info.type = toInt(v);
        break;
      case V2_USER:
        info.userId = v;
        break;
      case V2_MASTER:
        info.masterPartnerId = v;
        break;
      case V2_DATA:
        info.additionalData = v;
        break;
      default:
        info.privileges.push({ key: k, value: v });
    }
  }
  return info;
}

function toInt(s: string | undefined): number {
  if (s === undefined || !/^-?\d+$/.test(s.trim())) return 0;
  return Number(s.trim());
}

/** IPv4-mapped IPv6 (`::ffff:1.2.3.4`) is the same client as `1.2.3.4`. */
function normalizeIp(ip: string): string {
  const s = ip.trim().toLowerCase();
  return s.startsWith('::ffff:') && s.includes('.') ? s.slice('::ffff:'.length) : s;
}

/** AUTH-SPEC §10.4 `iprestrict`: the client IP must be one of the `/`-separated values. */
export function ipAllowed(info: KsInfo, ip: string): { ok: boolean; restricted: boolean } {
  const rules = info.privileges.filter((p) => p.key === 'iprestrict');
  if (rules.length === 0) return { ok: true, restricted: false };
  const client = normalizeIp(ip);
  const ok = rules.some((p) => p.value.split('/').some((v) => v !== '' && normalizeIp(v) === client));
  return { ok, restricted: true };
}

/** AUTH-SPEC §10.4 `urirestrict`: `|`-separated URIs, a trailing `*` is a prefix match. */
export function uriAllowed(info: KsInfo, uri: string): { ok: boolean; restricted: boolean } {
  const rules = info.privileges.filter((p) => p.key === 'urirestrict');
  if (rules.length === 0) return { ok: true, restricted: false };
  const ok = rules.some((p) =>
    p.value
      .split('|')
      .some((pat) => (pat.endsWith('*') ? uri.startsWith(pat.slice(0, -1)) : pat !== '' && uri === pat)),
  );
  return { ok, restricted: true };
}

/**
 * SPEC §6: `sview:<v>` grants `stream` when `v` equals it, or when one of its `/`-separated values
 * (Kaltura's multi-value delimiter) does; `*` grants every stream. Returns the matching privilege.
 */
export function sviewMatch(info: KsInfo, stream: string): string | undefined {
  for (const p of info.privileges) {
    if (p.key !== 'sview') continue;
    if (p.value === stream || p.value.split('/').some((v) => v === '*' || v === stream)) {
      return formatPrivilege(p);
    }
  }
  return undefined;
}

export interface KsCheckOptions {
  secrets: readonly string[];
  /** The partner of `ks://PARTNER`; a KS of another partner is INVALID_PARTNER. */
  partnerId?: string;
  /** Milliseconds since the epoch. */
  now: number;
  ip?: string;
  /** The request path matched against `urirestrict`. */
  uri?: string;
  /** The stream to play; without it the sview step is skipped (a token inspection). */
  stream?: string;
}

export type KsCheck =
  | {
      ok: true;
      info: KsInfo;
      /** The privilege that granted the stream, or `type>=1` for an admin KS. */
      matched: string | undefined;
      /** Seconds until `_e` (at least 1). */
      remainingSec: number;
      /** Privileges that the local verifier cannot enforce (AUTH-SPEC §10.7, A28). */
      ignored: string[];
    }
  | { ok: false; reason: KsRefusal; code: number; info?: KsInfo; detail: string };

function refuse(reason: KsRefusal, detail: string, info?: KsInfo): KsCheck {
  const r: KsCheck = { ok: false, reason, code: ksCode(reason), detail };
  if (info !== undefined) r.info = info;
  return r;
}

/** The §10.7 steps in order: signature, partner, expiry, iprestrict, urirestrict, type, sview. */
export function checkKs(ks: string, o: KsCheckOptions): KsCheck {
  if (o.secrets.length === 0) return refuse('INVALID_SIGNATURE', 'no secret configured');
  const d = decodeKs(ks, o.secrets);
  if (!d.ok) {
    const detail = d.reason === 'INVALID_STR' ? 'not a KS' : 'signature matches none of the secrets';
    return refuse(d.reason, detail, d.info);
  }
  const info = d.info;
  if (o.partnerId !== undefined && o.partnerId !== '' && info.partnerId !== o.partnerId) {
    return refuse('INVALID_PARTNER', `KS of partner ${info.partnerId}, expected ${o.partnerId}`, info);
  }
  const nowSec = Math.floor(o.now / 1000);
  if (info.validUntil <= nowSec) {
    return refuse('EXPIRED', `expired ${nowSec - info.validUntil} s ago`, info);
  }
  if (o.ip !== undefined) {
    const ipOk = ipAllowed(info, o.ip);
    if (!ipOk.ok) return refuse('EXCEEDED_RESTRICTED_IP', `client ip ${o.ip} is not allowed`, info);
  }
  if (o.uri !== undefined) {
    const uriOk = uriAllowed(info, o.uri);
    if (!uriOk.ok) return refuse('EXCEEDED_RESTRICTED_URI', `uri ${o.uri} is not allowed`, info);
  }
  let matched: string | undefined;
  if (info.type >= 1) {
    matched = `type:${info.type}`;
  } else if (o.stream !== undefined) {
    matched = sviewMatch(info, o.stream);
    if (matched === undefined) return refuse('NO_PRIVILEGE', `no sview privilege for ${o.stream}`, info);
  }
  const ignored = info.privileges.filter((p) => p.key === 'actionslimit').map(formatPrivilege);
  return { ok: true, info, matched, remainingSec: Math.max(1, info.validUntil - nowSec), ignored };
}
