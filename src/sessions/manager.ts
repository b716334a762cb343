/**
 * The session manager every protocol adapter asks before media flows (ARCHITECTURE.md): one
 * object behind the `SessionManager` interface, built from a few rooms —
 *   admission.ts     request → local checks, caches, one backend call per identity → grant
 *   backend-call.ts  the backend call with its deadline, and its AUTH-SPEC §1.3 parameters
 *   rechecks.ts      update_session on schedule, retries with back-off, idle closes
 *   enforcement.ts   X-Max-Sessions, X-Unique, bans and the cluster store
 *   rate-limit.ts    the per-address budget of new-session backend calls
 *   denial-log.ts    denial log lines, aggregated per reason and address
 *   session.ts       the granted session and its history row
 * This file wires them, closes sessions (history row + log) and answers the API.
 *
 * State changes happen synchronously between awaits; backend calls are the only awaited work
 * and each is bounded by its own deadline, so a slow backend delays only the clients waiting
 * on that identity.
 */
import type { Logger } from 'pino';
import type { AuthBackend } from '../auth/backend.js';
import { createBackend } from '../auth/index.js';
import { systemClock, type Clock, type TimerHandle } from '../clock.js';
import type { AuthSpec, Config } from '../config/types.js';
import type { Proto } from '../core/proto.js';
import type { CloseReason } from '../core/reasons.js';
import { Admission } from './admission.js';
import { BackendCalls } from './backend-call.js';
import type { ClusterStore, UniqueKick } from './cluster.js';
import { DenialLog } from './denial-log.js';
import { Enforcement } from './enforcement.js';
import type { HistoryStore } from './history.js';
import { IpRateLimiter } from './rate-limit.js';
import { Rechecks } from './rechecks.js';
import { errName, type ManagedSession, type SessionHost, type SessionObserver } from './session.js';
import {
  MemoryStore,
  type BanEntry,
  type DenialCacheStats,
  type ProtoCounts,
  type SessionStore,
} from './store.js';
import type { ClientRequest, Decision, SessionFilter, SessionManager, StreamPolicy } from './types.js';

/**
 * What applying a backend's `config` to a stream did (the stream validates and applies it
 * synchronously; AUTH-SPEC §8.1). The manager closes the sessions of `closedProtocols`.
 */
export type ConfigOverrideResult =
  { ok: false; error: string } | { ok: true; changed: boolean; closedProtocols: readonly Proto[] };

export interface SessionManagerOptions {
  config: Config;
  /** Resolves a stream name to its policy; undefined means the stream does not exist (404). */
  policy: (name: string) => StreamPolicy | undefined;
  clock?: Clock;
  log: Logger;
  history: HistoryStore;
  /** Applies a backend's `config` to the named stream; undefined when the stream is not running. */
  onConfigOverride?: (name: string, partial: Record<string, unknown>) => ConfigOverrideResult | undefined;
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

/** How often expired denial entries and idle rate-limit buckets are dropped from memory. */
const SWEEP_MS = 60_000;

/** The bounded caches' sizes, for `/metrics`. */
export interface SessionCacheStats {
  denialCache: DenialCacheStats;
  /** Client addresses (IPv6: /64 prefixes) whose new-session budget is tracked (not all are over it). */
  rateLimitBuckets: number;
}

export class Sessions implements SessionManager, SessionHost {
  readonly store: SessionStore<ManagedSession>;
  private config: Config;
  private readonly policy: (name: string) => StreamPolicy | undefined;
  private readonly clock: Clock;
  private readonly log: Logger;
  private readonly history: HistoryStore;
  private readonly cluster: ClusterStore | undefined;
  private readonly onConfigOverride: SessionManagerOptions['onConfigOverride'];
  private readonly enforcement: Enforcement;
  private readonly rechecks: Rechecks;
  private readonly admission: Admission;
  private readonly rateLimit: IpRateLimiter;
  private readonly denials: DenialLog;
  private sweepTimer: TimerHandle | undefined;
  private stopped = false;
  /** Metrics and lifecycle events (set by the composition root); absent, nothing is observed. */
  observer: SessionObserver | undefined;

  constructor(opts: SessionManagerOptions) {
    this.config = opts.config;
    this.policy = opts.policy;
    this.clock = opts.clock ?? systemClock;
    this.log = opts.log;
    this.history = opts.history;
    this.cluster = opts.cluster;
    this.onConfigOverride = opts.onConfigOverride;
    const store = (this.store =
      opts.store ??
      new MemoryStore<ManagedSession>({ denialCacheBytes: () => this.config.limits.denial_cache_bytes }));
    this.rateLimit = new IpRateLimiter(() => ({
      burst: this.config.limits.new_sessions_per_ip_burst,
      perSecond: this.config.limits.new_sessions_per_ip_per_second,
    }));
    this.denials = new DenialLog(this.clock, this.log);
    const config = (): Config => this.config;
    const kill = (s: ManagedSession, reason: CloseReason): void => this.kill(s, reason);
    const applyOverride = (name: string, partial: Record<string, unknown>): void =>
      this.applyOverride(name, partial);
    const factory =
      opts.backendFactory ??
      ((spec: AuthSpec) =>
        createBackend(spec, this.config, {
          warn: (msg) => this.log.warn({ event: 'auth_config' }, msg),
          now: () => this.clock.now(),
        }));
    // Backends are built on first use, after the composition root has set the observer.
    const calls = new BackendCalls(
      (spec) =>
        this.observer?.backendCall ? timedBackend(factory(spec), spec, this.observer) : factory(spec),
      this.clock,
      store,
    );
    const common = { store, clock: this.clock, log: this.log };
    this.enforcement = new Enforcement({ ...common, cluster: this.cluster, kill });
    this.rechecks = new Rechecks({
      ...common,
      config,
      calls,
      enforcement: this.enforcement,
      applyOverride,
      kill,
      closeSession: (s, reason) => this.closeSession(s, reason),
    });
    this.admission = new Admission({
      ...common,
      config,
      policy: this.policy,
      cluster: this.cluster,
      host: this,
      calls,
      rechecks: this.rechecks,
      enforcement: this.enforcement,
      rateLimit: this.rateLimit,
      denials: this.denials,
      adminView: opts.adminView,
      applyOverride,
    });
    this.armSweep();
  }

  open(req: ClientRequest): Promise<Decision> {
    const o = this.observer;
    if (o?.decided === undefined) return this.admission.open(req);
    return this.admission.open(req).then((d) => {
      let fresh = false;
      if (d.allow) {
        const s = d.session as ManagedSession;
        fresh = !s.observed;
        s.observed = true;
      }
      this.notify(() => o.decided?.(req, d, fresh));
      return d;
    });
  }

  /** Runs an observer hook; a throwing observer is logged, never felt by the client. */
  private notify(fn: () => void): void {
    try {
      fn();
    } catch (err) {
      this.log.warn({ event: 'observer_failed', err: errName(err) }, 'session observer threw');
    }
  }

  /** SessionHost: admission joined a backend call in flight. */
  coalesced(): void {
    const o = this.observer;
    if (o?.coalesced) this.notify(() => o.coalesced?.());
  }

  /** Sends update_session now and applies the answer; never throws. */
  recheck(s: ManagedSession): Promise<void> {
    return this.rechecks.recheck(s);
  }

  touchSession(s: ManagedSession): void {
    this.rechecks.touch(s);
  }

  /** Wires the shared store's X-Unique channel to this manager. */
  uniqueHandler(): (kick: UniqueKick) => void {
    return (kick) => this.enforcement.onUniqueKick(kick);
  }

  /**
   * AUTH-SPEC §8.1: the stream applies a backend's `config` synchronously; the sessions of a
   * protocol it switched off are closed here. AUTH-SPEC §2.3: a bad override is logged and
   * ignored; the grant stands.
   */
  private applyOverride(name: string, partial: Record<string, unknown>): void {
    if (this.onConfigOverride === undefined) return;
    let result: ConfigOverrideResult | undefined;
    try {
      result = this.onConfigOverride(name, partial);
    } catch (err) {
      this.log.warn(
        { event: 'config_override_failed', name, err: errName(err) },
        'backend config override ignored',
      );
      return;
    }
    if (result === undefined) return;
    if (!result.ok) {
      this.log.warn(
        { event: 'config_override_refused', name, error: result.error },
        'backend config override ignored',
      );
      return;
    }
    if (!result.changed) return;
    this.log.info(
      { event: 'config_override', stream: name, closedProtocols: result.closedProtocols },
      'stream config overridden by backend',
    );
    for (const proto of result.closedProtocols) this.closeProtocol(name, proto, 'config_changed');
  }

  // ---------------------------------------------------------------------------------------
  // Closing

  /** The manager ends a session: close it, then let the adapter drop the client (§5.3). */
  private kill(s: ManagedSession, reason: CloseReason): void {
    const o = this.observer;
    if (o?.killed && !s.closed) this.notify(() => o.killed?.(s, reason));
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
    this.rechecks.clearTimers(s);
    this.store.remove(s);
    this.cluster?.unregister(s.id);
    const closedAt = this.clock.now();
    try {
      this.history.write(s.historyRow(closedAt, reason));
    } catch (err) {
      this.log.error({ event: 'history_write_failed', sid: s.id, err: errName(err) }, 'history write failed');
    }
    this.log.info(
      {
        event: 'session_close',
        ...s.logFields(),
        bytes: s.bytes,
        duration_ms: closedAt - s.openedAt,
        reason,
      },
      'session closed',
    );
    const o = this.observer;
    if (o?.closed) this.notify(() => o.closed?.(s, reason, closedAt));
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
    for (const s of sessions) void this.rechecks.recheck(s);
    return sessions.length;
  }

  /**
   * `POST /api/bans` (the admin UI's ban button): bans the session's identity for `seconds`
   * on this origin and the shared store, then closes it as `kicked`. False when unknown.
   */
  ban(id: string, seconds: number): boolean {
    const s = this.store.get(id);
    if (s === undefined) return false;
    const now = this.clock.now();
    this.enforcement.remember({
      idKey: s.idKey,
      until: now + seconds * 1000,
      reason: 'admin_ban',
      ban: true,
      name: s.name,
      ...(s.userId !== undefined ? { userId: s.userId } : {}),
      tokenHash: s.tokenHash,
      createdAt: now,
    });
    this.log.info({ event: 'ban_set', ...s.logFields(), seconds }, 'identity banned by an operator');
    this.kill(s, 'kicked');
    return true;
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

  /** Sizes of the denial/ban cache and the rate-limit buckets, for `/metrics`. */
  cacheStats(): SessionCacheStats {
    return {
      denialCache: this.store.denialCacheStats(),
      rateLimitBuckets: this.rateLimit.size,
    };
  }

  /** Shutdown: ends every session through the adapters' kill callbacks, writing history rows. */
  closeAll(reason: CloseReason): void {
    for (const s of this.store.all()) this.kill(s, reason);
  }

  /** Ends the play sessions of `proto` on `name` (a backend override switched it off, AUTH-SPEC §8.1 step 5). */
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
    this.enforcement.close();
    this.rechecks.close();
    this.denials.close();
    for (const s of this.store.all()) this.rechecks.clearTimers(s);
  }

  private armSweep(): void {
    this.sweepTimer = this.clock.setTimeout(() => {
      const now = this.clock.now();
      this.store.sweep(now);
      this.rateLimit.sweep(now);
      if (!this.stopped) this.armSweep();
    }, SWEEP_MS);
  }
}

/** Wraps a backend so that each call's latency and outcome reach the observer. */
function timedBackend(backend: AuthBackend, spec: AuthSpec, observer: SessionObserver): AuthBackend {
  const deadlineMs = Math.max(1, spec.timeoutSec) * 1000;
  return {
    check(req, ctx) {
      const t0 = performance.now();
      const report = (outcome: string): void => {
        const ms = performance.now() - t0;
        try {
          observer.backendCall?.(spec, req.request_type, ms >= deadlineMs ? 'timeout' : outcome, ms / 1000);
        } catch {
          // Metrics never decide a session.
        }
      };
      const p = backend.check(req, ctx);
      p.then(
        (d) => report(d.kind === 'unavailable' && d.reason === 'timeout' ? 'timeout' : d.kind),
        () => report('error'),
      );
      return p;
    },
  };
}
