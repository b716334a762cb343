/**
 * The authorization half of the config language: `on_play` / `on_publish` / legacy `auth`
 * lines with their `key=value` options and `session_keys` (SPEC §2, AUTH-SPEC §3.1), and
 * `auth_backend NAME { … }` chains (AUTH-SPEC §6). The same option syntax appears at the top
 * level, in streams and templates, and as `backend` lines inside a chain, so it is read by
 * one piece of code wherever it is written.
 */
import { DEFAULT_SESSION_KEYS, type SessionKey } from '../core/session-keys.js';
import { IDENT, isPositiveInteger, isPositiveNumber, normalizeIpOrCidr, type Checker } from './check.js';
import { suggest } from './directives.js';
import type { Token } from './lexer.js';
import type { Stmt } from './syntax.js';
import type { AuthBackendConfig, AuthSpec, RuleKind } from './types.js';

export const DEFAULT_BACKEND_TIMEOUT_SEC = 3;

/** Where each hook directive of one scope was first written, to catch repeats. */
export interface AuthSeen {
  onPlay?: Token;
  auth?: Token;
  onPublish?: Token;
}

/** Reads auth directives into specs and remembers every `auth://NAME` to check once the file is read. */
export class AuthSpecs {
  private readonly refs: { name: string; tok: Token }[] = [];

  constructor(private readonly chk: Checker) {}

  /** `on_play`, `on_publish` and legacy `auth`, at top level or in a stream/template. */
  directive(s: Stmt, target: { onPlay?: AuthSpec; onPublish?: AuthSpec }, seen: AuthSeen): void {
    const head = s.words[0] as Token;
    if (!this.chk.noBlock(s) || !this.chk.arity(s, 1, Infinity, `${head.value} URL [key=value…]`)) return;
    const slot = head.value === 'on_publish' ? 'onPublish' : head.value === 'auth' ? 'auth' : 'onPlay';
    const prev = seen[slot];
    if (prev) {
      this.chk.err(head, `duplicate '${head.value}' (already set at ${prev.line}:${prev.col})`);
      return;
    }
    seen[slot] = head;
    // AUTH-SPEC §6.5: `auth` and `on_play` cannot both be set on the same stream.
    const other = slot === 'auth' ? seen.onPlay : slot === 'onPlay' ? seen.auth : undefined;
    if (other) {
      this.chk.err(
        head,
        `'auth' and 'on_play' cannot both be set here (other one at ${other.line}:${other.col})`,
      );
      return;
    }
    const spec = this.spec(head, s.words.slice(1), 'hook');
    if (!spec) return;
    if (slot === 'onPublish') {
      target.onPublish = spec;
    } else {
      if (slot === 'auth') spec.legacyAuth = true;
      target.onPlay = spec;
    }
  }

  /** Parses `URL key=value…`; `hook` for on_play/on_publish, `backend` inside auth_backend. */
  private spec(head: Token, args: Token[], role: 'hook' | 'backend'): AuthSpec | undefined {
    const urlTok = args[0] as Token;
    const url = urlTok.value;
    let ok = true;
    const scheme = /^([A-Za-z][A-Za-z0-9+.-]*):\/\//.exec(url)?.[1]?.toLowerCase();
    const isScript =
      scheme === undefined &&
      (url.startsWith('/') || url.startsWith('./') || url.startsWith('../') || /\.m?js$/.test(url));
    const expected =
      role === 'hook'
        ? 'http(s)://URL, a script path, auth://NAME, jwt://, ks://, securetoken:// or true'
        : 'http(s)://URL or a script path';
    if (scheme === 'http' || scheme === 'https') {
      if (!URL.canParse(url)) {
        this.chk.err(urlTok, `bad URL '${url}'`);
        ok = false;
      }
    } else if (isScript) {
      // Existence is checked when the backend is loaded; the config stays pure.
    } else if (
      role === 'hook' &&
      (url === 'true' || scheme === 'jwt' || scheme === 'ks' || scheme === 'securetoken')
    ) {
      // The token verifiers validate their own parameters.
    } else if (role === 'hook' && scheme === 'auth') {
      const name = url.slice('auth://'.length);
      if (!IDENT.test(name)) {
        this.chk.err(urlTok, `bad auth_backend reference '${url}' (expected auth://NAME)`);
        ok = false;
      } else {
        this.refs.push({ name, tok: urlTok });
      }
    } else {
      const what = scheme === undefined ? `'${url}'` : `scheme '${scheme}://'`;
      this.chk.err(
        urlTok,
        `unknown ${role === 'hook' ? `'${head.value}'` : 'backend'} ${what} (expected ${expected})`,
      );
      ok = false;
    }

    const spec: AuthSpec = {
      url,
      sessionKeys: [...DEFAULT_SESSION_KEYS],
      softLimitation: false,
      domainsStrict: false,
      timeoutSec: DEFAULT_BACKEND_TIMEOUT_SEC,
      extra: {},
      loc: this.chk.loc(head),
    };
    const opts: { key: string; value: string; tok: Token }[] = [];
    const seenKeys = new Map<string, Token>();
    for (const t of args.slice(1)) {
      const m = /^([A-Za-z_][A-Za-z0-9_-]*)=([\s\S]*)$/.exec(t.value);
      if (!m) {
        this.chk.err(t, `expected an option key=value after the URL, got '${t.value}'`);
        ok = false;
        continue;
      }
      const key = m[1] ?? '';
      const prev = seenKeys.get(key);
      if (prev) {
        this.chk.err(t, `duplicate option '${key}' (already at ${prev.line}:${prev.col})`);
        ok = false;
        continue;
      }
      seenKeys.set(key, t);
      opts.push({ key, value: m[2] ?? '', tok: t });
    }
    // AUTH-SPEC A6: bare query-parameter names in session_keys only with this switch.
    const bareQuery = opts.find((o) => o.key === 'session_keys_query_bare');
    let bareQueryKeys = false;
    if (bareQuery) {
      const b = this.chk.bool(bareQuery.tok, bareQuery.key, bareQuery.value);
      if (b === undefined) ok = false;
      else bareQueryKeys = b;
    }
    for (const { key, value, tok } of opts) {
      switch (key) {
        case 'session_keys_query_bare':
          break;
        case 'session_keys': {
          const keys = this.sessionKeys(tok, value, bareQueryKeys);
          if (keys) spec.sessionKeys = keys;
          else ok = false;
          break;
        }
        case 'max_sessions':
          if (isPositiveInteger(value)) spec.maxSessions = Number(value);
          else {
            this.chk.err(tok, `max_sessions must be a positive integer, got '${value}'`);
            ok = false;
          }
          break;
        case 'timeout':
          if (isPositiveNumber(value)) spec.timeoutSec = Number(value);
          else {
            this.chk.err(tok, `timeout must be a positive number of seconds, got '${value}'`);
            ok = false;
          }
          break;
        case 'soft_limitation':
        case 'domains_strict': {
          const b = this.chk.bool(tok, key, value);
          if (b === undefined) ok = false;
          else if (key === 'soft_limitation') spec.softLimitation = b;
          else spec.domainsStrict = b;
          break;
        }
        case 'domains': {
          const list = this.chk.commaList(tok, key, value);
          if (list) spec.domains = list.map((d) => d.toLowerCase());
          else ok = false;
          break;
        }
        case 'allowed_countries':
        case 'disallowed_countries': {
          const list = this.chk.commaList(tok, key, value);
          const bad = list?.find((cc) => !/^[A-Za-z]{2}$/.test(cc));
          if (!list || bad !== undefined) {
            if (list) this.chk.err(tok, `bad country code '${bad}' in ${key} (expected ISO 3166-1 alpha-2)`);
            ok = false;
          } else if (key === 'allowed_countries') spec.allowedCountries = list.map((cc) => cc.toUpperCase());
          else spec.disallowedCountries = list.map((cc) => cc.toUpperCase());
          break;
        }
        case 'bearer':
          if (value === '') {
            this.chk.err(tok, 'bearer= needs a value');
            ok = false;
          } else spec.bearer = value;
          break;
        default:
          spec.extra[key] = value;
      }
    }
    return ok ? spec : undefined;
  }

  /** AUTH-SPEC §3.1: ip, name and proto required; duplicates kept; `query:<param>` allowed. */
  private sessionKeys(tok: Token, value: string, bareQueryKeys: boolean): SessionKey[] | undefined {
    const list = this.chk.commaList(tok, 'session_keys', value);
    if (!list) return undefined;
    const keys: SessionKey[] = [];
    let ok = true;
    for (const k of list) {
      if (k === 'ip' || k === 'name' || k === 'proto' || k === 'token') keys.push(k);
      else if (/^query:[A-Za-z0-9._~-]+$/.test(k)) keys.push(k as `query:${string}`);
      else if (bareQueryKeys && /^[A-Za-z0-9._~-]+$/.test(k)) keys.push(`query:${k}`);
      else {
        this.chk.err(tok, `unknown session key '${k}' (allowed: ip, name, proto, token, query:<param>)`);
        ok = false;
      }
    }
    if (!ok) return undefined;
    const missing = (['ip', 'name', 'proto'] as const).filter((r) => !keys.includes(r));
    if (missing.length > 0) {
      this.chk.err(tok, `session_keys must include ip, name and proto (missing ${missing.join(', ')})`);
      return undefined;
    }
    return keys;
  }

  /** `auth_backend NAME { … }` (AUTH-SPEC §6.1); stored in `backends` only when its name is valid and new. */
  backendBlock(s: Stmt, backends: Map<string, AuthBackendConfig>): void {
    const usage = 'auth_backend NAME { allow|deny token|ip|country|ua VALUE…; backend URL; allow default; }';
    if (!this.chk.arity(s, 1, 1, usage) || !this.chk.needBlock(s, usage)) return;
    const nameTok = s.words[1] as Token;
    let ok = true;
    if (!IDENT.test(nameTok.value)) {
      this.chk.err(nameTok, `bad auth_backend name '${nameTok.value}' (letters, digits, ".", "-", "_")`);
      ok = false;
    }
    const prev = backends.get(nameTok.value);
    if (prev) {
      this.chk.err(
        nameTok,
        `duplicate auth_backend '${nameTok.value}' (first defined at ${prev.loc.line}:${prev.loc.col})`,
      );
      ok = false;
    }
    const ab: AuthBackendConfig = {
      name: nameTok.value,
      rules: [],
      backends: [],
      allowDefault: false,
      loc: this.chk.loc(s.words[0] as Token),
    };
    let allowDefaultTok: Token | undefined;
    for (const st of s.block.stmts) {
      if (st.broken) continue;
      const head = st.words[0] as Token;
      const args = st.words.slice(1);
      const v = head.quoted ? '' : head.value;
      if (v === 'allow' || v === 'deny') {
        if (!this.chk.noBlock(st)) continue;
        const kindTok = args[0];
        if (v === 'allow' && kindTok?.value === 'default' && !kindTok.quoted) {
          if (this.chk.arity(st, 1, 1, 'allow default')) {
            if (allowDefaultTok) {
              this.chk.err(
                head,
                `duplicate 'allow default' (already at ${allowDefaultTok.line}:${allowDefaultTok.col})`,
              );
            }
            allowDefaultTok = head;
            ab.allowDefault = true;
          }
          continue;
        }
        if (kindTok !== undefined && !['token', 'ip', 'country', 'ua'].includes(kindTok.value)) {
          const extra =
            v === 'deny' && kindTok.value === 'default'
              ? " ('deny default' is implied without 'allow default')"
              : '';
          this.chk.err(
            kindTok,
            `unknown rule kind '${kindTok.value}' (expected token, ip, country or ua)${extra}`,
          );
          continue;
        }
        if (!this.chk.arity(st, 2, Infinity, `${v} token|ip|country|ua VALUE…`)) continue;
        const kind = (kindTok as Token).value as RuleKind;
        const values: string[] = [];
        for (const a of args.slice(1)) {
          if (kind === 'ip') {
            const ip = normalizeIpOrCidr(a.value, true);
            if (ip === undefined) this.chk.err(a, `bad IP address or CIDR '${a.value}'`);
            else values.push(ip);
          } else if (kind === 'country') {
            if (/^[A-Za-z]{2}$/.test(a.value)) values.push(a.value.toUpperCase());
            else this.chk.err(a, `bad country code '${a.value}' (expected ISO 3166-1 alpha-2, e.g. US)`);
          } else {
            values.push(a.value);
          }
        }
        if (values.length === args.length - 1) {
          ab.rules.push({ action: v, kind, values, loc: this.chk.loc(head) });
        }
      } else if (v === 'backend') {
        if (!this.chk.noBlock(st) || !this.chk.arity(st, 1, Infinity, 'backend URL [key=value…]')) continue;
        const spec = this.spec(head, args, 'backend');
        if (spec) ab.backends.push(spec);
      } else {
        this.chk.unknown('auth_backend', head);
      }
    }
    if (ok) backends.set(ab.name, ab);
  }

  /** References may point forward, so they are checked once everything is read. */
  checkReferences(backends: Map<string, AuthBackendConfig>): void {
    for (const { name, tok } of this.refs) {
      if (!backends.has(name)) {
        const guess = suggest(name, [...backends.keys()]);
        this.chk.err(
          tok,
          `unknown auth_backend '${name}' in 'auth://${name}'${guess ? `; did you mean '${guess}'?` : ''}`,
        );
      }
    }
  }
}
