/**
 * Parser and validator for the Flussonic-style config file (SPEC §2, AUTH-SPEC §8.3).
 *
 * Hand-written: Flussonic's config syntax has no grammar published as a library, and the
 * errors matter more than the happy path — `check-config` and start-up must point at
 * `FILE:LINE:COL` for every problem in one pass, so the parser recovers after each error
 * instead of stopping. Two stages: a generic statement/block tree (syntax), then a
 * per-context walk that builds the typed Config (meaning). Pure: text in, value out.
 */
import { isIP } from 'node:net';
import { DEFAULT_SESSION_KEYS, type SessionKey } from '../core/session-keys.js';
import { tokenize } from './lexer.js';
import type { Token } from './lexer.js';
import type {
  AuthBackendConfig,
  AuthSpec,
  Config,
  ConfigError,
  Listen,
  PlaybackHeaders,
  ProtocolSwitch,
  ProtocolsConfig,
  RuleKind,
  SourceLoc,
  StreamConfig,
} from './types.js';

export type { ConfigError } from './types.js';
export { effectiveStreamConfig, resolveStreamConfig } from './resolve.js';

export type ParseResult = { config: Config } | { errors: ConfigError[] };

export const DEFAULT_HISTORY = 'sqlite://data/history.db';
export const DEFAULT_HTTP_SESSION_TIMEOUT = 60;
export const DEFAULT_AUTH_DURATION = 180;
export const DEFAULT_BACKEND_TIMEOUT_SEC = 3;
export const RESERVED_FIRST_SEGMENTS: readonly string[] = ['api', 'admin', 'metrics', 'health', 'static'];
export const INPUT_SCHEMES: readonly string[] = [
  'publish',
  'fake',
  'file',
  'rtmp',
  'rtsp',
  'rtsp2',
  'udp',
  'tshttp',
  'http',
  'https',
  'hls',
  'srt',
];
export const PROTOCOL_SWITCHES: readonly ProtocolSwitch[] = [
  'hls',
  'dash',
  'player',
  'mss',
  'rtmp',
  'rtsp',
  'm4f',
  'm4s',
  'mseld',
  'tshttp',
  'webrtc',
  'srt',
  'shoutcast',
  'mp4',
  'jpeg',
  'api',
];

/** A runaway input (random bytes) would otherwise print thousands of lines nobody reads. */
const MAX_ERRORS = 100;
/** The grammar needs three levels (stream → protocols → switch); more is a mistake. */
const MAX_DEPTH = 8;

export function formatConfigError(e: ConfigError): string {
  return `${e.file}:${e.line}:${e.col}: ${e.message}`;
}

// ---------------------------------------------------------------------------------------
// Stage 1: statements and blocks.

interface Stmt {
  /** Non-empty; words[0] is the directive name. */
  words: Token[];
  block?: Block;
  /** Holds an unterminated string; already reported, so its meaning is not checked. */
  broken: boolean;
}

interface Block {
  open: Token;
  stmts: Stmt[];
}

type Ctx = 'global' | 'auth_backend' | 'stream' | 'template' | 'protocols' | 'playback_headers' | 'other';

const STREAM_DIRECTIVES = [
  'input',
  'url',
  'on_play',
  'on_publish',
  'auth',
  'password',
  'protocols',
  'playback_headers',
  'segment_duration',
];

const DIRECTIVES: Record<Exclude<Ctx, 'other'>, readonly string[]> = {
  global: [
    'http',
    'rtmp',
    'rtsp',
    'mysql',
    'edit_auth',
    'session_store',
    'history',
    'no_auto_token',
    'admin_view_disabled',
    'on_play',
    'on_publish',
    'auth',
    'trusted_proxies',
    'http_session_timeout',
    'default_auth_duration',
    'auth_backend',
    'template',
    'stream',
  ],
  auth_backend: ['allow', 'deny', 'backend'],
  stream: [...STREAM_DIRECTIVES, 'template'],
  template: [...STREAM_DIRECTIVES, 'prefix'],
  protocols: ['whitelist', ...PROTOCOL_SWITCHES],
  playback_headers: ['protocols', 'playback', 'header'],
};

const CTX_LABEL: Record<Exclude<Ctx, 'other'>, string> = {
  global: 'at the top level',
  auth_backend: 'inside auth_backend',
  stream: 'inside a stream',
  template: 'inside a template',
  protocols: 'inside protocols',
  playback_headers: 'inside playback_headers',
};

function childCtx(parent: Ctx, head: string): Ctx {
  if (parent === 'global') {
    if (head === 'stream') return 'stream';
    if (head === 'template') return 'template';
    if (head === 'auth_backend') return 'auth_backend';
  }
  if (parent === 'stream' || parent === 'template') {
    if (head === 'protocols') return 'protocols';
    if (head === 'playback_headers') return 'playback_headers';
  }
  return 'other';
}

function isKeyword(ctx: Ctx, t: Token): boolean {
  return ctx !== 'other' && !t.quoted && DIRECTIVES[ctx].includes(t.value);
}

class SyntaxParser {
  private pos = 0;

  constructor(
    private readonly tokens: Token[],
    private readonly report: (line: number, col: number, message: string) => void,
  ) {}

  parseFile(): Stmt[] {
    return this.parseBlock('global', 0);
  }

  private peek(offset = 0): Token | undefined {
    return this.tokens[this.pos + offset];
  }

  private startsLine(t: Token): boolean {
    const prev = this.tokens[this.pos - 1];
    return prev === undefined || prev.endLine < t.line;
  }

  /**
   * A forgotten `}` would otherwise swallow every later stream into the open block and
   * produce one confusing error per line; a top-level-only directive at the start of a
   * line inside a block is taken as the point where the block should have closed.
   */
  private startsTopLevel(t: Token): boolean {
    if (t.kind !== 'word' || t.quoted || !this.startsLine(t)) return false;
    if (t.value === 'stream' || t.value === 'auth_backend') return true;
    return t.value === 'template' && this.peek(1)?.kind === 'word' && this.peek(2)?.kind === 'lbrace';
  }

  private parseBlock(ctx: Ctx, depth: number): Stmt[] {
    const stmts: Stmt[] = [];
    for (;;) {
      const t = this.peek();
      if (t === undefined) return stmts;
      if (t.kind === 'rbrace') {
        if (depth > 0) return stmts;
        this.report(t.line, t.col, "unexpected '}' with no open block");
        this.pos++;
      } else if (t.kind === 'semi') {
        // `};` and `;;` are harmless and common in hand-edited files.
        this.pos++;
      } else if (t.kind === 'lbrace') {
        this.report(t.line, t.col, "unexpected '{': a block must follow a directive name");
        this.skipBlock();
      } else {
        if (depth > 0 && this.startsTopLevel(t)) return stmts;
        stmts.push(this.parseStmt(ctx, depth));
      }
    }
  }

  /** Skips a `{ … }` without recursing, so hostile nesting cannot exhaust the stack. */
  private skipBlock(): void {
    let level = 0;
    while (this.pos < this.tokens.length) {
      const k = this.tokens[this.pos++]?.kind;
      if (k === 'lbrace') level++;
      else if (k === 'rbrace' && --level === 0) return;
    }
  }

  private missingSemi(last: Token): void {
    // The lexer already reported the broken string that ate the `;`.
    if (!last.broken) this.report(last.endLine, last.endCol, `missing ';' after '${last.value}'`);
  }

  private parseStmt(ctx: Ctx, depth: number): Stmt {
    const first = this.peek();
    if (first === undefined || first.kind !== 'word') throw new Error('parseStmt at a non-word');
    const words: Token[] = [first];
    this.pos++;
    for (;;) {
      const t = this.peek();
      const last = words[words.length - 1] ?? first;
      if (t === undefined) {
        this.missingSemi(last);
        return { words, broken: words.some((w) => w.broken) };
      }
      if (t.kind === 'semi') {
        this.pos++;
        return { words, broken: words.some((w) => w.broken) };
      }
      if (t.kind === 'rbrace') {
        this.missingSemi(last);
        return { words, broken: words.some((w) => w.broken) };
      }
      if (t.kind === 'lbrace') {
        if (depth >= MAX_DEPTH) {
          this.report(t.line, t.col, `blocks nested more than ${MAX_DEPTH} deep`);
          this.skipBlock();
          return { words, broken: true };
        }
        this.pos++;
        const inner = childCtx(ctx, first.value);
        const stmts = this.parseBlock(inner, depth + 1);
        if (this.peek()?.kind === 'rbrace') this.pos++;
        else this.report(t.line, t.col, `unterminated block: '{' of '${first.value}' is never closed`);
        return { words, block: { open: t, stmts }, broken: words.some((w) => w.broken) };
      }
      // A directive keyword at the start of a new line almost always means the previous
      // line lost its `;`; splitting here keeps the next directive's own checks.
      if (t.line > last.endLine && (isKeyword(ctx, t) || (depth > 0 && this.startsTopLevel(t)))) {
        this.missingSemi(last);
        return { words, broken: words.some((w) => w.broken) };
      }
      words.push(t);
      this.pos++;
    }
  }
}

// ---------------------------------------------------------------------------------------
// Stage 2: meaning.

const NAME_SEGMENT = /^[A-Za-z0-9._-]+$/;
const IDENT = /^[A-Za-z0-9._-]+$/;

/** Why a stream name (or prefix) is refused, or undefined when it is fine. */
export function streamNameProblem(name: string): string | undefined {
  if (name === '') return 'is empty';
  const segments = name.split('/');
  for (const s of segments) {
    if (s === '') return "has an empty segment (no leading, trailing or double '/')";
    if (!NAME_SEGMENT.test(s)) return 'may only contain letters, digits, ".", "-", "_" and "/"';
    if (s === '.' || s === '..') return "may not contain '.' or '..' segments";
  }
  const head = segments[0] ?? '';
  if (RESERVED_FIRST_SEGMENTS.includes(head)) return `may not start with '${head}' (reserved)`;
  return undefined;
}

function editDistance(a: string, b: string): number {
  // Optimal string alignment, so a swapped pair of letters ("inptu") costs 1.
  const d: number[][] = [];
  for (let i = 0; i <= a.length; i++) {
    d.push([]);
    for (let j = 0; j <= b.length; j++) {
      const row = d[i] as number[];
      if (i === 0 || j === 0) {
        row.push(i + j);
        continue;
      }
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let v = Math.min((d[i - 1]?.[j] ?? 0) + 1, (row[j - 1] ?? 0) + 1, (d[i - 1]?.[j - 1] ?? 0) + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) {
        v = Math.min(v, (d[i - 2]?.[j - 2] ?? 0) + 1);
      }
      row.push(v);
    }
  }
  return d[a.length]?.[b.length] ?? Infinity;
}

function suggest(word: string, candidates: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestD = word.length >= 5 ? 2 : 1;
  for (const c of candidates) {
    const dist = editDistance(word.toLowerCase(), c);
    if (dist <= bestD && (best === undefined || dist < bestD)) {
      best = c;
      bestD = dist;
    }
  }
  return best;
}

function isPositiveNumber(s: string): boolean {
  return /^(\d+(\.\d*)?|\.\d+)$/.test(s) && Number(s) > 0 && Number.isFinite(Number(s));
}

function isPositiveInteger(s: string): boolean {
  return /^[1-9]\d*$/.test(s) && Number.isSafeInteger(Number(s));
}

/**
 * Validates an IP or CIDR and returns it normalised, expanding the abbreviated prefix
 * form of AUTH-SPEC §6.4 (`172.16/24` → `172.16.0.0/24`) so matchers see one shape.
 */
export function normalizeIpOrCidr(s: string, allowAbbreviated: boolean): string | undefined {
  const parts = s.split('/');
  if (parts.length > 2) return undefined;
  let addr = parts[0] ?? '';
  const prefix = parts[1];
  let family = isIP(addr);
  if (family === 0 && allowAbbreviated && prefix !== undefined && /^\d{1,3}(\.\d{1,3}){0,2}$/.test(addr)) {
    const octets = addr.split('.');
    if (octets.some((o) => Number(o) > 255)) return undefined;
    while (octets.length < 4) octets.push('0');
    addr = octets.join('.');
    family = 4;
  }
  if (family === 0) return undefined;
  if (prefix === undefined) return addr;
  if (!/^\d{1,3}$/.test(prefix) || Number(prefix) > (family === 4 ? 32 : 128)) return undefined;
  return `${addr}/${Number(prefix)}`;
}

type Err = (t: Token | SourceLoc, message: string) => void;

/** Where each hook directive of one scope was first written, to catch repeats. */
interface AuthSeen {
  onPlay?: Token;
  auth?: Token;
  onPublish?: Token;
}

class Builder {
  readonly errors: ConfigError[] = [];
  private readonly config: Config;
  private readonly authRefs: { name: string; tok: Token }[] = [];
  private readonly templateRefs: { stream: StreamConfig; tok: Token }[] = [];
  private readonly seenGlobal = new Map<string, Token>();
  private readonly streamNames = new Map<string, StreamConfig>();
  private readonly templateNames = new Map<string, StreamConfig>();
  /** Token of each stream/template name, for messages about the block as a whole. */
  private readonly nameTok = new Map<StreamConfig, Token>();
  private readonly inputWritten = new Set<StreamConfig>();

  constructor(private readonly file: string) {
    this.config = {
      source: file,
      history: DEFAULT_HISTORY,
      noAutoToken: false,
      adminViewDisabled: false,
      authBackends: new Map(),
      streams: [],
      templates: [],
      trustedProxies: [],
      httpSessionTimeout: DEFAULT_HTTP_SESSION_TIMEOUT,
      defaultAuthDuration: DEFAULT_AUTH_DURATION,
    };
  }

  readonly err: Err = (t, message) => {
    this.errors.push({ file: this.file, line: t.line, col: t.col, message });
  };

  private loc(t: Token): SourceLoc {
    return { file: this.file, line: t.line, col: t.col };
  }

  /** Checks argument count; reports at the directive (too few) or first extra word. */
  private arity(s: Stmt, min: number, max: number, usage: string): boolean {
    const head = s.words[0] as Token;
    const n = s.words.length - 1;
    if (n < min) {
      this.err(head, `'${head.value}' needs ${describeCount(min, max)} (usage: ${usage})`);
      return false;
    }
    if (n > max) {
      const extra = s.words[max + 1] as Token;
      this.err(extra, `'${head.value}' takes ${describeCount(min, max)}, got ${n} (usage: ${usage})`);
      return false;
    }
    return true;
  }

  private noBlock(s: Stmt): boolean {
    if (s.block === undefined) return true;
    this.err(s.block.open, `'${s.words[0]?.value ?? ''}' does not take a block`);
    return false;
  }

  private needBlock(s: Stmt, usage: string): s is Stmt & { block: Block } {
    if (s.block !== undefined) return true;
    this.err(s.words[0] as Token, `'${s.words[0]?.value ?? ''}' needs a block (usage: ${usage})`);
    return false;
  }

  private unknown(ctx: Exclude<Ctx, 'other'>, head: Token): void {
    if (head.quoted) {
      this.err(head, `expected a directive name, got a quoted string "${head.value}"`);
      return;
    }
    const elsewhere = (Object.keys(DIRECTIVES) as Exclude<Ctx, 'other'>[]).filter(
      (c) => c !== ctx && DIRECTIVES[c].includes(head.value),
    );
    if (elsewhere.length > 0) {
      const where = elsewhere.map((c) => CTX_LABEL[c]).join(' or ');
      this.err(head, `'${head.value}' is not allowed ${CTX_LABEL[ctx]} (only ${where})`);
      return;
    }
    const guess = suggest(head.value, DIRECTIVES[ctx]);
    const shown = head.value.length > 40 ? `${head.value.slice(0, 40)}…` : head.value;
    this.err(head, `unknown directive '${shown}'${guess ? `; did you mean '${guess}'?` : ''}`);
  }

  private once(key: string, head: Token): boolean {
    const prev = this.seenGlobal.get(key);
    if (prev) {
      this.err(head, `duplicate '${head.value}' (already set at ${prev.line}:${prev.col})`);
      return false;
    }
    this.seenGlobal.set(key, head);
    return true;
  }

  build(stmts: Stmt[]): Config {
    const authSeen: AuthSeen = {};
    for (const s of stmts) if (!s.broken) this.global(s, authSeen);
    this.resolveReferences();
    return this.config;
  }

  private global(s: Stmt, authSeen: AuthSeen): void {
    const head = s.words[0] as Token;
    const args = s.words.slice(1);
    const c = this.config;
    switch (head.quoted ? '' : head.value) {
      case 'http':
      case 'rtmp':
      case 'rtsp':
      case 'mysql': {
        const key = head.value as 'http' | 'rtmp' | 'rtsp' | 'mysql';
        if (!this.noBlock(s) || !this.arity(s, 1, 1, `${key} PORT | ${key} HOST:PORT`)) return;
        const listen = this.listen(args[0] as Token);
        if (listen && this.once(key, head)) c[key] = listen;
        return;
      }
      case 'edit_auth':
        if (!this.noBlock(s) || !this.arity(s, 2, 2, 'edit_auth USER PASSWORD')) return;
        if (this.once('edit_auth', head)) {
          c.editAuth = { user: args[0]?.value ?? '', password: args[1]?.value ?? '' };
        }
        return;
      case 'session_store': {
        if (!this.noBlock(s) || !this.arity(s, 1, 1, 'session_store redis://HOST:PORT')) return;
        const a = args[0] as Token;
        if (!/^rediss?:\/\/./i.test(a.value)) {
          this.err(a, `session_store must be a redis:// URL, got '${a.value}'`);
          return;
        }
        if (this.once('session_store', head)) c.sessionStore = a.value;
        return;
      }
      case 'history': {
        if (!this.noBlock(s) || !this.arity(s, 1, 1, 'history sqlite://PATH')) return;
        const a = args[0] as Token;
        if (!/^sqlite:\/\/./i.test(a.value)) {
          this.err(a, `history must be a sqlite://PATH URL, got '${a.value}'`);
          return;
        }
        if (this.once('history', head)) c.history = a.value;
        return;
      }
      case 'no_auto_token':
        if (this.noBlock(s) && this.arity(s, 0, 0, 'no_auto_token') && this.once('no_auto_token', head)) {
          c.noAutoToken = true;
        }
        return;
      case 'admin_view_disabled':
        if (
          this.noBlock(s) &&
          this.arity(s, 0, 0, 'admin_view_disabled') &&
          this.once('admin_view_disabled', head)
        ) {
          c.adminViewDisabled = true;
        }
        return;
      case 'on_play':
      case 'auth':
      case 'on_publish':
        this.authDirective(s, c, authSeen);
        return;
      case 'trusted_proxies': {
        if (!this.noBlock(s) || !this.arity(s, 1, Infinity, 'trusted_proxies IP_OR_CIDR…')) return;
        for (const a of args) {
          const ip = normalizeIpOrCidr(a.value, false);
          if (ip === undefined) this.err(a, `bad IP address or CIDR '${a.value}'`);
          else c.trustedProxies.push(ip);
        }
        return;
      }
      case 'http_session_timeout':
      case 'default_auth_duration': {
        if (!this.noBlock(s) || !this.arity(s, 1, 1, `${head.value} SECONDS`)) return;
        const a = args[0] as Token;
        if (!isPositiveNumber(a.value)) {
          this.err(a, `'${head.value}' must be a positive number of seconds, got '${a.value}'`);
          return;
        }
        if (!this.once(head.value, head)) return;
        if (head.value === 'http_session_timeout') c.httpSessionTimeout = Number(a.value);
        else c.defaultAuthDuration = Number(a.value);
        return;
      }
      case 'auth_backend':
        this.authBackend(s);
        return;
      case 'template':
      case 'stream':
        this.streamOrTemplate(s, head.value as 'stream' | 'template');
        return;
      default:
        this.unknown('global', head);
    }
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
        this.err(a, `bad IPv6 address '${host}' in '${v}'`);
        return undefined;
      }
    } else if ((v.match(/:/g) ?? []).length === 1) {
      const i = v.indexOf(':');
      host = v.slice(0, i);
      port = v.slice(i + 1);
      if (isIP(host) !== 4 && !/^[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?$/.test(host)) {
        this.err(a, `bad host '${host}' in '${v}'`);
        return undefined;
      }
    } else if (v.includes(':')) {
      this.err(a, `IPv6 listen addresses need brackets, e.g. [::1]:8080; got '${v}'`);
      return undefined;
    } else {
      this.err(a, `bad port '${v}' (expected PORT or HOST:PORT, port 0-65535)`);
      return undefined;
    }
    // Port 0 lets the OS pick a free port, which tests use to avoid collisions.
    if (!/^\d{1,5}$/.test(port) || Number(port) > 65535) {
      this.err(a, `bad port '${port}' in '${v}' (expected 0-65535)`);
      return undefined;
    }
    return host === undefined ? { port: Number(port) } : { host, port: Number(port) };
  }

  /** `on_play`, `on_publish` and legacy `auth`, at top level or in a stream/template. */
  private authDirective(s: Stmt, target: { onPlay?: AuthSpec; onPublish?: AuthSpec }, seen: AuthSeen): void {
    const head = s.words[0] as Token;
    if (!this.noBlock(s) || !this.arity(s, 1, Infinity, `${head.value} URL [key=value…]`)) return;
    const slot = head.value === 'on_publish' ? 'onPublish' : head.value === 'auth' ? 'auth' : 'onPlay';
    const prev = seen[slot];
    if (prev) {
      this.err(head, `duplicate '${head.value}' (already set at ${prev.line}:${prev.col})`);
      return;
    }
    seen[slot] = head;
    // AUTH-SPEC §6.5: `auth` and `on_play` cannot both be set on the same stream.
    const other = slot === 'auth' ? seen.onPlay : slot === 'onPlay' ? seen.auth : undefined;
    if (other) {
      this.err(
        head,
        `'auth' and 'on_play' cannot both be set here (other one at ${other.line}:${other.col})`,
      );
      return;
    }
    const spec = this.authSpec(head, s.words.slice(1), 'hook');
    if (!spec) return;
    if (slot === 'onPublish') {
      target.onPublish = spec;
    } else {
      if (slot === 'auth') spec.legacyAuth = true;
      target.onPlay = spec;
    }
  }

  /** Parses `URL key=value…`; `hook` for on_play/on_publish, `backend` inside auth_backend. */
  private authSpec(head: Token, args: Token[], role: 'hook' | 'backend'): AuthSpec | undefined {
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
        this.err(urlTok, `bad URL '${url}'`);
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
        this.err(urlTok, `bad auth_backend reference '${url}' (expected auth://NAME)`);
        ok = false;
      } else {
        this.authRefs.push({ name, tok: urlTok });
      }
    } else {
      const what = scheme === undefined ? `'${url}'` : `scheme '${scheme}://'`;
      this.err(
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
      loc: this.loc(head),
    };
    const opts: { key: string; value: string; tok: Token }[] = [];
    const seenKeys = new Map<string, Token>();
    for (const t of args.slice(1)) {
      const m = /^([A-Za-z_][A-Za-z0-9_-]*)=([\s\S]*)$/.exec(t.value);
      if (!m) {
        this.err(t, `expected an option key=value after the URL, got '${t.value}'`);
        ok = false;
        continue;
      }
      const key = m[1] ?? '';
      const prev = seenKeys.get(key);
      if (prev) {
        this.err(t, `duplicate option '${key}' (already at ${prev.line}:${prev.col})`);
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
      const b = this.bool(bareQuery.tok, bareQuery.key, bareQuery.value);
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
            this.err(tok, `max_sessions must be a positive integer, got '${value}'`);
            ok = false;
          }
          break;
        case 'timeout':
          if (isPositiveNumber(value)) spec.timeoutSec = Number(value);
          else {
            this.err(tok, `timeout must be a positive number of seconds, got '${value}'`);
            ok = false;
          }
          break;
        case 'soft_limitation':
        case 'domains_strict': {
          const b = this.bool(tok, key, value);
          if (b === undefined) ok = false;
          else if (key === 'soft_limitation') spec.softLimitation = b;
          else spec.domainsStrict = b;
          break;
        }
        case 'domains': {
          const list = this.commaList(tok, key, value);
          if (list) spec.domains = list.map((d) => d.toLowerCase());
          else ok = false;
          break;
        }
        case 'allowed_countries':
        case 'disallowed_countries': {
          const list = this.commaList(tok, key, value);
          const bad = list?.find((cc) => !/^[A-Za-z]{2}$/.test(cc));
          if (!list || bad !== undefined) {
            if (list) this.err(tok, `bad country code '${bad}' in ${key} (expected ISO 3166-1 alpha-2)`);
            ok = false;
          } else if (key === 'allowed_countries') spec.allowedCountries = list.map((cc) => cc.toUpperCase());
          else spec.disallowedCountries = list.map((cc) => cc.toUpperCase());
          break;
        }
        case 'bearer':
          if (value === '') {
            this.err(tok, 'bearer= needs a value');
            ok = false;
          } else spec.bearer = value;
          break;
        default:
          spec.extra[key] = value;
      }
    }
    return ok ? spec : undefined;
  }

  private bool(tok: Token, key: string, value: string): boolean | undefined {
    if (value === 'true') return true;
    if (value === 'false') return false;
    this.err(tok, `${key} must be true or false, got '${value}'`);
    return undefined;
  }

  private commaList(tok: Token, key: string, value: string): string[] | undefined {
    const list = value.split(',');
    if (list.some((x) => x === '')) {
      this.err(tok, `${key} has an empty element in '${value}' (comma-separated, no spaces)`);
      return undefined;
    }
    return list;
  }

  /** AUTH-SPEC §3.1: ip, name and proto required; duplicates kept; `query:<param>` allowed. */
  private sessionKeys(tok: Token, value: string, bareQueryKeys: boolean): SessionKey[] | undefined {
    const list = this.commaList(tok, 'session_keys', value);
    if (!list) return undefined;
    const keys: SessionKey[] = [];
    let ok = true;
    for (const k of list) {
      if (k === 'ip' || k === 'name' || k === 'proto' || k === 'token') keys.push(k);
      else if (/^query:[A-Za-z0-9._~-]+$/.test(k)) keys.push(k as `query:${string}`);
      else if (bareQueryKeys && /^[A-Za-z0-9._~-]+$/.test(k)) keys.push(`query:${k}`);
      else {
        this.err(tok, `unknown session key '${k}' (allowed: ip, name, proto, token, query:<param>)`);
        ok = false;
      }
    }
    if (!ok) return undefined;
    const missing = (['ip', 'name', 'proto'] as const).filter((r) => !keys.includes(r));
    if (missing.length > 0) {
      this.err(tok, `session_keys must include ip, name and proto (missing ${missing.join(', ')})`);
      return undefined;
    }
    return keys;
  }

  private authBackend(s: Stmt): void {
    const usage = 'auth_backend NAME { allow|deny token|ip|country|ua VALUE…; backend URL; allow default; }';
    if (!this.arity(s, 1, 1, usage) || !this.needBlock(s, usage)) return;
    const nameTok = s.words[1] as Token;
    let ok = true;
    if (!IDENT.test(nameTok.value)) {
      this.err(nameTok, `bad auth_backend name '${nameTok.value}' (letters, digits, ".", "-", "_")`);
      ok = false;
    }
    const prev = this.config.authBackends.get(nameTok.value);
    if (prev) {
      this.err(
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
      loc: this.loc(s.words[0] as Token),
    };
    let allowDefaultTok: Token | undefined;
    for (const st of s.block.stmts) {
      if (st.broken) continue;
      const head = st.words[0] as Token;
      const args = st.words.slice(1);
      const v = head.quoted ? '' : head.value;
      if (v === 'allow' || v === 'deny') {
        if (!this.noBlock(st)) continue;
        const kindTok = args[0];
        if (v === 'allow' && kindTok?.value === 'default' && !kindTok.quoted) {
          if (this.arity(st, 1, 1, 'allow default')) {
            if (allowDefaultTok) {
              this.err(
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
          this.err(
            kindTok,
            `unknown rule kind '${kindTok.value}' (expected token, ip, country or ua)${extra}`,
          );
          continue;
        }
        if (!this.arity(st, 2, Infinity, `${v} token|ip|country|ua VALUE…`)) continue;
        const kind = (kindTok as Token).value as RuleKind;
        const values: string[] = [];
        for (const a of args.slice(1)) {
          if (kind === 'ip') {
            const ip = normalizeIpOrCidr(a.value, true);
            if (ip === undefined) this.err(a, `bad IP address or CIDR '${a.value}'`);
            else values.push(ip);
          } else if (kind === 'country') {
            if (/^[A-Za-z]{2}$/.test(a.value)) values.push(a.value.toUpperCase());
            else this.err(a, `bad country code '${a.value}' (expected ISO 3166-1 alpha-2, e.g. US)`);
          } else {
            values.push(a.value);
          }
        }
        if (values.length === args.length - 1) {
          ab.rules.push({ action: v, kind, values, loc: this.loc(head) });
        }
      } else if (v === 'backend') {
        if (!this.noBlock(st) || !this.arity(st, 1, Infinity, 'backend URL [key=value…]')) continue;
        const spec = this.authSpec(head, args, 'backend');
        if (spec) ab.backends.push(spec);
      } else {
        this.unknown('auth_backend', head);
      }
    }
    if (ok) this.config.authBackends.set(ab.name, ab);
  }

  private streamOrTemplate(s: Stmt, kind: 'stream' | 'template'): void {
    const head = s.words[0] as Token;
    const nameTok = s.words[1];
    const usage = kind === 'stream' ? 'stream NAME { … } | stream NAME URL;' : 'template NAME { … }';
    if (nameTok === undefined) {
      this.arity(s, 1, 1, usage);
      return;
    }
    const sc: StreamConfig = { kind, name: nameTok.value, prefixes: [], inputs: [], loc: this.loc(head) };
    this.nameTok.set(sc, nameTok);
    let ok = true;
    if (s.block) {
      ok = this.arity(s, 1, 1, usage);
    } else if (kind === 'template') {
      this.needBlock(s, usage);
      ok = false;
    } else if (s.words.length !== 3) {
      // A lone `stream NAME;` is the common mistake; say what is missing.
      if (s.words.length === 2) {
        this.err(head, `stream '${nameTok.value}' needs a block { … } or an input URL`);
      } else this.arity(s, 2, 2, usage);
      ok = false;
    } else {
      // One-line legacy form `stream NAME URL;` (R35).
      const urlTok = s.words[2] as Token;
      if (this.input(urlTok)) sc.inputs.push(urlTok.value);
      else ok = false;
    }

    if (kind === 'stream') {
      const problem = streamNameProblem(nameTok.value);
      if (problem) {
        this.err(nameTok, `bad stream name '${nameTok.value}': it ${problem}`);
        ok = false;
      }
    } else if (!IDENT.test(nameTok.value)) {
      this.err(nameTok, `bad template name '${nameTok.value}' (letters, digits, ".", "-", "_")`);
      ok = false;
    }
    const names = kind === 'stream' ? this.streamNames : this.templateNames;
    const prev = names.get(nameTok.value);
    if (prev) {
      this.err(
        nameTok,
        `duplicate ${kind} '${nameTok.value}' (first defined at ${prev.loc.line}:${prev.loc.col})`,
      );
      ok = false;
    } else {
      names.set(nameTok.value, sc);
    }

    if (s.block) {
      this.streamBody(sc, s.block.stmts);
      // An invalid `input` line is already reported; "no input" would only repeat it.
      if (s.block.stmts.some((st) => ['input', 'url'].includes(st.words[0]?.value ?? ''))) {
        this.inputWritten.add(sc);
      }
    }
    if (!ok) return;
    if (kind === 'stream') this.config.streams.push(sc);
    else this.config.templates.push(sc);
  }

  private input(t: Token): boolean {
    const m = /^([A-Za-z][A-Za-z0-9+.-]*):\/\/([\s\S]*)$/.exec(t.value);
    const scheme = m?.[1]?.toLowerCase();
    if (!m || scheme === undefined) {
      this.err(
        t,
        `bad input URL '${t.value}' (expected SCHEME://…, e.g. publish://, fake://fake, file://PATH)`,
      );
      return false;
    }
    if (!INPUT_SCHEMES.includes(scheme)) {
      const guess = suggest(scheme, INPUT_SCHEMES);
      this.err(t, `unknown input scheme '${scheme}://'${guess ? `; did you mean '${guess}://'?` : ''}`);
      return false;
    }
    if (scheme !== 'publish' && (m[2] ?? '') === '') {
      this.err(t, `input '${t.value}' has nothing after '://'`);
      return false;
    }
    return true;
  }

  private streamBody(sc: StreamConfig, stmts: Stmt[]): void {
    const ctx = sc.kind;
    const seen: AuthSeen = {};
    const once = new Map<string, Token>();
    const single = (head: Token): boolean => {
      const prev = once.get(head.value);
      if (prev) {
        this.err(head, `duplicate '${head.value}' (already set at ${prev.line}:${prev.col})`);
        return false;
      }
      once.set(head.value, head);
      return true;
    };
    for (const s of stmts) {
      if (s.broken) continue;
      const head = s.words[0] as Token;
      const args = s.words.slice(1);
      const v = head.quoted ? '' : head.value;
      switch (v) {
        case 'input':
        case 'url':
          if (this.noBlock(s) && this.arity(s, 1, 1, `${v} URL`) && this.input(args[0] as Token)) {
            sc.inputs.push((args[0] as Token).value);
          }
          break;
        case 'on_play':
        case 'on_publish':
        case 'auth':
          this.authDirective(s, sc, seen);
          break;
        case 'password':
          if (this.noBlock(s) && this.arity(s, 1, 1, 'password SECRET') && single(head)) {
            sc.password = (args[0] as Token).value;
          }
          break;
        case 'segment_duration': {
          if (!this.noBlock(s) || !this.arity(s, 1, 1, 'segment_duration SECONDS')) break;
          const a = args[0] as Token;
          if (!isPositiveNumber(a.value)) {
            this.err(a, `segment_duration must be a positive number, got '${a.value}'`);
          } else if (single(head)) sc.segmentDuration = Number(a.value);
          break;
        }
        case 'template':
          if (ctx !== 'stream') {
            this.unknown(ctx, head);
          } else if (this.noBlock(s) && this.arity(s, 1, 1, 'template NAME') && single(head)) {
            sc.template = (args[0] as Token).value;
            this.templateRefs.push({ stream: sc, tok: args[0] as Token });
          }
          break;
        case 'prefix':
          if (ctx !== 'template') {
            this.unknown(ctx, head);
          } else if (this.noBlock(s) && this.arity(s, 1, Infinity, 'prefix P…')) {
            for (const a of args) {
              // `prefix "";` is Flussonic's "any name" (R9).
              const problem = a.value === '' ? undefined : streamNameProblem(a.value);
              if (problem) this.err(a, `bad prefix '${a.value}': it ${problem}`);
              else sc.prefixes.push(a.value);
            }
          }
          break;
        case 'protocols':
          if (
            this.needBlock(s, 'protocols { hls false; rtmp true; whitelist true; }') &&
            this.arity(s, 0, 0, 'protocols { … }')
          ) {
            const p = this.protocols(s.block.stmts);
            if (single(head)) sc.protocols = p;
          }
          break;
        case 'playback_headers':
          if (
            this.needBlock(s, 'playback_headers { header NAME VALUE; }') &&
            this.arity(s, 0, 0, 'playback_headers { … }')
          ) {
            const p = this.playbackHeaders(s.block.stmts);
            if (single(head)) sc.playbackHeaders = p;
          }
          break;
        default:
          this.unknown(ctx, head);
      }
    }
  }

  private protocols(stmts: Stmt[]): ProtocolsConfig {
    const p: ProtocolsConfig = { whitelist: false, flags: {} };
    const seen = new Map<string, Token>();
    for (const s of stmts) {
      if (s.broken) continue;
      const head = s.words[0] as Token;
      const name = head.quoted ? '' : head.value;
      if (name !== 'whitelist' && !(PROTOCOL_SWITCHES as readonly string[]).includes(name)) {
        this.unknown('protocols', head);
        continue;
      }
      if (!this.noBlock(s) || !this.arity(s, 1, 1, `${name} true|false`)) continue;
      const b = this.bool(s.words[1] as Token, name, (s.words[1] as Token).value);
      if (b === undefined) continue;
      const prev = seen.get(name);
      if (prev) {
        this.err(head, `duplicate '${name}' (already set at ${prev.line}:${prev.col})`);
        continue;
      }
      seen.set(name, head);
      if (name === 'whitelist') p.whitelist = b;
      else p.flags[name as ProtocolSwitch] = b;
    }
    return p;
  }

  private playbackHeaders(stmts: Stmt[]): PlaybackHeaders {
    const ph: PlaybackHeaders = { headers: [] };
    for (const s of stmts) {
      if (s.broken) continue;
      const head = s.words[0] as Token;
      const args = s.words.slice(1);
      const v = head.quoted ? '' : head.value;
      if (v === 'protocols' || v === 'playback') {
        if (!this.noBlock(s) || !this.arity(s, 1, Infinity, `${v} NAME…`)) continue;
        const list = args.map((a) => a.value);
        if (v === 'protocols') {
          const bad = args.find((a) => !(PROTOCOL_SWITCHES as readonly string[]).includes(a.value));
          if (bad) {
            this.err(bad, `unknown protocol '${bad.value}'`);
            continue;
          }
          ph.protocols = [...(ph.protocols ?? []), ...list];
        } else {
          ph.playback = [...(ph.playback ?? []), ...list];
        }
      } else if (v === 'header') {
        if (!this.noBlock(s) || !this.arity(s, 2, Infinity, 'header NAME VALUE')) continue;
        const nameTok = args[0] as Token;
        if (!/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/.test(nameTok.value)) {
          this.err(nameTok, `bad HTTP header name '${nameTok.value}'`);
          continue;
        }
        // Unquoted multi-word values (`no-cache, no-store`) are joined as written.
        const value = args
          .slice(1)
          .map((a) => a.value)
          .join(' ');
        if (/[\r\n]/.test(value)) {
          this.err(args[1] as Token, 'header values may not contain line breaks');
          continue;
        }
        ph.headers.push([nameTok.value, value]);
      } else {
        this.unknown('playback_headers', head);
      }
    }
    return ph;
  }

  /** References may point forward, so they are checked once everything is read. */
  private resolveReferences(): void {
    for (const { name, tok } of this.authRefs) {
      if (!this.config.authBackends.has(name)) {
        const guess = suggest(name, [...this.config.authBackends.keys()]);
        this.err(
          tok,
          `unknown auth_backend '${name}' in 'auth://${name}'${guess ? `; did you mean '${guess}'?` : ''}`,
        );
      }
    }
    for (const { tok } of this.templateRefs) {
      if (!this.templateNames.has(tok.value)) {
        const guess = suggest(tok.value, [...this.templateNames.keys()]);
        this.err(tok, `unknown template '${tok.value}'${guess ? `; did you mean '${guess}'?` : ''}`);
      }
    }
    for (const sc of this.config.streams) {
      if (sc.inputs.length > 0 || this.inputWritten.has(sc)) continue;
      const t = this.nameTok.get(sc);
      if (t === undefined) continue;
      if (sc.template === undefined) {
        this.err(t, `stream '${sc.name}' has no input (add 'input URL;' or 'template NAME;')`);
        continue;
      }
      const tpl = this.templateNames.get(sc.template);
      if (tpl && tpl.inputs.length === 0) {
        this.err(t, `stream '${sc.name}' has no input (neither it nor template '${tpl.name}' sets one)`);
      }
    }
    const prefixOwner = new Map<string, StreamConfig>();
    for (const tpl of this.config.templates) {
      for (const p of tpl.prefixes) {
        const owner = prefixOwner.get(p);
        if (owner && owner !== tpl) {
          const t = this.nameTok.get(tpl);
          if (t) {
            this.err(
              t,
              `prefix '${p}' of template '${tpl.name}' is already used by template '${owner.name}'`,
            );
          }
        } else {
          prefixOwner.set(p, tpl);
        }
      }
    }
  }
}

function describeCount(min: number, max: number): string {
  const plural = (n: number): string => `${n} argument${n === 1 ? '' : 's'}`;
  if (min === max) return min === 0 ? 'no arguments' : plural(min);
  if (max === Infinity) return `at least ${plural(min)}`;
  return `${min} to ${max} arguments`;
}

/**
 * Parses and validates a config file's text. `file` is used only in messages and
 * `Config.source`. Never throws on bad input: every problem comes back as a ConfigError,
 * sorted by position.
 */
export function parseConfig(text: string, file: string): ParseResult {
  const errors: ConfigError[] = [];
  const { tokens, errors: lexErrors } = tokenize(text);
  for (const e of lexErrors) errors.push({ file, ...e });
  const stmts = new SyntaxParser(tokens, (line, col, message) =>
    errors.push({ file, line, col, message }),
  ).parseFile();
  const builder = new Builder(file);
  const config = builder.build(stmts);
  errors.push(...builder.errors);
  if (errors.length === 0) return { config };
  errors.sort((a, b) => a.line - b.line || a.col - b.col);
  if (errors.length > MAX_ERRORS) {
    const last = errors[MAX_ERRORS - 1] as ConfigError;
    const dropped = errors.length - MAX_ERRORS;
    errors.length = MAX_ERRORS;
    errors.push({ ...last, message: `too many errors; ${dropped} more not shown` });
  }
  return { errors };
}
