/**
 * Admission: how a ClientRequest becomes a granted session or a refusal, in AUTH-SPEC order —
 * local checks (stream, protocol switch, publish password, token, domain lock), admin view
 * tokens (§7.5), the denial/ban cache (§4.5), reuse of a per-request session (§3.5), the ban
 * list other origins share (SPEC §7), then one backend call per identity (single-flight,
 * §1.1 item 5) within the client address's budget (rate-limit.ts) and the grant, which
 * counts and applies limits in the same turn of the event loop so that concurrent grants
 * cannot both slip under a limit.
 */
import type { Logger } from 'pino';
import type { AuthBackend, AuthDecision } from '../auth/backend.js';
import { domainAllowed } from '../auth/rules.js';
import type { Clock } from '../clock.js';
import { protocolAllowed } from '../config/resolve.js';
import type { AuthSpec, Config } from '../config/types.js';
import { countLimitHit } from '../core/limits.js';
import { perRequest } from '../core/proto.js';
import type { CloseReason, DenyReason } from '../core/reasons.js';
import { safeEqual, tokenHash } from '../core/secrets.js';
import { DEFAULT_SESSION_KEYS } from '../core/session-keys.js';
import type { BackendCalls } from './backend-call.js';
import type { ClusterStore } from './cluster.js';
import type { DenialLog } from './denial-log.js';
import type { Enforcement } from './enforcement.js';
import { generateToken, identityKey, sessionId as newSessionId } from './identity.js';
import { retryDelayMs } from './limits.js';
import type { IpRateLimiter } from './rate-limit.js';
import { ADMIN_VIEW_USER_ID } from '../tokens/admin-view.js';
import type { Rechecks } from './rechecks.js';
import { ManagedSession, type Grant, type SessionHost } from './session.js';
import type { SessionStore } from './store.js';
import type { ClientRequest, Decision, Denial, StreamPolicy } from './types.js';

export interface AdmissionDeps {
  config: () => Config;
  policy: (name: string) => StreamPolicy | undefined;
  store: SessionStore<ManagedSession>;
  cluster: ClusterStore | undefined;
  clock: Clock;
  log: Logger;
  host: SessionHost;
  calls: BackendCalls;
  rechecks: Rechecks;
  enforcement: Enforcement;
  /** Budget of new-session backend calls per client address. */
  rateLimit: IpRateLimiter;
  denials: DenialLog;
  adminView: { verify(token: string, config: Config): boolean } | undefined;
  /** A backend's `config` in a grant (AUTH-SPEC §8.1), applied before the session opens. */
  applyOverride(name: string, partial: Record<string, unknown>): void;
}

/** Concurrent first requests of one identity wait on one backend call. */
interface Flight {
  decision: Promise<AuthDecision>;
  sessionId: string;
  idUsed: boolean;
}

/** Result of the local checks that run before any backend or cache lookup. */
type Prepared =
  { ok: false; denial: Denial } | { ok: true; spec: AuthSpec | undefined; token: string; idKey: string };

export function deny(status: 403 | 404, reason: DenyReason, detail?: string): Denial {
  return detail === undefined || detail === reason
    ? { allow: false, status, reason }
    : { allow: false, status, reason, detail };
}

export class Admission {
  private readonly inflight = new Map<string, Flight>();
  private seq = 0;

  constructor(private readonly deps: AdmissionDeps) {}

  async open(req: ClientRequest): Promise<Decision> {
    const { store, clock, config } = this.deps;
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
      this.deps.adminView?.verify(token, config()) === true
    ) {
      return this.openAdminView(req, idKey, token);
    }

    // AUTH-SPEC §4.5: a cached denial or ban answers without asking the backend.
    const ban = store.getBan(idKey, clock.now());
    if (ban !== undefined) {
      const denial = deny(403, ban.ban ? 'banned' : 'cached_negative');
      this.logDenied(req, denial, idKey, token);
      return denial;
    }

    const reused = this.reuse(req, idKey);
    if (reused) return { allow: true, session: reused };

    // A ban another origin recorded holds here too (SPEC §7); only new identities pay the lookup.
    if (this.deps.cluster !== undefined) {
      const remote = await this.deps.cluster.getBan(idKey);
      if (remote !== undefined && remote.until > clock.now()) {
        store.setBan(remote);
        const denial = deny(403, remote.ban ? 'banned' : 'cached_negative');
        this.logDenied(req, denial, idKey, token);
        return denial;
      }
    }

    // `on_play true` or no hook at all: a session (with its history row), no backend call.
    if (spec === undefined || spec.url === 'true') {
      const s = this.grant(req, idKey, token, newSessionId(), {
        authDurationSec: config().defaultAuthDuration,
      });
      return { allow: true, session: s };
    }

    const { calls } = this.deps;
    const backend = calls.backendFor(spec);
    let flight = this.inflight.get(idKey);
    if (flight !== undefined) this.deps.host.coalesced?.();
    if (flight === undefined) {
      const waitMs = this.deps.rateLimit.take(req.ip, clock.now());
      if (waitMs > 0) {
        countLimitHit('new_sessions_per_ip_per_second');
        const denial: Denial = {
          allow: false,
          status: 429,
          reason: 'rate_limited',
          retryAfterSec: Math.ceil(waitMs / 1000),
        };
        this.logDenied(req, denial, idKey, token);
        return denial;
      }
      const sessionId = newSessionId();
      const f: Flight = {
        sessionId,
        idUsed: false,
        decision: calls.call(backend, spec, calls.newSessionRequest(req, token, sessionId), req.kind),
      };
      this.inflight.set(idKey, f);
      void f.decision.finally(() => {
        if (this.inflight.get(idKey) === f) this.inflight.delete(idKey);
      });
      flight = f;
    }
    const d = await flight.decision;
    let sessionId: string;
    if (!flight.idUsed) {
      flight.idUsed = true;
      sessionId = flight.sessionId;
    } else {
      sessionId = newSessionId();
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
    const s = this.grant(
      req,
      idKey,
      token,
      newSessionId(),
      { userId: ADMIN_VIEW_USER_ID, authDurationSec: this.deps.config().defaultAuthDuration },
      { adminView: true },
    );
    this.deps.log.info(
      { event: 'admin_view', sid: s.id, name: s.name, proto: s.proto, ip: s.ip },
      'admin view session',
    );
    return { allow: true, session: s };
  }

  /** Checks that need no backend and no cache, in AUTH-SPEC §6.5 / §7.3 / §8.2 order. */
  private prepare(req: ClientRequest): Prepared {
    const config = this.deps.config();
    const policy = this.deps.policy(req.name);
    if (policy === undefined) return { ok: false, denial: deny(404, 'stream_not_found') };
    if (req.kind === 'play' && !protocolAllowed(policy.protocols, req.proto)) {
      return { ok: false, denial: deny(403, 'protocol_disabled') };
    }
    const spec =
      req.kind === 'play' ? (policy.onPlay ?? config.onPlay) : (policy.onPublish ?? config.onPublish);
    if (req.kind === 'publish' && policy.password !== undefined) {
      const given = req.query.get('password');
      const proved = given === null && req.passwordProof?.(policy.password) === true;
      if (!proved && (given === null || !safeEqual(given, policy.password))) {
        return { ok: false, denial: deny(403, 'wrong_password') };
      }
    } else if (req.kind === 'publish' && req.passwordProof) {
      // A username/password login to a stream without a password cannot be verified: refusing it
      // beats letting any password in.
      return { ok: false, denial: deny(403, 'wrong_password') };
    }
    const needsBackend = spec !== undefined && spec.url !== 'true';
    let token = req.token !== undefined && req.token !== '' ? req.token : undefined;
    if (token === undefined) {
      // AUTH-SPEC §3.4: with no_auto_token a tokenless client never reaches the backend.
      if (config.noAutoToken && needsBackend) return { ok: false, denial: deny(403, 'no_token') };
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
      req.dvr !== undefined,
    );
    return { ok: true, spec, token, idKey };
  }

  /** AUTH-SPEC §3.5: a request of a granted per-request identity is the same session. */
  private reuse(req: ClientRequest, idKey: string): ManagedSession | undefined {
    if (req.kind !== 'play' || !perRequest(req.proto)) return undefined;
    const s = this.deps.store.perRequestByIdKey(idKey);
    if (s === undefined || s.closed) return undefined;
    this.deps.rechecks.touch(s);
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
    const { log, clock, enforcement } = this.deps;
    switch (d.kind) {
      case 'allow': {
        if (d.config !== undefined) {
          this.deps.applyOverride(req.name, d.config);
          // An override may have just switched this protocol off (AUTH-SPEC §8.1 step 5).
          const policy = this.deps.policy(req.name);
          if (policy === undefined) return deny(404, 'stream_not_found');
          if (req.kind === 'play' && !protocolAllowed(policy.protocols, req.proto)) {
            return deny(403, 'protocol_disabled');
          }
        }
        // Single-flight waiters of a per-request identity join the session the first waiter opened.
        const reused = this.reuse(req, idKey);
        if (reused) return { allow: true, session: reused };
        const s = this.grant(req, idKey, token, sessionId, d, { spec, backend, retry: d.retry === true });
        if (s.closed) return deny(403, limitDenial(s.closeReason));
        if (this.deps.cluster !== undefined && !(await enforcement.applyClusterLimits(s))) {
          return deny(403, limitDenial(s.closeReason));
        }
        return { allow: true, session: s };
      }
      case 'deny': {
        const now = clock.now();
        enforcement.remember({
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
        log.info(
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
        // AUTH-SPEC §4.2 / §4.3: nothing to keep for a session that never opened. The client is
        // told only that the session could not open; the log says why.
        this.logDenied(req, deny(403, 'failed_to_open_session', d.reason), idKey, token);
        return deny(403, 'failed_to_open_session');
    }
  }

  /** Opens a granted session: indexed, logged, timers armed and limits applied in this turn. */
  private grant(
    req: ClientRequest,
    idKey: string,
    token: string,
    sessionId: string,
    grant: Grant,
    via: { spec?: AuthSpec; backend?: AuthBackend; retry?: boolean; adminView?: boolean } = {},
  ): ManagedSession {
    const { store, rechecks, enforcement, log } = this.deps;
    const s = new ManagedSession({
      host: this.deps.host,
      id: sessionId,
      idKey,
      seq: ++this.seq,
      req,
      token,
      openedAt: this.deps.clock.now(),
      ...(via.spec !== undefined ? { spec: via.spec } : {}),
      ...(via.backend !== undefined ? { backend: via.backend } : {}),
      grant,
      adminView: via.adminView === true,
    });
    store.add(s);
    log.info({ event: 'session_open', ...s.logFields() }, 'session opened');
    if (via.backend !== undefined) {
      rechecks.schedule(s, via.retry === true ? retryDelayMs(1, grant.authDurationSec) : undefined);
    }
    if (perRequest(s.proto)) rechecks.armIdle(s);
    enforcement.applyLimits(s, true);
    return s;
  }

  private logDenied(
    req: ClientRequest,
    denial: Denial,
    idKey: string | undefined,
    token: string | undefined,
  ): void {
    this.deps.denials.denied({
      kind: req.kind,
      name: req.name,
      proto: req.proto,
      ip: req.ip,
      idKey,
      token_hash: tokenHash(token),
      reason: denial.reason,
      ...(denial.detail !== undefined ? { detail: denial.detail } : {}),
    });
  }
}

/** A session that closed while being admitted lost to a limit; the client is told which. */
function limitDenial(reason: CloseReason | undefined): DenyReason {
  return reason === 'duplicated_user_id' ? 'duplicated_user_id' : 'session_limit';
}
