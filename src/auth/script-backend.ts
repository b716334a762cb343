/**
 * Script backends (SPEC §5). An executable gets the AuthRequest as JSON on stdin and answers
 * with its exit code (0 allow, 1 deny, anything else unavailable) and optionally a JSON object
 * on stdout; a `.js`/`.mjs` module is imported once and its default export is called
 * in-process (unless it is itself an executable `#!` script, which is spawned). Both share the HTTP backend's deadline, and a time-out counts as unavailable so
 * the manager's §4.2 table applies unchanged.
 */
import { spawn } from 'node:child_process';
import { closeSync, existsSync, openSync, readSync, statSync } from 'node:fs';
import { dirname, isAbsolute, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { AuthSpec } from '../config/types.js';
import {
  MAX_BODY_BYTES,
  bodyConfig,
  grant,
  isPlainObject,
  parseAuthDuration,
  type AuthBackend,
  type AuthContext,
  type AuthDecision,
  type AuthRequest,
} from './backend.js';

export interface ScriptBackendOptions {
  defaultAuthDuration: number;
  /** The config file the path was written in; relative paths resolve against its directory first. */
  configSource?: string;
}

/** True when an `on_play`/`on_publish` value names a script rather than a URL scheme or `true`. */
export function isScriptPath(url: string): boolean {
  return url !== 'true' && !/^[a-z][a-z0-9+.-]*:\/\//i.test(url);
}

/** Relative to the config file's directory when the file exists there, else to the working directory. */
export function resolveScriptPath(path: string, configSource?: string): string {
  if (isAbsolute(path)) return path;
  if (configSource !== undefined && configSource !== '<embedded>') {
    const candidate = resolve(dirname(configSource), path);
    if (existsSync(candidate)) return candidate;
  }
  return resolve(path);
}

/** Maps a script's answer (stdout JSON or a module's return value) onto a decision. */
export function decideScript(allow: boolean, out: unknown, defaultSec: number): AuthDecision {
  const o = isPlainObject(out) ? out : {};
  if (!allow) {
    return {
      kind: 'deny',
      status: 403,
      authDurationSec: parseAuthDuration(o['auth_duration'], defaultSec),
      reason: 'backend_denied',
    };
  }
  return grant(
    {
      userId: o['user_id'],
      maxSessions: o['max_sessions'],
      unique: o['unique'],
      authDuration: o['auth_duration'],
      config: bodyConfig(o),
      allowedDvrRanges: o['allowed_dvr_ranges'],
    },
    defaultSec,
  );
}

/** Runs an executable per request (SPEC §5). */
export class ExecBackend implements AuthBackend {
  readonly path: string;
  private readonly timeoutMs: number;

  constructor(
    spec: AuthSpec,
    private readonly opts: ScriptBackendOptions,
  ) {
    this.path = resolveScriptPath(spec.url, opts.configSource);
    this.timeoutMs = Math.max(1, spec.timeoutSec) * 1000;
  }

  check(req: AuthRequest, _ctx?: AuthContext): Promise<AuthDecision> {
    return new Promise<AuthDecision>((done) => {
      let settled = false;
      const finish = (d: AuthDecision): void => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        done(d);
      };
      let child: ReturnType<typeof spawn>;
      try {
        child = spawn(this.path, [], { stdio: ['pipe', 'pipe', 'ignore'] });
      } catch {
        finish({ kind: 'unavailable', reason: 'error' });
        return;
      }
      const timer = setTimeout(() => {
        child.kill('SIGKILL');
        finish({ kind: 'unavailable', reason: 'timeout' });
      }, this.timeoutMs);
      timer.unref();
      const chunks: Buffer[] = [];
      let size = 0;
      child.stdout?.on('data', (c: Buffer) => {
        size += c.length;
        if (size <= MAX_BODY_BYTES) chunks.push(c);
      });
      child.on('error', () => finish({ kind: 'unavailable', reason: 'error' }));
      // A script that exits without reading stdin makes the write fail with EPIPE; its exit code still decides.
      child.stdin?.on('error', () => undefined);
      child.stdin?.end(JSON.stringify(req));
      child.on('close', (code) => {
        if (code !== 0 && code !== 1) {
          finish({ kind: 'unavailable', reason: 'error' });
          return;
        }
        let out: unknown;
        if (size <= MAX_BODY_BYTES) {
          try {
            out = JSON.parse(Buffer.concat(chunks).toString('utf8')) as unknown;
          } catch {
            out = undefined;
          }
        }
        finish(decideScript(code === 0, out, this.opts.defaultAuthDuration));
      });
    });
  }
}

type ModuleFn = (req: AuthRequest) => unknown;

/** Calls the default export of a `.js`/`.mjs` module in-process (SPEC §5). */
export class ModuleBackend implements AuthBackend {
  readonly path: string;
  private readonly timeoutMs: number;
  private fn: Promise<ModuleFn | undefined> | undefined;

  constructor(
    spec: AuthSpec,
    private readonly opts: ScriptBackendOptions,
  ) {
    this.path = resolveScriptPath(spec.url, opts.configSource);
    this.timeoutMs = Math.max(1, spec.timeoutSec) * 1000;
  }

  /** Imported on first use and kept: SPEC §5 says "loaded once". */
  private load(): Promise<ModuleFn | undefined> {
    this.fn ??= import(pathToFileURL(this.path).href).then(
      (m: { default?: unknown }) => (typeof m.default === 'function' ? (m.default as ModuleFn) : undefined),
      () => undefined,
    );
    return this.fn;
  }

  async check(req: AuthRequest, _ctx?: AuthContext): Promise<AuthDecision> {
    const fn = await this.load();
    if (fn === undefined) return { kind: 'unavailable', reason: 'error' };
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<'timeout'>((r) => {
      timer = setTimeout(() => r('timeout'), this.timeoutMs);
      timer.unref();
    });
    try {
      const out = await Promise.race([Promise.resolve().then(() => fn({ ...req })), timeout]);
      if (out === 'timeout') return { kind: 'unavailable', reason: 'timeout' };
      if (!isPlainObject(out) || typeof out['allow'] !== 'boolean') {
        return { kind: 'unavailable', reason: 'error' };
      }
      return decideScript(out['allow'], out, this.opts.defaultAuthDuration);
    } catch {
      return { kind: 'unavailable', reason: 'error' };
    } finally {
      clearTimeout(timer);
    }
  }
}

/**
 * True for a file with an execute bit that starts with `#!`. A `.mjs` written as a CLI script
 * (like samples/script-backend.mjs) must be spawned: importing it would run its top level, which
 * reads stdin and calls process.exit, inside the server.
 */
export function isExecutableScript(path: string): boolean {
  try {
    if ((statSync(path).mode & 0o111) === 0) return false;
    const fd = openSync(path, 'r');
    try {
      const head = Buffer.alloc(2);
      readSync(fd, head, 0, 2, 0);
      return head.toString('latin1') === '#!';
    } finally {
      closeSync(fd);
    }
  } catch {
    return false;
  }
}

/** A module for `.js`/`.mjs` files unless they are executable `#!` scripts; an executable otherwise. */
export function createScriptBackend(spec: AuthSpec, opts: ScriptBackendOptions): AuthBackend {
  const path = resolveScriptPath(spec.url, opts.configSource);
  if (/\.m?js$/i.test(path) && !isExecutableScript(path)) return new ModuleBackend(spec, opts);
  return new ExecBackend(spec, opts);
}
