/**
 * `streamgate token mint|verify` (SPEC §1, §6): the tool an entitlement system (a payment
 * server, an SSO portal) runs to mint KS, JWT, securetoken and admin view tokens, and that an
 * operator runs to see why the origin accepts or refuses a token. `verify` applies exactly the
 * rules of the `ks://`, `jwt://` and `securetoken://` backends (the same pure modules), so its
 * answer is the server's answer for the same stream, IP and clock.
 *
 * Secrets are read from `--secret` or `STREAMGATE_TOKEN_SECRET` and never printed; the token is
 * printed only by `mint`. Exit codes: 0 minted / accepted, 1 refused, 2 bad usage.
 */
import { createPrivateKey } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import {
  ADMIN_VIEW_LIFETIME_SEC,
  ADMIN_VIEW_SECRET_ENV,
  mintAdminViewToken,
  verifyAdminViewToken,
} from '../tokens/admin-view.js';
import { JwksSource } from '../tokens/jwks.js';
import { algForKey, checkJwt, decodeJwt, signJwt, type JwtKeys } from '../tokens/jwt.js';
import { checkKs, formatPrivileges, mintKsV1, mintKsV2, type KsInfo } from '../tokens/ks.js';
import { checkSecureToken, mintSecureToken } from '../tokens/securetoken.js';

export interface TokenCliIo {
  stdout: (s: string) => void;
  stderr: (s: string) => void;
  env: NodeJS.ProcessEnv;
  /** Milliseconds since the epoch. */
  now: () => number;
}

const defaultIo: TokenCliIo = {
  stdout: (s) => process.stdout.write(s),
  stderr: (s) => process.stderr.write(s),
  env: process.env,
  now: Date.now,
};

const KINDS = ['ks', 'jwt', 'securetoken', 'admin'] as const;
type Kind = (typeof KINDS)[number];

export const TOKEN_USAGE = `Usage:
  streamgate token mint --kind ks|jwt|securetoken|admin [options]
  streamgate token verify --kind ks|jwt|securetoken|admin [options] TOKEN
  streamgate token mint --help | streamgate token verify --help

Mints signed playback tokens for ks://, jwt:// and securetoken:// streams and admin view
tokens, or explains why the server accepts or refuses one. The secret comes from --secret or
the STREAMGATE_TOKEN_SECRET environment variable and is never printed.
Exit codes: 0 minted / accepted, 1 refused, 2 bad usage.`;

const MINT_USAGE = `Usage: streamgate token mint --kind KIND [options]
Prints the token on stdout.

  --kind ks|jwt|securetoken|admin
  --secret S            signing secret (ks: partner secret; jwt: HS256 secret; securetoken: KEY;
                        admin: the server secret, STREAMGATE_ADMIN_VIEW_SECRET)
  --stream NAME         stream to grant; repeatable (ks: sview:NAME; jwt: streams, NAME or prefix/*;
                        securetoken: exactly one)
  --user U              user id (ks _u, jwt sub, securetoken user_id)
  --expiry SECONDS      lifetime (ks 86400, jwt 3600, securetoken 3600, admin 21600)
  --ip IP               bind to a client IP (ks iprestrict, jwt ip, securetoken hash)
ks:
  --partner P           partner id (required)
  --v1                  KS v1 (signed, not encrypted) instead of v2
  --type N              0 user (default), 2 admin (plays every stream)
  --privileges LIST     extra privileges, e.g. urirestrict:/live/*,sessionid:x
jwt:
  --key FILE            PEM private key instead of --secret (RS256, ES256/384, EdDSA)
  --kid ID              key id put in the header with --key
  --proto P             allowed protocol; repeatable (rtmp, rtsp, hls, tshttp)
  --max-sessions N      X-Max-Sessions for the token's user
  --unique              X-Unique for the token's user
securetoken:
  --no-check-ip         for servers configured with ?no_check_ip=true`;

const VERIFY_USAGE = `Usage: streamgate token verify --kind KIND --secret S [options] TOKEN
Prints "accepted" or "refused" with the reason and the token's fields; exit 0 accepted, 1 refused.

  --kind ks|jwt|securetoken|admin
  --secret S            secret; for ks repeatable or comma-separated (any may match)
  --stream NAME         the stream being played (required for securetoken)
  --ip IP               the client IP (iprestrict, jwt ip, securetoken hash)
ks:
  --partner P           the partner of ks://P
  --uri PATH            the request path for urirestrict (default /NAME)
jwt:
  --jwks FILE|URL       public keys instead of --secret
  --proto P             the protocol being played
securetoken:
  --no-check-ip         the server runs with ?no_check_ip=true
  --user U              the user_id query parameter the client sends`;

const OPTIONS = {
  kind: { type: 'string' },
  secret: { type: 'string', multiple: true },
  stream: { type: 'string', multiple: true },
  user: { type: 'string' },
  expiry: { type: 'string' },
  ip: { type: 'string' },
  partner: { type: 'string' },
  v1: { type: 'boolean' },
  type: { type: 'string' },
  privileges: { type: 'string' },
  key: { type: 'string' },
  kid: { type: 'string' },
  proto: { type: 'string', multiple: true },
  'max-sessions': { type: 'string' },
  unique: { type: 'boolean' },
  'no-check-ip': { type: 'boolean' },
  jwks: { type: 'string' },
  uri: { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const;

interface Values {
  kind?: string | undefined;
  secret?: string[] | undefined;
  stream?: string[] | undefined;
  user?: string | undefined;
  expiry?: string | undefined;
  ip?: string | undefined;
  partner?: string | undefined;
  v1?: boolean | undefined;
  type?: string | undefined;
  privileges?: string | undefined;
  key?: string | undefined;
  kid?: string | undefined;
  proto?: string[] | undefined;
  'max-sessions'?: string | undefined;
  unique?: boolean | undefined;
  'no-check-ip'?: boolean | undefined;
  jwks?: string | undefined;
  uri?: string | undefined;
  help?: boolean | undefined;
}

/** Thrown for bad usage; becomes exit 2 with the message and the command's usage. */
class UsageError extends Error {}

function need<T>(v: T | undefined, what: string): T {
  if (v === undefined || v === '') throw new UsageError(`${what} is required`);
  return v;
}

function seconds(v: string | undefined, dflt: number, what = '--expiry'): number {
  if (v === undefined) return dflt;
  if (!/^\d+$/.test(v) || Number(v) < 1) throw new UsageError(`${what} must be a positive integer`);
  return Number(v);
}

function secrets(v: Values, io: TokenCliIo, envName = 'STREAMGATE_TOKEN_SECRET'): string[] {
  const given = (v.secret ?? []).flatMap((s) => s.split(',')).filter((s) => s !== '');
  if (given.length > 0) return given;
  const env = io.env[envName] ?? '';
  return env === '' ? [] : env.split(',').filter((s) => s !== '');
}

function kindOf(v: Values): Kind {
  const k = need(v.kind, '--kind');
  if (!(KINDS as readonly string[]).includes(k)) {
    throw new UsageError(`--kind must be one of ${KINDS.join(', ')}`);
  }
  return k as Kind;
}

export async function runTokenCli(argv: string[], io: TokenCliIo = defaultIo): Promise<number> {
  const [sub, ...rest] = argv;
  if (sub === undefined || sub === '--help' || sub === '-h' || sub === 'help') {
    (sub === undefined ? io.stderr : io.stdout)(TOKEN_USAGE + '\n');
    return sub === undefined ? 2 : 0;
  }
  if (sub !== 'mint' && sub !== 'verify') {
    io.stderr(`unknown token command '${sub}'\n\n${TOKEN_USAGE}\n`);
    return 2;
  }
  const usage = sub === 'mint' ? MINT_USAGE : VERIFY_USAGE;
  try {
    const { values, positionals } = parseArgs({
      args: rest,
      options: OPTIONS,
      allowPositionals: true,
      strict: true,
    });
    const v = values as Values;
    if (v.help === true) {
      io.stdout(usage + '\n');
      return 0;
    }
    if (sub === 'mint') {
      if (positionals.length > 0) throw new UsageError(`unexpected argument '${positionals[0] ?? ''}'`);
      io.stdout(mint(kindOf(v), v, io) + '\n');
      return 0;
    }
    if (positionals.length !== 1) throw new UsageError('exactly one TOKEN is required');
    return await verify(kindOf(v), v, positionals[0] ?? '', io);
  } catch (err) {
    if (err instanceof UsageError || (err as { code?: string }).code?.startsWith('ERR_PARSE_ARGS')) {
      io.stderr(`${(err as Error).message}\n\n${usage}\n`);
      return 2;
    }
    throw err;
  }
}

function mint(kind: Kind, v: Values, io: TokenCliIo): string {
  const now = io.now();
  const streams = v.stream ?? [];
  switch (kind) {
    case 'ks': {
      const [secret] = secrets(v, io);
      const privs: string[] = streams.map((s) => `sview:${s}`);
      if (v.ip !== undefined) privs.push(`iprestrict:${v.ip}`);
      if (v.privileges !== undefined && v.privileges !== '') privs.push(v.privileges);
      const type = v.type === undefined ? 0 : Number(v.type);
      if (!Number.isInteger(type) || type < 0) throw new UsageError('--type must be 0, 1 or 2');
      const opts = {
        secret: need(secret, '--secret'),
        partnerId: need(v.partner, '--partner'),
        userId: v.user ?? '',
        type,
        expirySec: seconds(v.expiry, 86_400),
        privileges: privs.join(','),
        now,
      };
      return v.v1 === true ? mintKsV1(opts) : mintKsV2(opts);
    }
    case 'jwt': {
      if (streams.length === 0) {
        throw new UsageError('--stream is required (the verifier refuses tokens without streams)');
      }
      const nowSec = Math.floor(now / 1000);
      const payload: Record<string, unknown> = {};
      if (v.user !== undefined) payload['sub'] = v.user;
      payload['streams'] = streams;
      payload['iat'] = nowSec;
      payload['exp'] = nowSec + seconds(v.expiry, 3600);
      if (v.ip !== undefined) payload['ip'] = v.ip;
      if (v.proto !== undefined) payload['proto'] = v.proto;
      if (v['max-sessions'] !== undefined) {
        payload['max_sessions'] = seconds(v['max-sessions'], 0, '--max-sessions');
      }
      if (v.unique === true) payload['unique'] = true;
      if (v.key !== undefined) {
        let privateKey;
        try {
          privateKey = createPrivateKey(readFileSync(v.key));
        } catch (err) {
          throw new UsageError(`--key ${v.key}: ${(err as Error).message}`);
        }
        if (algForKey(privateKey) === undefined) throw new UsageError(`--key ${v.key}: unsupported key type`);
        return signJwt(payload, v.kid !== undefined ? { privateKey, kid: v.kid } : { privateKey });
      }
      const [secret] = secrets(v, io);
      return signJwt(payload, { secret: need(secret, '--secret or --key') });
    }
    case 'securetoken': {
      if (streams.length !== 1) throw new UsageError('exactly one --stream is required');
      if (v.ip === undefined && v['no-check-ip'] !== true) {
        throw new UsageError('--ip or --no-check-ip is required');
      }
      const [secret] = secrets(v, io);
      return mintSecureToken({
        key: need(secret, '--secret'),
        stream: streams[0] ?? '',
        ip: v['no-check-ip'] === true ? '' : (v.ip ?? ''),
        now,
        expirySec: seconds(v.expiry, 3600),
        ...(v.user !== undefined ? { userId: v.user } : {}),
      });
    }
    case 'admin': {
      const [secret] = secrets(v, io, ADMIN_VIEW_SECRET_ENV);
      return mintAdminViewToken(need(secret, '--secret'), now, seconds(v.expiry, ADMIN_VIEW_LIFETIME_SEC))
        .token;
    }
  }
}

function when(unixSec: number, nowMs: number): string {
  const delta = unixSec - Math.floor(nowMs / 1000);
  const iso = Number.isFinite(unixSec) ? new Date(unixSec * 1000).toISOString() : String(unixSec);
  return `${iso} (${delta >= 0 ? `in ${delta} s` : `${-delta} s ago`})`;
}

const KS_TYPES: Record<number, string> = { 0: 'user', 1: 'widget', 2: 'admin' };

function ksFields(info: KsInfo, nowMs: number, full: boolean): string[] {
  const lines = [`version: ${info.version}`, `partner: ${info.partnerId}`];
  if (!full) return lines;
  lines.push(
    `type: ${info.type} (${KS_TYPES[info.type] ?? 'unknown'})`,
    `user: ${info.userId === '' ? '(none)' : info.userId}`,
    `privileges: ${info.privileges.length === 0 ? '(none)' : formatPrivileges(info.privileges)}`,
    `expires: ${when(info.validUntil, nowMs)}`,
  );
  return lines;
}

async function verify(kind: Kind, v: Values, token: string, io: TokenCliIo): Promise<number> {
  const now = io.now();
  const stream = v.stream?.[0];
  const out: string[] = [];
  let ok: boolean;
  switch (kind) {
    case 'ks': {
      const list = secrets(v, io);
      if (list.length === 0) throw new UsageError('--secret is required');
      const r = checkKs(token, {
        secrets: list,
        now,
        ...(v.partner !== undefined ? { partnerId: v.partner } : {}),
        ...(v.ip !== undefined ? { ip: v.ip } : {}),
        ...(stream !== undefined
          ? { uri: v.uri ?? `/${stream}`, stream }
          : v.uri !== undefined
            ? { uri: v.uri }
            : {}),
      });
      ok = r.ok;
      if (r.ok) {
        out.push(
          `accepted: ${r.matched !== undefined ? `${r.matched} grants ${stream ?? 'every stream'}` : 'valid KS'}`,
        );
        if (stream === undefined && r.info.type < 1) out.push('note: no --stream given, sview not checked');
        out.push(...ksFields(r.info, now, true));
        out.push(
          `auth_duration: ${Math.min(180, r.remainingSec)} s at the default 180 (re-verified until expiry)`,
        );
        if (r.ignored.length > 0) out.push(`ignored: ${r.ignored.join(',')} (not enforced locally)`);
      } else {
        out.push(`refused: ${r.reason} (code ${r.code}): ${r.detail}`);
        // Fields only after the signature verified: a forged KS's claims are noise.
        if (r.info !== undefined) out.push(...ksFields(r.info, now, r.reason !== 'INVALID_SIGNATURE'));
      }
      break;
    }
    case 'jwt': {
      const keys: JwtKeys = { secrets: secrets(v, io) };
      if (v.jwks !== undefined) {
        try {
          const kid = decodeJwt(token)?.header['kid'];
          keys.jwks = await new JwksSource(v.jwks).keys(typeof kid === 'string' ? kid : undefined);
        } catch (err) {
          io.stderr(`cannot load JWKS ${v.jwks}: ${(err as Error).message}\n`);
          return 2;
        }
      }
      if ((keys.secrets ?? []).length === 0 && keys.jwks === undefined) {
        throw new UsageError('--secret or --jwks is required');
      }
      const r = checkJwt(token, keys, {
        now,
        ...(stream !== undefined ? { stream } : {}),
        ...(v.ip !== undefined ? { ip: v.ip } : {}),
        ...(v.proto?.[0] !== undefined ? { proto: v.proto[0] } : {}),
      });
      ok = r.ok;
      if (r.ok) {
        out.push(
          `accepted: ${r.grant.matched !== undefined ? `streams entry ${r.grant.matched} grants ${stream ?? ''}` : 'valid JWT'}`,
        );
        if (stream === undefined) out.push('note: no --stream given, streams not checked');
      } else {
        out.push(`refused: ${r.reason}: ${r.detail}`);
      }
      if (r.header !== undefined) out.push(`alg: ${String(r.header['alg'])}`);
      if (r.claims !== undefined) {
        for (const [k, val] of Object.entries(r.claims)) {
          out.push(
            k === 'exp' || k === 'nbf' || k === 'iat'
              ? `${k}: ${typeof val === 'number' ? when(val, now) : JSON.stringify(val)}`
              : `${k}: ${JSON.stringify(val)}`,
          );
        }
      }
      break;
    }
    case 'securetoken': {
      if (v.ip === undefined && v['no-check-ip'] !== true) {
        throw new UsageError('--ip or --no-check-ip is required');
      }
      const [key] = secrets(v, io);
      const r = checkSecureToken(token, {
        key: need(key, '--secret'),
        stream: need(stream, '--stream'),
        ip: v.ip ?? '',
        noCheckIp: v['no-check-ip'] === true,
        now,
        ...(v.user !== undefined ? { userId: v.user } : {}),
      });
      ok = r.ok;
      out.push(r.ok ? `accepted: hash matches ${stream ?? ''}` : `refused: ${r.reason}: ${r.detail}`);
      if (r.parts !== undefined) {
        out.push(`starttime: ${when(r.parts.starttime, now)}`, `endtime: ${when(r.parts.endtime, now)}`);
      }
      if (v.user !== undefined) out.push(`user: ${v.user}`);
      break;
    }
    case 'admin': {
      const [secret] = secrets(v, io, ADMIN_VIEW_SECRET_ENV);
      const r = verifyAdminViewToken(token, need(secret, '--secret'), now);
      ok = r.ok;
      out.push(r.ok ? 'accepted: admin view token' : `refused: ${r.reason}`);
      if (r.expiresAt !== undefined) out.push(`expires: ${when(r.expiresAt, now)}`);
      break;
    }
  }
  io.stdout(out.join('\n') + '\n');
  return ok ? 0 : 1;
}
