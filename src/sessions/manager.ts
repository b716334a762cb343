/**
 * The session manager every protocol adapter asks before media flows (ARCHITECTURE.md). It
 * turns a ClientRequest into a decision: local checks (stream, protocol switch, publish
 * password, token, domain lock), the denial/ban cache, HLS reuse, then one backend call per
 * identity (single-flight), and afterwards keeps each granted session honest with re-checks,
 * retries, limits and idle closes (AUTH-SPEC §1, §3–§5, §7, §8.2).
 *
 * State changes happen synchronously between awaits: a grant counts, indexes and applies
 * limits in one turn of the event loop, so concurrent grants cannot both slip under a limit.
 * Backend calls are the only awaited work and each is bounded by its own deadline, so a slow
 * backend delays only the clients waiting on that identity.
 */
import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import type { AuthBackend, AuthDecision, AuthRequest } from '../auth/backend.js';
import { createBackend } from '../auth/index.js';
import { domainAllowed } from '../auth/rules.js';
import { systemClock, type Clock, type TimerHandle } from '../clock.js';
import type { AuthSpec, Config } from '../config/types.js';
import type { ClusterStore, UniqueKick } from './cluster.js';
import type { HistoryRow, HistoryStore } from './history.js';
import { perRequest, type Proto, type SessionKind } from '../core/proto.js';
import type { CloseReason, DenyReason } from '../core/reasons.js';
import { safeEqual, tokenHash } from '../core/secrets.js';
import { DEFAULT_SESSION_KEYS } from '../core/session-keys.js';
import { generateToken, identityKey } from './identity.js';
import { retryDelayMs, sessionsOverLimit, softGraceMs, uniqueLosers } from './limits.js';
import { protocolAllowed } from '../config/resolve.js';
import { MemoryStore, type BanEntry, type ProtoCounts, type SessionStore } from './store.js';
import type {
  ClientRequest,
  Decision,
  Denial,
  Session,
  SessionFilter,
  SessionManager,
  StreamPolicy,
} from './types.js';

export interface SessionManagerOptions {
  config: Config;
  /** Resolves a stream name to its policy; undefined means the stream does not exist (404). */
  policy: (name: string) => StreamPolicy | undefined;
  clock?: Clock;
  log: Logger;
  history: HistoryStore;
  /** Receives a backend's `config` (AUTH-SPEC §8.1); the stream diffs and applies it. */
  onConfigOverride?: (name: string, partial: Record<string, unknown>) => void;
  /** Builds the backend for a spec; defaults to `createBackend`. Tests pass fakes here. */
  backendFactory?: (spec: AuthSpec) => AuthBackend;
  store?: SessionStore<ManagedSession>;
  /** Shares bans, per-user counts and X-Unique kicks with other origins (`session_store redis://`). */
  cluster?: ClusterStore;
  /**
   * AUTH-SPEC §7.5: recognises a valid `ADM1-…` admin view token (false when admin view is
   * disabled); such a play skips the backend. Without it every token goes to the backend.
   */
  adminView?: { verify(token: string, config: Config): boolean };
}

/** How often expired denial entries are dropped from memory. */
const SWEEP_MS = 60_000;

function deny(status: 403 | 404, reason: DenyReason, detail?: string): Denial {
  return detail === undefined || detail === reason
    ? { allow: false, status, reason }
    : { allow: false, status, reason, detail };
}

/** The manager's internals a session calls back into. */
interface SessionHost {
  touchSession(s: ManagedSession): void;
  closeSession(s: ManagedSession, reason: CloseReason): void;
  now(): number;
}

/** A granted session with the bookkeeping AUTH-SPEC §11 `SessionRecord` lists. */
export class ManagedSession implements Session {
  readonly tokenHash: string;
  userId: string | undefined;
  bytes = 0;
  lastAccessAt: number;
  lastVerifyAt: number;
  authDurationSec: number;
  maxSessions: number | undefined;
  unique = false;
  /** Opened with an admin view token (AUTH-SPEC §7.5): recorded, never counted against limits. */
  adminView = false;
  requestNumber = 0;
  /** Consecutive unavailable answers to re-checks (AUTH-SPEC §4.3 back-off). */
  failures = 0;
  /** When the next update_session is due (persistent: timer; HLS: on the next request). */
  nextCheckAt: number;
  checking = false;
  closed = false;
  closeReason: CloseReason | undefined;
  /** Set when the manager (not the adapter) ended the session; late onKill registrations still fire. */
  killReason: CloseReason | undefined;
  recheckTimer: TimerHandle | undefined;
  idleTimer: TimerHandle | undefined;
  private readonly killers: ((reason: CloseReason) => void)[] = [];

  constructor(
    private readonly host: SessionHost,
    readonly id: string,
    readonly idKey: string,
    readonly seq: number,
    readonly kind: SessionKind,
    readonly proto: Proto,
    readonly name: string,
    readonly ip: string,
    readonly token: string,
    readonly openedAt: number,
    readonly req: ClientRequest,
    readonly spec: AuthSpec | undefined,
    readonly backend: AuthBackend | undefined,
    authDurationSec: number,
  ) {
    this.tokenHash = tokenHash(token) ?? '';
    this.lastAccessAt = openedAt;
    this.lastVerifyAt = openedAt;
    this.authDurationSec = authDurationSec;
    this.nextCheckAt = openedAt + authDurationSec * 1000;
  }

  get softLimitation(): boolean {
    return this.spec?.softLimitation ?? false;
  }

  addBytes(n: number): void {
    if (n > 0) this.bytes += n;
  }

  touch(): void {
    this.host.touchSession(this);
  }

  onKill(kill: (reason: CloseReason) => void): void {
    if (this.killReason !== undefined) {
      kill(this.killReason);
      return;
    }
    if (!this.closed) this.killers.push(kill);
  }

  close(reason: CloseReason): void {
    this.host.closeSession(this, reason);
  }

  /** Runs the adapter's kill callbacks once; a throwing callback does not stop the others. */
  runKillers(reason: CloseReason, onError: (err: unknown) => void): void {
    this.killReason = reason;
    const fns = this.killers.splice(0);
    for (const fn of fns) {
      try {
        fn(reason);
      } catch (err) {
        onError(err);
      }
    }
  }

  /** The JSON view of `GET /api/sessions`: never the raw token (SPEC §7). */
  toJSON(): Record<string, unknown> {
    return {
      id: this.id,
      id_key: this.idKey,
      type: this.kind,
      name: this.name,
      proto: this.proto,
      ip: this.ip,
      user_id: this.userId ?? null,
      token_hash: this.tokenHash,
      bytes: this.bytes,
      opened_at: this.openedAt,
      last_access_at: this.lastAccessAt,
      last_verify_at: this.lastVerifyAt,
      auth_duration: this.authDurationSec,
      max_sessions: this.maxSessions ?? null,
      unique: this.unique,
      soft_limitation: this.softLimitation,
      user_agent: this.req.userAgent ?? null,
      referer: this.req.referer ?? null,
    };
  }
}

interface Flight {
  decision: Promise<AuthDecision>;
  sessionId: string;
  idUsed: boolean;
}

/** Result of the local checks that run before any backend or cache lookup. */
type Prepared =
  | { ok: false; denial: Denial }
  | {
      ok: true;
      spec: AuthSpec | undefined;
      token: string;
      idKey: string;
    };

export class Sessions implements SessionManager, SessionHost {
  readonly store: SessionStore<ManagedSession>;
  private readonly cluster: ClusterStore | undefined;
  private config: Config;
  private readonly policy: (name: string) => StreamPolicy | undefined;
  private readonly clock: Clock;
  private readonly log: Logger;
  private readonly history: HistoryStore;
  private readonly onConfigOverride: ((name: string, partial: Record<string, unknown>) => void) | undefined;
  private readonly backendFactory: (spec: AuthSpec) => AuthBackend;
  private readonly adminView: SessionManagerOptions['adminView'];
  private readonly backends = new WeakMap<AuthSpec, AuthBackend>();
  private readonly inflight = new Map<string, Flight>();
  private readonly graceTimers = new Map<string, TimerHandle>();
  private sweepTimer: TimerHandle | undefined;
  private seq = 0;
  private stopped = false;

  constructor(opts: SessionManagerOptions) {
    this.config = opts.config;
    this.policy = opts.policy;
    this.clock = opts.clock ?? systemClock;
    this.log = opts.log;
    this.history = opts.history;
    this.onConfigOverride = opts.onConfigOverride;
    this.store = opts.store ?? new MemoryStore<ManagedSession>();
    this.cluster = opts.cluster;
    this.adminView = opts.adminView;
    this.backendFactory =
      opts.backendFactory ??
      ((spec) =>
        createBackend(spec, this.config, {
          warn: (msg) => this.log.warn({ event: 'auth_config' }, msg),
          now: () => this.clock.now(),
        }));
    this.armSweep();
  }

  now(): number {
    return this.clock.now();
  }

  // ---------------------------------------------------------------------------------------
  // open()

  async open(req: ClientRequest): Promise<Decision> {
    const prep = this.prepare(req);
    if (!prep.ok) {
      this.logDenied(req, prep.denial, undefined, req.token);
      return prep.denial;
    }
    const { spec, token, idKey } = prep;
    // AUTH-SPEC §7.5: only a verifying ADM token skips the backend (and any cached denial).
    if (
      req.kind === 'play' &&
      token.startsWith('ADM') &&
      this.adminView?.verify(token, this.config) === true
    ) {
      return this.openAdminView(req, idKey, token);
    }
    const now = this.clock.now();

    // AUTH-SPEC §4.5: a cached denial or ban answers without asking the backend.
    const ban = this.store.getBan(idKey, now);
    if (ban !== undefined) {
      const denial = deny(403, ban.ban ? 'banned' : 'cached_negative');
      this.logDenied(req, denial, idKey, token);
      return denial;
    }

    const reused = this.reuse(req, idKey);
    if (reused) return { allow: true, session: reused };

    // A ban another origin recorded holds here too (SPEC §7); only new identities pay the lookup.
    if (this.cluster !== undefined) {
      const remote = await this.cluster.getBan(idKey);
      if (remote !== undefined && remote.until > this.clock.now()) {
        this.store.setBan(remote);
        const denial = deny(403, remote.ban ? 'banned' : 'cached_negative');
        this.logDenied(req, denial, idKey, token);
        return denial;
      }
    }

    // `on_play true` or no hook at all: a session (with its history row), no backend call.
    if (spec === undefined || spec.url === 'true') {
      const s = this.createSession(req, idKey, token, spec, undefined, randomUUID(), {
        kind: 'allow',
        authDurationSec: this.config.defaultAuthDuration,
      });
      return { allow: true, session: s };
    }

    const backend = this.backendFor(spec);
    // AUTH-SPEC §1.1 item 5: concurrent first requests for one identity share one call.
    let flight = this.inflight.get(idKey);
    if (flight === undefined) {
      const sessionId = randomUUID();
      const areq = this.newSessionRequest(req, token, sessionId);
      const f: Flight = {
        sessionId,
        idUsed: false,
        decision: this.callBackend(backend, spec, areq, req.kind),
      };
      this.inflight.set(idKey, f);
      void f.decision.finally(() => {
        if (this.inflight.get(idKey) === f) this.inflight.delete(idKey);
      });
      flight = f;
    }
    const d = await flight.decision;
    let sessionId: string = randomUUID();
    if (!flight.idUsed) {
      flight.idUsed = true;
      sessionId = flight.sessionId;
    }
    return this.admit(req, idKey, token, spec, backend, sessionId, d);
  }

  /**
   * AUTH-SPEC §7.5: an admin view session, user id `admin`, no backend and hence no re-checks,
   * and neither a static `max_sessions` nor anyone's limit applies to it.
   */
  private openAdminView(req: ClientRequest, idKey: string, token: string): Decision {
    const reused = this.reuse(req, idKey);
    if (reused) return { allow: true, session: reused };
    const s = this.createSession(req, idKey, token, undefined, undefined, randomUUID(), {
      kind: 'allow',
      userId: 'admin',
      authDurationSec: this.config.defaultAuthDuration,
    });
    s.adminView = true;
    this.log.info(
      { event: 'admin_view', sid: s.id, name: s.name, proto: s.proto, ip: s.ip },
      'admin view session',
    );
    return { allow: true, session: s };
  }

  /** Checks that need no backend and no cache, in AUTH-SPEC §6.5 / §7.3 / §8.2 order. */
  private prepare(req: ClientRequest): Prepared {
    const policy = this.policy(req.name);
    if (policy === undefined) return { ok: false, denial: deny(404, 'stream_not_found') };
    if (req.kind === 'play' && !protocolAllowed(policy.protocols, req.proto)) {
      return { ok: false, denial: deny(403, 'protocol_disabled') };
    }
    const spec =
      req.kind === 'play'
        ? (policy.onPlay ?? this.config.onPlay)
        : (policy.onPublish ?? this.config.onPublish);
    if (req.kind === 'publish' && policy.password !== undefined) {
      const given = req.query.get('password');
      if (given === null || !safeEqual(given, policy.password)) {
        return { ok: false, denial: deny(403, 'wrong_password') };
      }
    }
    const needsBackend = spec !== undefined && spec.url !== 'true';
    let token = req.token !== undefined && req.token !== '' ? req.token : undefined;
    if (token === undefined) {
      // AUTH-SPEC §3.4: with no_auto_token a tokenless client never reaches the backend.
      if (this.config.noAutoToken && needsBackend) return { ok: false, denial: deny(403, 'no_token') };
      token = generateToken();
    }
    if (spec?.domains !== undefined && !domainAllowed(req.referer, spec.domains, spec.domainsStrict)) {
      return { ok: false, denial: deny(403, 'domain_denied') };
    }
    const keys = spec !== undefined && spec.sessionKeys.length > 0 ? spec.sessionKeys : DEFAULT_SESSION_KEYS;
    const idKey = identityKey(
      keys,
      { name: req.name, ip: req.ip, proto: req.proto, token, query: req.query },
      req.kind,
    );
    return { ok: true, spec, token, idKey };
  }

  /** AUTH-SPEC §3.5: an HLS request of a granted identity is the same session. */
  private reuse(req: ClientRequest, idKey: string): ManagedSession | undefined {
    if (req.kind !== 'play' || !perRequest(req.proto)) return undefined;
    const s = this.store.perRequestByIdKey(idKey);
    if (s === undefined || s.closed) return undefined;
    this.touchSession(s);
    return s;
  }

  /** Applies a new_session decision (AUTH-SPEC §2.1, §4.2, §4.5, §5). */
  private async admit(
    req: ClientRequest,
    idKey: string,
    token: string,
    spec: AuthSpec,
    backend: AuthBackend,
    sessionId: string,
    d: AuthDecision,
  ): Promise<Decision> {
    const now = this.clock.now();
    switch (d.kind) {
      case 'allow': {
        if (d.config !== undefined) {
          this.applyOverride(req.name, d.config);
          // An override may have just switched this protocol off (AUTH-SPEC §8.1 step 5).
          const policy = this.policy(req.name);
          if (policy === undefined) return deny(404, 'stream_not_found');
          if (req.kind === 'play' && !protocolAllowed(policy.protocols, req.proto)) {
            return deny(403, 'protocol_disabled');
          }
        }
        // Single-flight waiters of an HLS identity join the session the first waiter opened.
        const reused = this.reuse(req, idKey);
        if (reused) return { allow: true, session: reused };
        const s = this.createSession(req, idKey, token, spec, backend, sessionId, d);
        if (s.closed) return deny(403, banDenial(s.closeReason));
        if (this.cluster !== undefined && !(await this.applyClusterLimits(s))) {
          return deny(403, banDenial(s.closeReason));
        }
        return { allow: true, session: s };
      }
      case 'deny': {
        this.remember({
          idKey,
          until: now + d.authDurationSec * 1000,
          reason: d.reason,
          ban: false,
          name: req.name,
          tokenHash: tokenHash(token),
          createdAt: now,
        });
        const denial = deny(403, 'backend_denied', d.reason);
        this.logDenied(req, denial, idKey, token);
        return denial;
      }
      case 'redirect':
        // AUTH-SPEC §2.4: no session, nothing cached beyond this request.
        this.log.info(
          {
            event: 'session_redirect',
            name: req.name,
            proto: req.proto,
            ip: req.ip,
            idKey,
            token_hash: tokenHash(token),
          },
          'session redirected',
        );
        return { allow: false, status: 302, reason: 'redirect', location: d.location };
      case 'unavailable':
        // AUTH-SPEC §4.2 / §4.3: nothing to keep for a session that never opened.
        // The client is told only that the session could not open; the log says why.
        this.logDenied(req, deny(403, 'failed_to_open_session', d.reason), idKey, token);
        return deny(403, 'failed_to_open_session');
    }
  }

  private createSession(
    req: ClientRequest,
    idKey: string,
    token: string,
    spec: AuthSpec | undefined,
    backend: AuthBackend | undefined,
    sessionId: string,
    d: Extract<AuthDecision, { kind: 'allow' }>,
  ): ManagedSession {
    const now = this.clock.now();
    const s = new ManagedSession(
      this,
      sessionId,
      idKey,
      ++this.seq,
      req.kind,
      req.proto,
      req.name,
      req.ip,
      token,
      now,
      req,
      spec,
      backend,
      d.authDurationSec,
    );
    s.userId = d.userId;
    s.maxSessions = d.maxSessions ?? spec?.maxSessions;
    s.unique = d.unique === true;
    this.store.add(s);
    this.log.info(
      {
        event: 'session_open',
        sid: s.id,
        idKey,
        kind: s.kind,
        name: s.name,
        proto: s.proto,
        ip: s.ip,
        user_id: s.userId,
        token_hash: s.tokenHash,
      },
      'session opened',
    );
    if (backend !== undefined) {
      this.scheduleCheck(s, d.retry === true ? retryDelayMs(1, d.authDurationSec) : undefined);
    }
    if (perRequest(s.proto)) this.armIdle(s);
    this.applyLimits(s, true);
    return s;
  }

  // ---------------------------------------------------------------------------------------
  // Backend calls

  private backendFor(spec: AuthSpec): AuthBackend {
    let b = this.backends.get(spec);
    if (b === undefined) {
      b = this.backendFactory(spec);
      this.backends.set(spec, b);
    }
    return b;
  }

  /**
   * One backend call under the spec's deadline on this manager's clock (AUTH-SPEC §1.2: 3 s
   * connect + response). Whatever the backend does, the caller gets a decision in time.
   */
  private callBackend(
    backend: AuthBackend,
    spec: AuthSpec,
    req: AuthRequest,
    kind: SessionKind,
  ): Promise<AuthDecision> {
    const ms = Math.max(1, spec.timeoutSec) * 1000;
    return new Promise<AuthDecision>((resolve) => {
      const timer = this.clock.setTimeout(() => resolve({ kind: 'unavailable', reason: 'timeout' }), ms);
      let p: Promise<AuthDecision>;
      try {
        p = backend.check(req, { kind });
      } catch {
        p = Promise.resolve({ kind: 'unavailable', reason: 'error' });
      }
      p.then(
        (d) => {
          this.clock.clearTimeout(timer);
          resolve(d);
        },
        () => {
          this.clock.clearTimeout(timer);
          resolve({ kind: 'unavailable', reason: 'error' });
        },
      );
    });
  }

  /** AUTH-SPEC §1.3 for a new session: request_number 0, the new session not yet counted (A25). */
  private newSessionRequest(req: ClientRequest, token: string, sessionId: string): AuthRequest {
    const r: AuthRequest = {
      name: req.name,
      proto: req.proto,
      ip: req.ip,
      request_type: 'new_session',
      request_number: 0,
      session_id: sessionId,
      stream_clients: this.store.streamClients(req.name),
      total_clients: this.store.totalClients(),
      token,
      qs: req.qs,
    };
    if (req.userAgent !== undefined) r.user_agent = req.userAgent;
    if (req.referer !== undefined) r.referer = req.referer;
    if (req.host !== undefined) r.host = req.host;
    return r;
  }

  private updateRequest(s: ManagedSession): AuthRequest {
    const r = this.newSessionRequest(s.req, s.token, s.id);
    r.request_type = 'update_session';
    r.request_number = s.requestNumber;
    r.duration = Math.floor((this.clock.now() - s.openedAt) / 1000);
    r.bytes = s.bytes;
    return r;
  }

  private applyOverride(name: string, partial: Record<string, unknown>): void {
    if (this.onConfigOverride === undefined) return;
    try {
      this.onConfigOverride(name, partial);
    } catch (err) {
      // AUTH-SPEC §2.3: a bad override is logged and ignored; the grant stands.
      this.log.warn(
        { event: 'config_override_failed', name, err: errName(err) },
        'backend config override ignored',
      );
    }
  }

  // ---------------------------------------------------------------------------------------
  // Re-checks (AUTH-SPEC §4.1, §4.3, §4.4)

  /** Persistent sessions get a timer; HLS sessions are checked by their next request. */
  private scheduleCheck(s: ManagedSession, delayMs?: number): void {
    if (s.closed || this.stopped) return;
    const delay = delayMs ?? s.authDurationSec * 1000;
    s.nextCheckAt = this.clock.now() + delay;
    if (s.recheckTimer !== undefined) this.clock.clearTimeout(s.recheckTimer);
    s.recheckTimer = undefined;
    if (perRequest(s.proto)) return;
    s.recheckTimer = this.clock.setTimeout(() => {
      s.recheckTimer = undefined;
      void this.recheck(s);
    }, delay);
  }

  /** Sends update_session and applies the answer; never throws. */
  async recheck(s: ManagedSession): Promise<void> {
    if (s.closed || s.checking || s.backend === undefined || s.spec === undefined || this.stopped) return;
    s.checking = true;
    s.requestNumber++;
    const d = await this.callBackend(s.backend, s.spec, this.updateRequest(s), s.kind);
    s.checking = false;
    if (s.closed || this.stopped) return;
    const now = this.clock.now();
    switch (d.kind) {
      case 'allow': {
        s.lastVerifyAt = now;
        s.failures = 0;
        s.authDurationSec = d.authDurationSec;
        if (d.userId !== undefined && d.userId !== s.userId) {
          const previous = s.userId;
          s.userId = d.userId;
          this.store.reindexUser(s, previous);
        }
        s.maxSessions = d.maxSessions ?? s.spec.maxSessions;
        if (d.config !== undefined) this.applyOverride(s.name, d.config);
        if (s.closed) return;
        this.scheduleCheck(s, d.retry === true ? retryDelayMs(1, d.authDurationSec) : undefined);
        // AUTH-SPEC §5.1: a re-check that lowers X-Max-Sessions is counted like a grant.
        this.applyLimits(s, false);
        return;
      }
      case 'redirect':
        // A running session cannot follow a redirect; as in the historical code a 302 is a grant.
        s.lastVerifyAt = now;
        s.failures = 0;
        this.scheduleCheck(s);
        return;
      case 'deny':
        this.remember({
          idKey: s.idKey,
          until: now + d.authDurationSec * 1000,
          reason: 'recheck_denied',
          ban: false,
          name: s.name,
          userId: s.userId,
          tokenHash: s.tokenHash,
          createdAt: now,
        });
        this.kill(s, 'recheck_denied');
        return;
      case 'unavailable':
        // AUTH-SPEC §4.3: keep the state, do not advance last_verify, back off.
        s.failures++;
        this.log.warn(
          { event: 'recheck_unavailable', sid: s.id, idKey: s.idKey, reason: d.reason, failures: s.failures },
          'auth backend unavailable; session kept',
        );
        this.scheduleCheck(s, retryDelayMs(s.failures, s.authDurationSec));
        return;
    }
  }

  touchSession(s: ManagedSession): void {
    if (s.closed) return;
    const now = this.clock.now();
    s.lastAccessAt = now;
    // AUTH-SPEC §4.1: an HLS request past the due time triggers the re-check in the background;
    // this request is still answered from the granted state.
    if (perRequest(s.proto) && now >= s.nextCheckAt && !s.checking && s.backend !== undefined) {
      void this.recheck(s);
    }
  }

  /** AUTH-SPEC §3.5 / A14: an HLS session closes after `httpSessionTimeout` without requests. */
  private armIdle(s: ManagedSession): void {
    const timeoutMs = this.config.httpSessionTimeout * 1000;
    const fire = (): void => {
      s.idleTimer = undefined;
      if (s.closed || this.stopped) return;
      const idle = this.clock.now() - s.lastAccessAt;
      if (idle >= timeoutMs) {
        this.closeSession(s, 'idle_timeout');
        return;
      }
      // touch() only stamps the time; the timer re-arms for the remainder, keeping requests cheap.
      s.idleTimer = this.clock.setTimeout(fire, timeoutMs - idle);
    };
    s.idleTimer = this.clock.setTimeout(fire, timeoutMs);
  }

  // ---------------------------------------------------------------------------------------
  // Limits (AUTH-SPEC §5)

  private applyLimits(s: ManagedSession, isNew: boolean): void {
    if (s.closed || s.userId === undefined || s.adminView) return;
    const userId = s.userId;
    // AUTH-SPEC A9: X-Unique (newest wins) takes precedence over X-Max-Sessions. Only a new
    // grant is "the newest"; an older session's re-check must not kick newer ones.
    if (s.unique) {
      if (isNew) {
        for (const o of uniqueLosers(counted(this.store.byUser(s.kind, userId)), s)) {
          this.ban(o, 'duplicated_user_id');
        }
      }
      return;
    }
    const max = s.maxSessions;
    // Counted first, listed only when over: most grants carry no limit or stay under it.
    if (max === undefined || this.store.userCount(s.kind, userId) <= max) return;
    const sessions = counted(this.store.byUser(s.kind, userId));
    if (sessions.length <= max) return;
    if (s.softLimitation) {
      this.startGrace(s.kind, userId, sessions);
      return;
    }
    for (const loser of sessionsOverLimit(sessions, max)) this.ban(loser, 'session_limit');
  }

  /** AUTH-SPEC §5.1 soft mode: wait, then recount and ban whatever is still in excess. */
  private startGrace(kind: SessionKind, userId: string, involved: ManagedSession[]): void {
    const key = `${kind}\n${userId}`;
    if (this.graceTimers.has(key)) return;
    const ms = softGraceMs(involved);
    this.log.info(
      { event: 'soft_limit_grace', user_id: userId, grace_ms: ms },
      'session limit exceeded; grace started',
    );
    this.graceTimers.set(
      key,
      this.clock.setTimeout(() => {
        this.graceTimers.delete(key);
        if (this.stopped) return;
        const now = counted(this.store.byUser(kind, userId));
        const newest = [...now].sort((a, b) => b.openedAt - a.openedAt || b.seq - a.seq)[0];
        const max = newest?.maxSessions;
        if (max === undefined) return;
        for (const loser of sessionsOverLimit(now, max)) this.ban(loser, 'session_limit');
      }, ms),
    );
  }

  /** Ends a session and bars its identity for its auth duration (AUTH-SPEC §4.5, §5.1, §5.2). */
  /** Caches a denial or ban here and, with a shared store, on every origin (AUTH-SPEC §4.5). */
  private remember(entry: BanEntry): void {
    this.store.setBan(entry);
    this.cluster?.setBan(entry);
  }

  /**
   * SPEC §7: limits across every origin sharing the store. X-Unique tells the other origins to
   * kick their sessions of the user; X-Max-Sessions refuses this session when it is among the
   * newest beyond the limit cluster-wide (newest loses, §5.1). Returns false when it was refused.
   */
  private async applyClusterLimits(s: ManagedSession): Promise<boolean> {
    const cluster = this.cluster;
    if (cluster === undefined || s.userId === undefined || s.adminView) return true;
    const counted = await cluster.register({
      id: s.id,
      kind: s.kind,
      userId: s.userId,
      openedAt: s.openedAt,
    });
    if (s.closed) return false;
    if (s.unique) {
      cluster.publishUnique({ kind: s.kind, userId: s.userId, winner: s.id });
      return true;
    }
    const max = s.maxSessions;
    if (counted === undefined || max === undefined || counted.total <= max) return true;
    if (counted.newer >= counted.total - max) return true;
    this.ban(s, 'session_limit');
    return false;
  }

  /** Another origin granted an X-Unique session: this origin's sessions of that user lose. */
  private onUniqueKick(kick: UniqueKick): void {
    for (const o of this.store.byUser(kick.kind, kick.userId)) {
      if (o.id !== kick.winner && !o.closed && !o.adminView) this.ban(o, 'duplicated_user_id');
    }
  }

  /** Wires the shared store's X-Unique channel to this manager. */
  uniqueHandler(): (kick: UniqueKick) => void {
    return (kick) => this.onUniqueKick(kick);
  }

  private ban(s: ManagedSession, reason: 'session_limit' | 'duplicated_user_id'): void {
    const now = this.clock.now();
    this.remember({
      idKey: s.idKey,
      until: now + s.authDurationSec * 1000,
      reason,
      ban: true,
      name: s.name,
      userId: s.userId,
      tokenHash: s.tokenHash,
      createdAt: now,
    });
    const why = reason === 'session_limit' ? 'exceeded session limit' : 'unique user id';
    this.log.warn(
      { event: 'session_ban', sid: s.id, idKey: s.idKey, user_id: s.userId, token_hash: s.tokenHash, reason },
      `Ban session_id ${s.idKey} for user_id ${s.userId ?? ''} and token_hash ${s.tokenHash} due to ${why}`,
    );
    this.kill(s, reason);
  }

  // ---------------------------------------------------------------------------------------
  // Closing

  /** The manager ends a session: close it, then let the adapter drop the client (§5.3). */
  private kill(s: ManagedSession, reason: CloseReason): void {
    this.closeSession(s, reason);
    s.runKillers(reason, (err) =>
      this.log.warn(
        { event: 'kill_callback_failed', sid: s.id, err: errName(err) },
        'session kill callback threw',
      ),
    );
  }

  closeSession(s: ManagedSession, reason: CloseReason): void {
    if (s.closed) return;
    s.closed = true;
    s.closeReason = reason;
    if (s.recheckTimer !== undefined) this.clock.clearTimeout(s.recheckTimer);
    if (s.idleTimer !== undefined) this.clock.clearTimeout(s.idleTimer);
    s.recheckTimer = s.idleTimer = undefined;
    this.store.remove(s);
    this.cluster?.unregister(s.id);
    const closedAt = this.clock.now();
    const row: HistoryRow = {
      id: s.id,
      user_id: s.userId ?? null,
      name: s.name,
      proto: s.proto,
      ip: s.ip,
      token_hash: s.tokenHash,
      bytes: s.bytes,
      opened_at: s.openedAt,
      closed_at: closedAt,
      close_reason: reason,
      user_agent: s.req.userAgent ?? null,
      referer: s.req.referer ?? null,
    };
    try {
      this.history.write(row);
    } catch (err) {
      this.log.error({ event: 'history_write_failed', sid: s.id, err: errName(err) }, 'history write failed');
    }
    this.log.info(
      {
        event: 'session_close',
        sid: s.id,
        idKey: s.idKey,
        kind: s.kind,
        name: s.name,
        proto: s.proto,
        ip: s.ip,
        user_id: s.userId,
        token_hash: s.tokenHash,
        bytes: s.bytes,
        duration_ms: closedAt - s.openedAt,
        reason,
      },
      'session closed',
    );
  }

  private logDenied(
    req: ClientRequest,
    denial: Denial,
    idKey: string | undefined,
    token: string | undefined,
  ): void {
    this.log.info(
      {
        event: 'session_denied',
        kind: req.kind,
        name: req.name,
        proto: req.proto,
        ip: req.ip,
        idKey,
        token_hash: tokenHash(token),
        reason: denial.reason,
        ...(denial.detail !== undefined ? { detail: denial.detail } : {}),
      },
      'session denied',
    );
  }

  // ---------------------------------------------------------------------------------------
  // Operations for the API, stats and the composition root

  list(filter: SessionFilter = {}): ManagedSession[] {
    const base = filter.name !== undefined ? this.store.byName(filter.name) : this.store.all();
    return base
      .filter(
        (s) =>
          (filter.userId === undefined || s.userId === filter.userId) &&
          (filter.proto === undefined || s.proto === filter.proto),
      )
      .sort((a, b) => a.openedAt - b.openedAt || a.seq - b.seq);
  }

  get(id: string): ManagedSession | undefined {
    return this.store.get(id);
  }

  /** `DELETE /api/sessions/{id}`: closes without banning (AUTH-SPEC §9.1); false when unknown. */
  kick(id: string): boolean {
    const s = this.store.get(id);
    if (s === undefined) return false;
    this.kill(s, 'kicked');
    return true;
  }

  /**
   * `POST /api/sessions/reauth?name=` (AUTH-SPEC §1.1 item 3): an immediate update_session for
   * every open session of the stream. Returns the estimated count, or undefined for an unknown stream.
   */
  reauth(name: string): number | undefined {
    if (this.policy(name) === undefined && this.store.byName(name).length === 0) return undefined;
    const sessions = this.store.byName(name);
    for (const s of sessions) void this.recheck(s);
    return sessions.length;
  }

  /** `DELETE /api/bans/{key}`: the only way to lift a denial or ban early (AUTH-SPEC §4.5). */
  unban(idKey: string): boolean {
    const had = this.store.clearBan(idKey);
    this.cluster?.clearBan(idKey);
    if (had) this.log.info({ event: 'ban_cleared', idKey }, 'ban cleared');
    return had;
  }

  bans(): BanEntry[] {
    return this.store.bans(this.clock.now());
  }

  counts(name: string): ProtoCounts {
    return this.store.counts(name);
  }

  /** Shutdown: ends every session through the adapters' kill callbacks, writing history rows. */
  closeAll(reason: CloseReason): void {
    for (const s of this.store.all()) this.kill(s, reason);
    this.history.flush();
  }

  /** A config override switched `proto` off for `name` (AUTH-SPEC §8.1 step 5). */
  closeProtocol(name: string, proto: Proto, reason: CloseReason = 'config_changed'): number {
    const victims = this.store.byName(name).filter((s) => s.kind === 'play' && s.proto === proto);
    for (const s of victims) this.kill(s, reason);
    return victims.length;
  }

  /**
   * A reloaded config: new auth specs get new backends on their next use (backends are cached
   * per spec object); open sessions keep the backend that granted them.
   */
  reconfigure(config: Config): void {
    this.config = config;
  }

  /** Stops every timer; sessions stay as they are (call closeAll first on shutdown). */
  close(): void {
    this.stopped = true;
    if (this.sweepTimer !== undefined) this.clock.clearTimeout(this.sweepTimer);
    this.sweepTimer = undefined;
    for (const t of this.graceTimers.values()) this.clock.clearTimeout(t);
    this.graceTimers.clear();
    for (const s of this.store.all()) {
      if (s.recheckTimer !== undefined) this.clock.clearTimeout(s.recheckTimer);
      if (s.idleTimer !== undefined) this.clock.clearTimeout(s.idleTimer);
      s.recheckTimer = s.idleTimer = undefined;
    }
  }

  private armSweep(): void {
    this.sweepTimer = this.clock.setTimeout(() => {
      this.store.sweep(this.clock.now());
      if (!this.stopped) this.armSweep();
    }, SWEEP_MS);
  }
}

/** A session that closed while being admitted lost to a limit; the client is told which. */
function banDenial(reason: CloseReason | undefined): DenyReason {
  return reason === 'duplicated_user_id' ? 'duplicated_user_id' : 'session_limit';
}

/** AUTH-SPEC §7.5: admin view sessions are never counted against limits. */
function counted(sessions: ManagedSession[]): ManagedSession[] {
  return sessions.some((s) => s.adminView) ? sessions.filter((s) => !s.adminView) : sessions;
}

function errName(err: unknown): string {
  if (err instanceof Error) return err.name;
  return typeof err;
}
