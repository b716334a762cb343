/**
 * Stage 2 of the config parser: walks the statement tree and builds the typed Config. This
 * file reads the top level (listeners, stores, global switches and defaults) and hands
 * stream/template blocks and auth directives to the modules that own them.
 */
import { isIP } from 'node:net';
import { dirname, resolve } from 'node:path';
import { AuthSpecs, type AuthSeen } from './auth-spec.js';
import { DEFAULT_LIMITS, isLimitName, LIMITS, type LimitName, type Limits } from '../core/limits.js';
import { isPositiveInteger, isPositiveNumber, normalizeIpOrCidr, type Checker } from './check.js';
import type { Token } from './lexer.js';
import { StreamBlocks } from './stream-block.js';
import type { Stmt } from './syntax.js';
import { EMBEDDED_CONFIG_FILE, type Config, type FileRoots, type Listen } from './types.js';

export const DEFAULT_HISTORY = 'sqlite://data/history.db';
export const DEFAULT_HTTP_SESSION_TIMEOUT = 60;
export const DEFAULT_AUTH_DURATION = 180;
/** AUTH-SPEC §9.2 (R15): the port of a `mysql;` written without one. */
export const DEFAULT_MYSQL_PORT = 14406;

/** A config with every default and nothing configured; `base` is where relative paths resolve. */
export function defaultConfig(source: string, base: string): Config {
  return {
    source,
    history: DEFAULT_HISTORY,
    noAutoToken: false,
    adminViewDisabled: false,
    authBackends: new Map(),
    streams: [],
    templates: [],
    trustedProxies: [],
    httpSessionTimeout: DEFAULT_HTTP_SESSION_TIMEOUT,
    defaultAuthDuration: DEFAULT_AUTH_DURATION,
    limits: DEFAULT_LIMITS,
    metricsPublic: false,
    files: { roots: [base], base },
  };
}

/** Builds the Config of one file; every problem goes to `chk`, and the result means nothing if there was one. */
export function buildConfig(stmts: Stmt[], chk: Checker): Config {
  return new ConfigBuilder(chk).build(stmts);
}

function isWord(s: Stmt, word: string): boolean {
  const head = s.words[0];
  return head !== undefined && !head.quoted && head.value === word;
}

class ConfigBuilder {
  private readonly config: Config;
  private readonly auth: AuthSpecs;
  private readonly streams: StreamBlocks;
  private readonly seenGlobal = new Map<string, Token>();
  /** Where `mysql` was written, to point at it when edit_auth is missing. */
  private mysqlAt: Token | undefined;

  constructor(private readonly chk: Checker) {
    // The embedded config has no file; its relative paths mean what they mean to the shell.
    const base = chk.file === EMBEDDED_CONFIG_FILE ? process.cwd() : dirname(resolve(chk.file));
    this.config = defaultConfig(chk.file, base);
    this.auth = new AuthSpecs(chk);
    this.streams = new StreamBlocks(chk, this.auth, this.config);
  }

  private once(key: string, head: Token): boolean {
    const prev = this.seenGlobal.get(key);
    if (prev) {
      this.chk.err(head, `duplicate '${head.value}' (already set at ${prev.line}:${prev.col})`);
      return false;
    }
    this.seenGlobal.set(key, head);
    return true;
  }

  build(stmts: Stmt[]): Config {
    const authSeen: AuthSeen = {};
    // File roots first: a stream's `file://` input is judged against them wherever they are written.
    const roots = stmts.filter((s) => !s.broken && isWord(s, 'file_root'));
    if (roots.length > 0) this.config.files = this.fileRoots(roots);
    for (const s of stmts) if (!s.broken && !isWord(s, 'file_root')) this.directive(s, authSeen);
    this.auth.checkReferences(this.config.authBackends);
    this.streams.checkReferences();
    if (this.mysqlAt && !this.config.editAuth) {
      this.chk.err(
        this.mysqlAt,
        "'mysql' needs 'edit_auth USER PASSWORD;': the SQL endpoint logs in with that account",
      );
    }
    return this.config;
  }

  private directive(s: Stmt, authSeen: AuthSeen): void {
    const head = s.words[0] as Token;
    const args = s.words.slice(1);
    const c = this.config;
    switch (head.quoted ? '' : head.value) {
      case 'mysql': {
        // AUTH-SPEC §9.2: the directive turns the SQL endpoint on; `mysql;` alone takes the
        // default port. Without the directive there is no listener (an open port needs an
        // account, and the embedded config has none).
        if (!this.chk.noBlock(s) || !this.chk.arity(s, 0, 1, 'mysql [PORT | HOST:PORT]')) return;
        const listen = args[0] ? this.listen(args[0]) : { port: DEFAULT_MYSQL_PORT };
        if (listen && this.once('mysql', head)) {
          c.mysql = listen;
          this.mysqlAt = head;
        }
        return;
      }
      case 'http':
      case 'rtmp':
      case 'rtsp': {
        const key = head.value as 'http' | 'rtmp' | 'rtsp';
        if (!this.chk.noBlock(s) || !this.chk.arity(s, 1, 1, `${key} PORT | ${key} HOST:PORT`)) return;
        const listen = this.listen(args[0] as Token);
        if (listen && this.once(key, head)) c[key] = listen;
        return;
      }
      case 'edit_auth':
        if (!this.chk.noBlock(s) || !this.chk.arity(s, 2, 2, 'edit_auth USER PASSWORD')) return;
        if (this.once('edit_auth', head)) {
          c.editAuth = { user: args[0]?.value ?? '', password: args[1]?.value ?? '' };
        }
        return;
      case 'session_store': {
        if (!this.chk.noBlock(s) || !this.chk.arity(s, 1, 1, 'session_store redis://HOST:PORT')) return;
        const a = args[0] as Token;
        if (!/^rediss?:\/\/./i.test(a.value)) {
          this.chk.err(a, `session_store must be a redis:// URL, got '${a.value}'`);
          return;
        }
        if (this.once('session_store', head)) c.sessionStore = a.value;
        return;
      }
      case 'history': {
        if (!this.chk.noBlock(s) || !this.chk.arity(s, 1, 1, 'history sqlite://PATH')) return;
        const a = args[0] as Token;
        if (!/^sqlite:\/\/./i.test(a.value)) {
          this.chk.err(a, `history must be a sqlite://PATH URL, got '${a.value}'`);
          return;
        }
        if (this.once('history', head)) c.history = a.value;
        return;
      }
      case 'no_auto_token':
        if (
          this.chk.noBlock(s) &&
          this.chk.arity(s, 0, 0, 'no_auto_token') &&
          this.once('no_auto_token', head)
        ) {
          c.noAutoToken = true;
        }
        return;
      case 'admin_view_disabled':
        if (
          this.chk.noBlock(s) &&
          this.chk.arity(s, 0, 0, 'admin_view_disabled') &&
          this.once('admin_view_disabled', head)
        ) {
          c.adminViewDisabled = true;
        }
        return;
      case 'on_play':
      case 'auth':
      case 'on_publish':
        this.auth.directive(s, c, authSeen);
        return;
      case 'trusted_proxies': {
        if (!this.chk.noBlock(s) || !this.chk.arity(s, 1, Infinity, 'trusted_proxies IP_OR_CIDR…')) return;
        for (const a of args) {
          const ip = normalizeIpOrCidr(a.value, false);
          if (ip === undefined) this.chk.err(a, `bad IP address or CIDR '${a.value}'`);
          else c.trustedProxies.push(ip);
        }
        return;
      }
      case 'http_session_timeout':
      case 'default_auth_duration': {
        if (!this.chk.noBlock(s) || !this.chk.arity(s, 1, 1, `${head.value} SECONDS`)) return;
        const a = args[0] as Token;
        if (!isPositiveNumber(a.value)) {
          this.chk.err(a, `'${head.value}' must be a positive number of seconds, got '${a.value}'`);
          return;
        }
        if (!this.once(head.value, head)) return;
        if (head.value === 'http_session_timeout') c.httpSessionTimeout = Number(a.value);
        else c.defaultAuthDuration = Number(a.value);
        return;
      }
      case 'auth_backend':
        this.auth.backendBlock(s, c.authBackends);
        return;
      case 'metrics_public':
        if (
          this.chk.noBlock(s) &&
          this.chk.arity(s, 0, 0, 'metrics_public') &&
          this.once('metrics_public', head)
        ) {
          c.metricsPublic = true;
        }
        return;
      case 'events':
        if (
          !this.chk.noBlock(s) ||
          !this.chk.arity(s, 2, 4, 'events URL secret=S [max_queue=N] [max_batch=N]')
        ) {
          return;
        }
        this.events(args, head);
        return;
      case 'limits':
        if (
          !this.chk.needBlock(s, 'limits { max_connections 2000; … }') ||
          !this.chk.arity(s, 0, 0, 'limits { … }')
        ) {
          return;
        }
        if (this.once('limits', head)) c.limits = this.limits(s.block.stmts);
        return;
      case 'workers': {
        if (!this.chk.noBlock(s) || !this.chk.arity(s, 1, 1, 'workers N | workers auto')) return;
        const a = args[0] as Token;
        // More processes than this is a typo, not a machine: each worker is a whole server.
        if (a.value !== 'auto' && !(isPositiveInteger(a.value) && Number(a.value) <= 256)) {
          this.chk.err(a, `'workers' must be a whole number from 1 to 256 or 'auto', got '${a.value}'`);
          return;
        }
        if (this.once('workers', head)) c.workers = a.value === 'auto' ? 'auto' : Number(a.value);
        return;
      }
      case 'template':
      case 'stream':
        this.streams.read(s, head.value as 'stream' | 'template');
        return;
      default:
        this.chk.unknown('global', head);
    }
  }

  /** `events URL secret=S [max_queue=N] [max_batch=N];` (README "Events"). */
  private events(args: Token[], head: Token): void {
    const url = args[0] as Token;
    if (!/^https?:\/\/./i.test(url.value)) {
      this.chk.err(url, `events needs an http:// or https:// receiver URL, got '${url.value}'`);
      return;
    }
    const out = { url: url.value, secret: '', maxQueue: 10_000, maxBatch: 100 };
    for (const a of args.slice(1)) {
      const eq = a.value.indexOf('=');
      const key = eq > 0 ? a.value.slice(0, eq) : a.value;
      const value = eq > 0 ? a.value.slice(eq + 1) : '';
      if (key === 'secret' && value !== '') out.secret = value;
      else if ((key === 'max_queue' || key === 'max_batch') && isPositiveInteger(value)) {
        out[key === 'max_queue' ? 'maxQueue' : 'maxBatch'] = Number(value);
      } else {
        this.chk.err(a, `events option must be secret=S, max_queue=N or max_batch=N, got '${a.value}'`);
        return;
      }
    }
    if (out.secret === '') {
      this.chk.err(head, 'events needs secret=S: receivers verify every batch with it');
      return;
    }
    if (this.once('events', head)) this.config.events = out;
  }

  /** Every `file_root PATH;`, relative ones against the config file's directory. */
  private fileRoots(stmts: Stmt[]): FileRoots {
    const base = this.config.files.base;
    const roots: string[] = [];
    for (const s of stmts) {
      if (!this.chk.noBlock(s) || !this.chk.arity(s, 1, 1, 'file_root PATH')) continue;
      const a = s.words[1] as Token;
      if (a.value === '' || /[\x00-\x1f\x7f]/.test(a.value)) {
        this.chk.err(a, `file_root must be a directory path, got '${a.value}'`);
        continue;
      }
      roots.push(resolve(base, a.value));
    }
    return { roots, base };
  }

  /** `limits { NAME VALUE; }`: counts and bytes are positive integers, seconds positive numbers. */
  private limits(stmts: Stmt[]): Limits {
    const out: Record<LimitName, number> = { ...DEFAULT_LIMITS };
    const seen = new Map<string, Token>();
    for (const s of stmts) {
      if (s.broken) continue;
      const head = s.words[0] as Token;
      const name = head.quoted ? '' : head.value;
      if (!isLimitName(name)) {
        this.chk.unknown('limits', head);
        continue;
      }
      const unit = LIMITS[name].unit;
      const usage = `${name} ${unit === 'seconds' ? 'SECONDS' : 'N'}`;
      if (!this.chk.noBlock(s) || !this.chk.arity(s, 1, 1, usage)) continue;
      const a = s.words[1] as Token;
      const ok = unit === 'seconds' ? isPositiveNumber(a.value) : isPositiveInteger(a.value);
      if (!ok) {
        const what =
          unit === 'seconds' ? 'a positive number of seconds' : `a positive whole number (${unit})`;
        this.chk.err(a, `'${name}' must be ${what}, got '${a.value}'`);
        continue;
      }
      const prev = seen.get(name);
      if (prev) {
        this.chk.err(head, `duplicate '${name}' (already set at ${prev.line}:${prev.col})`);
        continue;
      }
      seen.set(name, head);
      out[name] = Number(a.value);
    }
    return out;
  }

  private listen(a: Token): Listen | undefined {
    const v = a.value;
    let host: string | undefined;
    let port: string;
    const v6 = /^\[([^\]]*)\]:([^:]*)$/.exec(v);
    if (/^\d+$/.test(v)) {
      port = v;
    } else if (v6) {
      host = v6[1] ?? '';
      port = v6[2] ?? '';
      if (isIP(host) !== 6) {
        this.chk.err(a, `bad IPv6 address '${host}' in '${v}'`);
        return undefined;
      }
    } else if ((v.match(/:/g) ?? []).length === 1) {
      const i = v.indexOf(':');
      host = v.slice(0, i);
      port = v.slice(i + 1);
      if (isIP(host) !== 4 && !/^[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?$/.test(host)) {
        this.chk.err(a, `bad host '${host}' in '${v}'`);
        return undefined;
      }
    } else if (v.includes(':')) {
      this.chk.err(a, `IPv6 listen addresses need brackets, e.g. [::1]:8080; got '${v}'`);
      return undefined;
    } else {
      this.chk.err(a, `bad port '${v}' (expected PORT or HOST:PORT, port 0-65535)`);
      return undefined;
    }
    // Port 0 lets the OS pick a free port, which tests use to avoid collisions.
    if (!/^\d{1,5}$/.test(port) || Number(port) > 65535) {
      this.chk.err(a, `bad port '${port}' in '${v}' (expected 0-65535)`);
      return undefined;
    }
    return host === undefined ? { port: Number(port) } : { host, port: Number(port) };
  }
}
