/**
 * A granted session: the state AUTH-SPEC §11 `SessionRecord` lists, the adapter's kill hooks,
 * and the history row it leaves when it closes. The manager owns its lifecycle; the session
 * only calls back into its host for what touches shared state (touch, close).
 *
 * Memory: a server may hold 100 000 HLS sessions (bench/session-memory.bench.ts), so a session
 * keeps only what it uses after admission — the request's strings, not the request object and
 * its parsed query — computes its token hash on first use, allocates its kill-hook list with
 * the first hook, and has no timer or closure of its own for the idle close (rechecks.ts keeps
 * one deadline queue for all of them).
 */
import type { AuthBackend, DvrRange } from '../auth/backend.js';
import type { AuthSpec } from '../config/types.js';
import type { Proto, SessionKind } from '../core/proto.js';
import type { CloseReason } from '../core/reasons.js';
import { tokenHash } from '../core/secrets.js';
import type { TimerHandle } from '../clock.js';
import type { HistoryRow } from './history.js';
import { ownString } from './identity.js';
import type { ClientRequest, Decision, Session } from './types.js';

/** Header values many sessions repeat (User-Agent, Host, Referer), kept once each. */
const sharedValues = new Map<string, string>();
const SHARED_VALUES_MAX = 1024;

/**
 * One copy of a repeated header value: thousands of viewers of a stream send the same few
 * User-Agent and Host strings, and Node's parser makes a new string for each request. Past
 * `SHARED_VALUES_MAX` distinct values the table starts over, so a client sending a new
 * User-Agent with every request cannot grow it.
 */
function shared(v: string | undefined): string | undefined {
  if (v === undefined) return v;
  const known = sharedValues.get(v);
  if (known !== undefined) return known;
  if (sharedValues.size >= SHARED_VALUES_MAX) sharedValues.clear();
  const own = ownString(v);
  sharedValues.set(own, own);
  return own;
}

/** The manager's internals a session calls back into. */
export interface SessionHost {
  touchSession(s: ManagedSession): void;
  closeSession(s: ManagedSession, reason: CloseReason): void;
  /** Admission joined a backend call already in flight for the identity (single-flight). */
  coalesced?(): void;
}

/**
 * Optional hooks for metrics and lifecycle events (src/metrics, src/events). The manager
 * calls them after its own work is done and never lets one throw into a client's admission;
 * without an observer each hook site costs one property check.
 */
export interface SessionObserver {
  /** `open()` answered; `fresh` is true when the answer granted a session that did not exist before. */
  decided?(req: ClientRequest, decision: Decision, fresh: boolean): void;
  closed?(s: ManagedSession, reason: CloseReason, closedAt: number): void;
  /** The manager (not the client) ended the session: kick, ban, re-check denied, shutdown. */
  killed?(s: ManagedSession, reason: CloseReason): void;
  /** A backend call settled: `outcome` is the decision kind, or `timeout` / `error`. */
  backendCall?(spec: AuthSpec, requestType: string, outcome: string, seconds: number): void;
  coalesced?(): void;
}

/** What the backend (or the local policy) granted: the values limits and re-checks read. */
export interface Grant {
  userId?: string;
  maxSessions?: number;
  unique?: boolean;
  authDurationSec: number;
  allowedDvrRanges?: DvrRange[];
}

export interface SessionInit {
  host: SessionHost;
  /** UUID sent to the backend as `session_id`. */
  id: string;
  idKey: string;
  /** Creation order; breaks ties between sessions opened in the same millisecond. */
  seq: number;
  req: ClientRequest;
  /** The client's token, or the one generated for it. */
  token: string;
  openedAt: number;
  /** The spec and backend that granted it; both absent for sessions no backend re-checks. */
  spec?: AuthSpec;
  backend?: AuthBackend;
  grant: Grant;
  /** Opened with an admin view token (AUTH-SPEC §7.5). */
  adminView?: boolean;
}

export class ManagedSession implements Session {
  readonly id: string;
  readonly idKey: string;
  readonly seq: number;
  readonly kind: SessionKind;
  readonly proto: Proto;
  readonly name: string;
  readonly ip: string;
  readonly token: string;
  readonly openedAt: number;
  /** The client's query string and headers, for update_session (AUTH-SPEC §1.3) and history. */
  readonly qs: string;
  /** Set for an archive session (AUTH-SPEC §3.5): re-checks ask the backend about the archive too. */
  readonly dvr: ClientRequest['dvr'];
  readonly userAgent: string | undefined;
  readonly referer: string | undefined;
  readonly host: string | undefined;
  readonly spec: AuthSpec | undefined;
  readonly backend: AuthBackend | undefined;
  /** Recorded, never counted against limits (AUTH-SPEC §7.5). */
  readonly adminView: boolean;
  userId: string | undefined;
  maxSessions: number | undefined;
  unique: boolean;
  authDurationSec: number;
  allowedDvrRanges: DvrRange[] | undefined;
  bytes = 0;
  lastAccessAt: number;
  lastVerifyAt: number;
  requestNumber = 0;
  /** Consecutive unavailable answers to re-checks (AUTH-SPEC §4.3 back-off). */
  failures = 0;
  /** When the next update_session is due (persistent: timer; per request: on the next request). */
  nextCheckAt: number;
  checking = false;
  closed = false;
  /** An observer has been told this session opened (HLS requests reuse one session). */
  observed = false;
  closeReason: CloseReason | undefined;
  /** Set when the manager (not the adapter) ended the session; late onKill registrations still fire. */
  killReason: CloseReason | undefined;
  recheckTimer: TimerHandle | undefined;
  /** The slot of a per-request session in the idle queue (-1: none). */
  idleSlot = -1;
  private readonly sessionHost: SessionHost;
  private killers: ((reason: CloseReason) => void)[] | undefined;
  private hashOfToken: string | undefined;

  constructor(init: SessionInit) {
    this.sessionHost = init.host;
    this.id = init.id;
    this.idKey = init.idKey;
    this.seq = init.seq;
    const req = init.req;
    this.kind = req.kind;
    this.proto = req.proto;
    this.name = req.name;
    this.ip = req.ip;
    this.qs = ownString(req.qs);
    this.dvr = req.dvr;
    this.userAgent = shared(req.userAgent);
    this.referer = shared(req.referer);
    this.host = shared(req.host);
    this.token = ownString(init.token);
    this.openedAt = init.openedAt;
    this.spec = init.spec;
    this.backend = init.backend;
    this.adminView = init.adminView === true;
    this.userId = init.grant.userId;
    this.maxSessions = init.grant.maxSessions ?? init.spec?.maxSessions;
    this.unique = init.grant.unique === true;
    this.authDurationSec = init.grant.authDurationSec;
    this.allowedDvrRanges = init.grant.allowedDvrRanges;
    this.lastAccessAt = init.openedAt;
    this.lastVerifyAt = init.openedAt;
    this.nextCheckAt = init.openedAt + init.grant.authDurationSec * 1000;
  }

  /** SPEC §7: the short hash logged, stored and shown in place of the token. */
  get tokenHash(): string {
    return (this.hashOfToken ??= tokenHash(this.token) ?? '');
  }

  get softLimitation(): boolean {
    return this.spec?.softLimitation ?? false;
  }

  addBytes(n: number): void {
    if (n > 0) this.bytes += n;
  }

  touch(): void {
    this.sessionHost.touchSession(this);
  }

  onKill(kill: (reason: CloseReason) => void): void {
    if (this.killReason !== undefined) {
      kill(this.killReason);
      return;
    }
    if (!this.closed) (this.killers ??= []).push(kill);
  }

  close(reason: CloseReason): void {
    this.sessionHost.closeSession(this, reason);
  }

  /** Runs the adapter's kill callbacks once; a throwing callback does not stop the others. */
  runKillers(reason: CloseReason, onError: (err: unknown) => void): void {
    this.killReason = reason;
    const killers = this.killers ?? [];
    this.killers = undefined;
    for (const fn of killers) {
      try {
        fn(reason);
      } catch (err) {
        onError(err);
      }
    }
  }

  /** What every log line about this session carries: who and what, a token hash, never the token. */
  logFields(): Record<string, unknown> {
    return {
      sid: this.id,
      idKey: this.idKey,
      kind: this.kind,
      name: this.name,
      proto: this.proto,
      ip: this.ip,
      user_id: this.userId,
      token_hash: this.tokenHash,
    };
  }

  /** The SPEC §7 history record: a token hash, never the token. */
  historyRow(closedAt: number, reason: CloseReason): HistoryRow {
    return {
      id: this.id,
      user_id: this.userId ?? null,
      name: this.name,
      proto: this.proto,
      ip: this.ip,
      token_hash: this.tokenHash,
      bytes: this.bytes,
      opened_at: this.openedAt,
      closed_at: closedAt,
      close_reason: reason,
      user_agent: this.userAgent ?? null,
      referer: this.referer ?? null,
    };
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
      user_agent: this.userAgent ?? null,
      referer: this.referer ?? null,
    };
  }
}

/** AUTH-SPEC §7.5: admin view sessions are never counted against limits. */
export function counted(sessions: ManagedSession[]): ManagedSession[] {
  return sessions.some((s) => s.adminView) ? sessions.filter((s) => !s.adminView) : sessions;
}

export function errName(err: unknown): string {
  if (err instanceof Error) return err.name;
  return typeof err;
}
