/**
 * Shared fixtures for the session and auth tests: hand-built Config and AuthSpec values (the
 * parser is another module's job), a scriptable fake backend that records every request, a
 * log capture, and a manager wired to a FakeClock and an in-memory history.
 */
import { Writable } from 'node:stream';
import pino from 'pino';
import type { Logger } from 'pino';
import type { AuthBackend, AuthContext, AuthDecision, AuthRequest } from '../../../src/auth/backend.js';
import { FakeClock } from '../../../src/clock.js';
import type { AuthBackendConfig, AuthSpec, Config } from '../../../src/config/types.js';
import { defaultConfig } from '../../../src/config/build.js';
import type { Proto, SessionKind } from '../../../src/core/proto.js';
import type { SessionKey } from '../../../src/core/session-keys.js';
import { SqliteHistory } from '../../../src/sessions/history.js';
import { Sessions, type ConfigOverrideResult } from '../../../src/sessions/manager.js';
import type { ClientRequest, Session, StreamPolicy } from '../../../src/sessions/types.js';

const loc = { file: 'test.conf', line: 1, col: 1 };

export function spec(url: string, over: Partial<AuthSpec> = {}): AuthSpec {
  return {
    url,
    sessionKeys: ['name', 'ip', 'proto', 'token'],
    softLimitation: false,
    domainsStrict: false,
    timeoutSec: 3,
    extra: {},
    loc,
    ...over,
  };
}

export function keys(list: string): SessionKey[] {
  return list.split(',') as SessionKey[];
}

export function chainConfig(
  name: string,
  rules: [action: 'allow' | 'deny', kind: 'token' | 'ip' | 'country' | 'ua', ...values: string[]][],
  backends: AuthSpec[] = [],
  allowDefault = false,
): AuthBackendConfig {
  return {
    name,
    rules: rules.map(([action, kind, ...values]) => ({ action, kind, values, loc })),
    backends,
    allowDefault,
    loc,
  };
}

export function config(over: Partial<Config> = {}): Config {
  return { ...defaultConfig('<test>', process.cwd()), history: 'sqlite://:memory:', ...over };
}

export function request(over: Partial<ClientRequest> & { token?: string } = {}): ClientRequest {
  const token = over.token;
  const qs = over.qs ?? (token !== undefined ? `token=${token}` : '');
  return {
    kind: 'play' as SessionKind,
    proto: 'hls' as Proto,
    name: 'live/cam1',
    ip: '10.0.0.1',
    qs,
    query: new URLSearchParams(qs),
    ...over,
  };
}

export const allow = (extra: Partial<Extract<AuthDecision, { kind: 'allow' }>> = {}): AuthDecision => ({
  kind: 'allow',
  authDurationSec: 180,
  ...extra,
});
export const denyD = (authDurationSec = 180): AuthDecision => ({
  kind: 'deny',
  status: 403,
  authDurationSec,
  reason: 'backend_denied',
});
export const unavailable = (reason: 'timeout' | 'http5xx' | 'connect' = 'http5xx'): AuthDecision => ({
  kind: 'unavailable',
  reason,
});

/** A backend whose answers the test scripts; `hang` leaves calls pending until released. */
export class FakeBackend implements AuthBackend {
  calls: { req: AuthRequest; ctx: AuthContext }[] = [];
  answer: (req: AuthRequest) => AuthDecision | Promise<AuthDecision> = () => allow();
  private pending: ((d: AuthDecision) => void)[] = [];
  hang = false;

  check(req: AuthRequest, ctx: AuthContext): Promise<AuthDecision> {
    this.calls.push({ req, ctx });
    if (this.hang) return new Promise((r) => this.pending.push(r));
    return Promise.resolve(this.answer(req));
  }

  /** Answers every hanging call. */
  release(d: AuthDecision): void {
    for (const r of this.pending.splice(0)) r(d);
  }

  get updates(): AuthRequest[] {
    return this.calls.map((c) => c.req).filter((r) => r.request_type === 'update_session');
  }
}

/** A pino logger writing JSON lines into `lines`. */
export function captureLog(): { log: Logger; lines: string[] } {
  const lines: string[] = [];
  const dest = new Writable({
    write(chunk: Buffer, _enc, cb) {
      lines.push(...chunk.toString('utf8').split('\n').filter(Boolean));
      cb();
    },
  });
  return { log: pino({ level: 'debug' }, dest), lines };
}

export interface Harness {
  clock: FakeClock;
  backend: FakeBackend;
  manager: Sessions;
  history: SqliteHistory;
  lines: string[];
  policies: Map<string, StreamPolicy>;
  overrides: { name: string; partial: Record<string, unknown> }[];
}

/** A manager on a FakeClock whose every backend is one FakeBackend; stream `live/cam1` exists. */
export function harness(
  opts: {
    policy?: StreamPolicy;
    config?: Partial<Config>;
    backends?: (s: AuthSpec) => AuthBackend;
    /** What the stream reports when an override is applied; by default nothing runs the stream. */
    override?: (name: string, partial: Record<string, unknown>) => ConfigOverrideResult | undefined;
  } = {},
): Harness {
  const clock = new FakeClock();
  const backend = new FakeBackend();
  const history = new SqliteHistory('sqlite://:memory:');
  const { log, lines } = captureLog();
  const policies = new Map<string, StreamPolicy>();
  const p = opts.policy ?? {
    onPlay: spec('http://backend.test/auth'),
    onPublish: spec('http://backend.test/pub'),
  };
  for (const n of ['live/cam1', 'live/cam2', 'live/cam3', 'demo']) policies.set(n, p);
  const overrides: Harness['overrides'] = [];
  const manager = new Sessions({
    config: config(opts.config),
    policy: (n) => policies.get(n),
    clock,
    log,
    history,
    onConfigOverride: (name, partial) => {
      overrides.push({ name, partial });
      return opts.override?.(name, partial);
    },
    backendFactory: opts.backends ?? (() => backend),
  });
  return { clock, backend, manager, history, lines, policies, overrides };
}

/** Asserts a decision allowed and returns its session. */
export function granted(d: Awaited<ReturnType<Sessions['open']>>): Session {
  if (!d.allow) throw new Error(`expected allow, got ${d.status} ${d.reason}`);
  return d.session;
}
