/**
 * What an RTMP client asks for, as the session manager needs it (SPEC §4, AUTH-SPEC
 * §3.3): the stream name, the token, and the query. Pure: connect command values and
 * the play/publish argument in, values out.
 *
 * OBS puts the whole stream key (`cam1?token=T`) in the publish argument; ffmpeg and
 * VLC split `rtmp://host/live/cam1?token=T` into app `live` and name `cam1?token=T`,
 * and some clients put the query on the app/tcUrl instead (`rtmp://host/live?token=T`).
 */
import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import type { Amf0Object, Amf0Value } from '../../src/media/amf0.js';

export interface ConnectInfo {
  app: string;
  tcUrl?: string;
  flashVer?: string;
  pageUrl?: string;
}

export interface RtmpTarget {
  name: string;
  token?: string;
  query: URLSearchParams;
  /** The query as the client sent it (stream-name query, else connect query), for the backend's `qs`. */
  qs: string;
}

/** The connect command object's string fields we use; anything missing or not a string is absent. */
export function connectInfo(commandObject: Amf0Value | undefined): ConnectInfo {
  const o = isObject(commandObject) ? commandObject : {};
  const text = (key: string): string | undefined => {
    const v = o[key];
    return typeof v === 'string' ? v : undefined;
  };
  const tcUrl = text('tcUrl');
  const flashVer = text('flashVer');
  const pageUrl = text('pageUrl');
  return {
    app: text('app') ?? '',
    ...(tcUrl !== undefined ? { tcUrl } : {}),
    ...(flashVer !== undefined ? { flashVer } : {}),
    ...(pageUrl !== undefined ? { pageUrl } : {}),
  };
}

function isObject(v: Amf0Value | undefined): v is Amf0Object {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Apps whose name is not part of the stream name (`rtmp://host/static/demo` plays `demo`). */
const DISCARDED_APPS = new Set(['static', 'rtmp']);

function splitQuery(s: string): [path: string, query: string] {
  const i = s.indexOf('?');
  return i < 0 ? [s, ''] : [s.slice(0, i), s.slice(i + 1)];
}

/** The query part of the connect request: on the app (`live?token=T`) or on tcUrl. */
function connectQuery(c: ConnectInfo): string {
  const [, appQuery] = splitQuery(c.app);
  if (appQuery) return appQuery;
  return c.tcUrl ? splitQuery(c.tcUrl)[1] : '';
}

export function rtmpTarget(connect: ConnectInfo, streamArg: string): RtmpTarget {
  const [rawName, nameQuery] = splitQuery(streamArg);
  const [rawApp] = splitQuery(connect.app);
  const app = rawApp.replace(/^\/+|\/+$/g, '');
  const stream = rawName.replace(/^(mp4|flv|f4v):/, '').replace(/^\/+|\/+$/g, '');
  const name = DISCARDED_APPS.has(app) || app === '' ? stream : stream === '' ? app : `${app}/${stream}`;

  const fromConnect = new URLSearchParams(connectQuery(connect));
  const query = new URLSearchParams(fromConnect);
  // The stream-name query wins over the connect-URL one (SPEC §4).
  for (const key of new Set(new URLSearchParams(nameQuery).keys())) query.delete(key);
  for (const [k, v] of new URLSearchParams(nameQuery)) query.append(k, v);
  const token = query.get('token') ?? undefined;
  return { name, query, qs: nameQuery || connectQuery(connect), ...(token ? { token } : {}) };
}

// ---------------------------------------------------------------------------------------------
// Adobe `authmod=adobe` (the challenge OBS's "Use authentication" username/password fields and
// ffmpeg's rtmp://user:pass@host/… URLs answer). No published spec exists; the exchange below is
// what FMS/Wowza send and what ffmpeg's rtmpproto.c, librtmp (OBS) and GStreamer's rtmp2 answer:
//
//   1. connect app `live`                       → _error "… code=403 need auth; authmod=adobe …"
//   2. connect app `live?authmod=adobe&user=U`  → _error "… ?reason=needauth&user=U&salt=S&challenge=C&opaque=C"
//   3. connect app `live?authmod=adobe&user=U&challenge=C2&response=R&opaque=C`
//      R = base64(md5(base64(md5(U + S + password)) + C + C2))
//
// Clients hash with `opaque` when it is present and with `challenge` otherwise, so both carry the
// same value. The server needs the stream's password to check R, and the stream is named only by
// the later publish command: step 3's connect is accepted with a proof that admission checks
// against the stream's `password` (AUTH-SPEC §7.3). C is self-validating (nonce, expiry and an
// HMAC under a per-process key), so step 3 may arrive on a new connection, as it always does,
// with no shared state but the key; a used C is remembered until it expires, so a captured
// response cannot be replayed.

/** Query parameters of the adobe exchange; none of them reaches the auth backend but `user`. */
const ADOBE_PARAMS = ['authmod', 'challenge', 'response', 'opaque', 'salt', 'reason'];
/** How long a challenge may be answered: a client reconnects within milliseconds. */
export const ADOBE_CHALLENGE_TTL_MS = 60_000;
/** Remembered used challenges at most; beyond it the oldest are forgotten early (they still expire). */
const MAX_USED_CHALLENGES = 10_000;

export type AdobeStep =
  /** The client did not ask for adobe authentication. */
  | { kind: 'none' }
  /** Refuse the connect with this `NetConnection.Connect.Rejected` description (steps 1–2, or a bad answer). */
  | { kind: 'reject'; description: string }
  /** Step 3 is well formed: accept the connect; `check(password)` verifies the response once. */
  | { kind: 'answered'; user: string; check: (password: string) => boolean };

export class AdobeAuth {
  private readonly used = new Map<string, number>();

  constructor(
    private readonly key: Buffer = randomBytes(32),
    private readonly now: () => number = Date.now,
    private readonly random: (n: number) => Buffer = randomBytes,
  ) {}

  /**
   * What to do with a connect whose app/tcUrl query is `query`; `required` when the app's streams
   * take only adobe-authenticated publishers (a client that did not ask is then challenged).
   */
  step(query: ReadonlyMap<string, string>, required = false): AdobeStep {
    if (query.get('authmod') !== 'adobe') {
      return required
        ? { kind: 'reject', description: reject('code=403 need auth; authmod=adobe') }
        : { kind: 'none' };
    }
    const user = query.get('user') ?? '';
    if (user === '') return { kind: 'reject', description: reject('code=403 need auth; authmod=adobe') };
    const response = query.get('response');
    const clientChallenge = query.get('challenge');
    if (response === undefined || clientChallenge === undefined) {
      return { kind: 'reject', description: this.challenge(user) };
    }
    const token = query.get('opaque') ?? '';
    const nonce = this.validNonce(user, token);
    if (nonce === undefined) {
      return { kind: 'reject', description: reject('authmod=adobe', '?reason=authfailed') };
    }
    const salt = this.salt(user, nonce);
    let spent = false;
    return {
      kind: 'answered',
      user,
      check: (password) => {
        if (spent || this.used.has(token)) return false;
        spent = true;
        const expected = adobeResponse(user, salt, password, token, clientChallenge);
        const ok = safeEqualText(expected, response);
        if (ok) this.remember(token);
        return ok;
      },
    };
  }

  /** Step 2's description: a fresh salt and challenge for `user`. */
  private challenge(user: string): string {
    const nonce = this.random(9).toString('base64url');
    const expires = (this.now() + ADOBE_CHALLENGE_TTL_MS).toString(36);
    const token = `${nonce}.${expires}.${this.mac(`c|${user}|${nonce}|${expires}`)}`;
    const params = `user=${user}&salt=${this.salt(user, nonce)}&challenge=${token}&opaque=${token}`;
    return reject('authmod=adobe', `?reason=needauth&${params}`);
  }

  private validNonce(user: string, token: string): string | undefined {
    const [nonce, expires, mac, extra] = token.split('.');
    if (nonce === undefined || expires === undefined || mac === undefined || extra !== undefined) {
      return undefined;
    }
    if (!safeEqualText(this.mac(`c|${user}|${nonce}|${expires}`), mac)) return undefined;
    if (parseInt(expires, 36) < this.now()) return undefined;
    return nonce;
  }

  private salt(user: string, nonce: string): string {
    return this.mac(`s|${user}|${nonce}`).slice(0, 16);
  }

  private mac(text: string): string {
    return createHmac('sha256', this.key).update(text).digest('base64url').slice(0, 22);
  }

  private remember(token: string): void {
    const now = this.now();
    for (const [t, expiry] of this.used) {
      if (expiry > now && this.used.size < MAX_USED_CHALLENGES) break;
      this.used.delete(t);
    }
    this.used.set(token, now + ADOBE_CHALLENGE_TTL_MS);
  }
}

/** R = base64(md5(base64(md5(user + salt + password)) + challenge + clientChallenge)). */
export function adobeResponse(
  user: string,
  salt: string,
  password: string,
  challenge: string,
  clientChallenge: string,
): string {
  const hash1 = createHash('md5')
    .update(user + salt + password)
    .digest('base64');
  return createHash('md5')
    .update(hash1 + challenge + clientChallenge)
    .digest('base64');
}

/** The connect with the adobe parameters taken out of its query (only `user` stays, for the backend). */
export function withoutAdobeParams(c: ConnectInfo): ConnectInfo {
  const clean = (s: string): string => {
    const [path, query] = splitQuery(s);
    if (!query) return s;
    const q = new URLSearchParams(query);
    for (const k of ADOBE_PARAMS) q.delete(k);
    const rest = q.toString();
    return rest ? `${path}?${rest}` : path;
  };
  return { ...c, app: clean(c.app), ...(c.tcUrl !== undefined ? { tcUrl: clean(c.tcUrl) } : {}) };
}

/**
 * The adobe parameters of the connect request's query, raw: clients put base64 (`+`, `/`, `=`)
 * into `challenge` and `response` without percent-encoding it (librtmp's challenge is base64 of
 * four random bytes), so form decoding (`+` → space) would break them; the first `=` splits a
 * parameter and the first occurrence of a name wins. A client whose app already had a query
 * appends its `?authmod=…` with a second `?`, so every `?` separates parameters too.
 */
export function connectParams(c: ConnectInfo): Map<string, string> {
  const params = new Map<string, string>();
  for (const part of connectQuery(c).split(/[&?]/)) {
    const eq = part.indexOf('=');
    const key = eq < 0 ? part : part.slice(0, eq);
    if (key !== '' && !params.has(key)) params.set(key, eq < 0 ? '' : part.slice(eq + 1));
  }
  return params;
}

/** The app part of the connect (`live` of `live?token=T`), without slashes. */
export function connectApp(c: ConnectInfo): string {
  return splitQuery(c.app)[0].replace(/^\/+|\/+$/g, '');
}

/**
 * The RTMP apps whose publishers must answer the adobe challenge: the prefixes of templates and
 * the first path segment of streams that set `rtmp_auth adobe`. The challenge has to come in
 * answer to connect, before the stream is named, so it is decided per app.
 */
export function adobeApps(
  blocks: readonly { name: string; prefixes: string[]; rtmpAuth?: 'adobe' }[],
): Set<string> {
  const apps = new Set<string>();
  for (const b of blocks) {
    if (b.rtmpAuth !== 'adobe') continue;
    for (const p of b.prefixes) apps.add(p);
    if (b.prefixes.length === 0 && b.name.includes('/')) apps.add(b.name.slice(0, b.name.indexOf('/')));
  }
  return apps;
}

/**
 * FMS/Wowza's wording. Clients search it for `code=403 need auth`, `authmod=adobe` and
 * `?reason=…`; librtmp reads the last parameter up to the end of the string, so nothing may
 * follow the parameters.
 */
function reject(detail: string, params = ''): string {
  return `[ AccessManager.Reject ] : [ ${detail} ] : ${params}`;
}

function safeEqualText(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}
