/**
 * The `stream` and `template` blocks (SPEC §2, AUTH-SPEC §8.3): names, inputs, hooks,
 * password, protocols, playback headers, prefixes, and the cross-block checks that only make
 * sense once every block is read (template references, streams with no input, prefixes
 * claimed twice). The field rules a backend override must also obey live in stream-fields.ts.
 */
import { decimal, IDENT, type Checker } from './check.js';
import { PROTOCOL_SWITCHES, suggest } from './directives.js';
import type { AuthSeen, AuthSpecs } from './auth-spec.js';
import type { Token } from './lexer.js';
import {
  checkInput,
  checkPassword,
  checkDvr,
  checkSegmentDuration,
  isProtocolKey,
  streamNameProblem,
} from './stream-fields.js';
import type { Stmt } from './syntax.js';
import type { FileRoots, PlaybackHeaders, ProtocolsConfig, StreamConfig } from './types.js';

export class StreamBlocks {
  private readonly templateRefs: Token[] = [];
  private readonly streamNames = new Map<string, StreamConfig>();
  private readonly templateNames = new Map<string, StreamConfig>();
  /** Token of each stream/template name, for messages about the block as a whole. */
  private readonly nameTok = new Map<StreamConfig, Token>();
  private readonly inputWritten = new Set<StreamConfig>();

  constructor(
    private readonly chk: Checker,
    private readonly auth: AuthSpecs,
    /** Where valid blocks go, in file order; `files` is read when an input is checked. */
    private readonly out: { streams: StreamConfig[]; templates: StreamConfig[]; files: FileRoots },
  ) {}

  /** `stream NAME { … }`, `stream NAME URL;` or `template NAME { … }`. */
  read(s: Stmt, kind: 'stream' | 'template'): void {
    const head = s.words[0] as Token;
    const nameTok = s.words[1];
    const usage = kind === 'stream' ? 'stream NAME { … } | stream NAME URL;' : 'template NAME { … }';
    if (nameTok === undefined) {
      this.chk.arity(s, 1, 1, usage);
      return;
    }
    const sc: StreamConfig = { kind, name: nameTok.value, prefixes: [], inputs: [], loc: this.chk.loc(head) };
    this.nameTok.set(sc, nameTok);
    let ok = true;
    if (s.block) {
      ok = this.chk.arity(s, 1, 1, usage);
    } else if (kind === 'template') {
      this.chk.needBlock(s, usage);
      ok = false;
    } else if (s.words.length !== 3) {
      // A lone `stream NAME;` is the common mistake; say what is missing.
      if (s.words.length === 2) {
        this.chk.err(head, `stream '${nameTok.value}' needs a block { … } or an input URL`);
      } else this.chk.arity(s, 2, 2, usage);
      ok = false;
    } else {
      // One-line legacy form `stream NAME URL;` (R35).
      const url = this.input(s.words[2] as Token);
      if (url !== undefined) sc.inputs.push(url);
      else ok = false;
    }

    if (kind === 'stream') {
      const problem = streamNameProblem(nameTok.value);
      if (problem) {
        this.chk.err(nameTok, `bad stream name '${shown(nameTok.value)}': it ${problem}`);
        ok = false;
      }
    } else if (!IDENT.test(nameTok.value)) {
      this.chk.err(nameTok, `bad template name '${nameTok.value}' (letters, digits, ".", "-", "_")`);
      ok = false;
    }
    const names = kind === 'stream' ? this.streamNames : this.templateNames;
    const prev = names.get(nameTok.value);
    if (prev) {
      this.chk.err(
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
    if (kind === 'stream') this.out.streams.push(sc);
    else this.out.templates.push(sc);
  }

  /** The input as the stream will use it, or undefined when refused (and reported). */
  private input(t: Token): string | undefined {
    const r = checkInput(t.value, this.out.files);
    if (r.ok) return r.value;
    this.chk.err(t, r.problem);
    return undefined;
  }

  private streamBody(sc: StreamConfig, stmts: Stmt[]): void {
    const ctx = sc.kind;
    const seen: AuthSeen = {};
    const once = new Map<string, Token>();
    const single = (head: Token): boolean => {
      const prev = once.get(head.value);
      if (prev) {
        this.chk.err(head, `duplicate '${head.value}' (already set at ${prev.line}:${prev.col})`);
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
          if (this.chk.noBlock(s) && this.chk.arity(s, 1, 1, `${v} URL`)) {
            const url = this.input(args[0] as Token);
            if (url !== undefined) sc.inputs.push(url);
          }
          break;
        case 'on_play':
        case 'on_publish':
        case 'auth':
          this.auth.directive(s, sc, seen);
          break;
        case 'password': {
          if (!this.chk.noBlock(s) || !this.chk.arity(s, 1, 1, 'password SECRET')) break;
          const a = args[0] as Token;
          const r = checkPassword(a.value);
          if (!r.ok) this.chk.err(a, r.problem);
          else if (single(head)) sc.password = r.value;
          break;
        }
        case 'rtmp_auth': {
          if (!this.chk.noBlock(s) || !this.chk.arity(s, 1, 1, 'rtmp_auth adobe')) break;
          const a = args[0] as Token;
          if (a.value !== 'adobe') this.chk.err(a, `rtmp_auth must be 'adobe', not '${a.value}'`);
          else if (single(head)) sc.rtmpAuth = 'adobe';
          break;
        }
        case 'segment_duration': {
          if (!this.chk.noBlock(s) || !this.chk.arity(s, 1, 1, 'segment_duration SECONDS')) break;
          const a = args[0] as Token;
          const r = checkSegmentDuration(decimal(a.value), a.value);
          if (!r.ok) this.chk.err(a, r.problem);
          else if (single(head)) sc.segmentDuration = r.value;
          break;
        }
        case 'dvr': {
          if (!this.chk.noBlock(s) || !this.chk.arity(s, 1, 3, 'dvr PATH [DEPTH] [SIZE]')) break;
          const r = checkDvr(args.map((a) => a.value));
          if (!r.ok) this.chk.err(args[0] as Token, r.problem);
          else if (single(head)) sc.dvr = r.value;
          break;
        }
        case 'hls_container': {
          if (!this.chk.noBlock(s) || !this.chk.arity(s, 1, 1, 'hls_container ts|fmp4')) break;
          const a = args[0] as Token;
          if (a.value !== 'ts' && a.value !== 'fmp4') {
            this.chk.err(a, `hls_container must be ts or fmp4, got '${a.value}'`);
          } else if (single(head)) sc.hlsContainer = a.value;
          break;
        }
        case 'template':
          if (ctx !== 'stream') {
            this.chk.unknown(ctx, head);
          } else if (this.chk.noBlock(s) && this.chk.arity(s, 1, 1, 'template NAME') && single(head)) {
            sc.template = (args[0] as Token).value;
            this.templateRefs.push(args[0] as Token);
          }
          break;
        case 'prefix':
          if (ctx !== 'template') {
            this.chk.unknown(ctx, head);
          } else if (this.chk.noBlock(s) && this.chk.arity(s, 1, Infinity, 'prefix P…')) {
            for (const a of args) {
              // `prefix "";` is Flussonic's "any name" (R9).
              const problem = a.value === '' ? undefined : streamNameProblem(a.value);
              if (problem) this.chk.err(a, `bad prefix '${shown(a.value)}': it ${problem}`);
              else sc.prefixes.push(a.value);
            }
          }
          break;
        case 'protocols':
          if (
            this.chk.needBlock(s, 'protocols { hls false; rtmp true; whitelist true; }') &&
            this.chk.arity(s, 0, 0, 'protocols { … }')
          ) {
            const p = this.protocols(s.block.stmts);
            if (single(head)) sc.protocols = p;
          }
          break;
        case 'playback_headers':
          if (
            this.chk.needBlock(s, 'playback_headers { header NAME VALUE; }') &&
            this.chk.arity(s, 0, 0, 'playback_headers { … }')
          ) {
            const p = this.playbackHeaders(s.block.stmts);
            if (single(head)) sc.playbackHeaders = p;
          }
          break;
        default:
          this.chk.unknown(ctx, head);
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
      if (!isProtocolKey(name)) {
        this.chk.unknown('protocols', head);
        continue;
      }
      if (!this.chk.noBlock(s) || !this.chk.arity(s, 1, 1, `${name} true|false`)) continue;
      const b = this.chk.bool(s.words[1] as Token, name, (s.words[1] as Token).value);
      if (b === undefined) continue;
      const prev = seen.get(name);
      if (prev) {
        this.chk.err(head, `duplicate '${name}' (already set at ${prev.line}:${prev.col})`);
        continue;
      }
      seen.set(name, head);
      if (name === 'whitelist') p.whitelist = b;
      else p.flags[name] = b;
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
        if (!this.chk.noBlock(s) || !this.chk.arity(s, 1, Infinity, `${v} NAME…`)) continue;
        const list = args.map((a) => a.value);
        if (v === 'protocols') {
          const bad = args.find((a) => !(PROTOCOL_SWITCHES as readonly string[]).includes(a.value));
          if (bad) {
            this.chk.err(bad, `unknown protocol '${bad.value}'`);
            continue;
          }
          ph.protocols = [...(ph.protocols ?? []), ...list];
        } else {
          ph.playback = [...(ph.playback ?? []), ...list];
        }
      } else if (v === 'header') {
        if (!this.chk.noBlock(s) || !this.chk.arity(s, 2, Infinity, 'header NAME VALUE')) continue;
        const nameTok = args[0] as Token;
        if (!/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/.test(nameTok.value)) {
          this.chk.err(nameTok, `bad HTTP header name '${nameTok.value}'`);
          continue;
        }
        // Unquoted multi-word values (`no-cache, no-store`) are joined as written.
        const value = args
          .slice(1)
          .map((a) => a.value)
          .join(' ');
        if (/[\r\n]/.test(value)) {
          this.chk.err(args[1] as Token, 'header values may not contain line breaks');
          continue;
        }
        ph.headers.push([nameTok.value, value]);
      } else {
        this.chk.unknown('playback_headers', head);
      }
    }
    return ph;
  }

  /** References may point forward, so they are checked once everything is read. */
  checkReferences(): void {
    for (const tok of this.templateRefs) {
      if (!this.templateNames.has(tok.value)) {
        const guess = suggest(tok.value, [...this.templateNames.keys()]);
        this.chk.err(tok, `unknown template '${tok.value}'${guess ? `; did you mean '${guess}'?` : ''}`);
      }
    }
    for (const sc of this.out.streams) {
      if (sc.inputs.length > 0 || this.inputWritten.has(sc)) continue;
      const t = this.nameTok.get(sc);
      if (t === undefined) continue;
      if (sc.template === undefined) {
        this.chk.err(t, `stream '${sc.name}' has no input (add 'input URL;' or 'template NAME;')`);
        continue;
      }
      const tpl = this.templateNames.get(sc.template);
      if (tpl && tpl.inputs.length === 0) {
        this.chk.err(t, `stream '${sc.name}' has no input (neither it nor template '${tpl.name}' sets one)`);
      }
    }
    const prefixOwner = new Map<string, StreamConfig>();
    for (const tpl of this.out.templates) {
      for (const p of tpl.prefixes) {
        const owner = prefixOwner.get(p);
        if (owner && owner !== tpl) {
          const t = this.nameTok.get(tpl);
          if (t) {
            this.chk.err(
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

/** A name as an error message quotes it: a 200 000-character one would bury the message. */
function shown(name: string): string {
  return name.length > 60 ? `${name.slice(0, 60)}…` : name;
}
