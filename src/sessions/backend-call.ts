/**
 * The session manager's side of a backend call: one backend per auth spec, the AUTH-SPEC §1.3
 * parameters for new_session and update_session, and a deadline on the manager's clock so
 * that whatever a backend does (hang, throw, reject), the caller gets a decision in time.
 */
import type { AuthBackend, AuthDecision, AuthRequest } from '../auth/backend.js';
import type { Clock } from '../clock.js';
import type { AuthSpec } from '../config/types.js';
import type { SessionKind } from '../core/proto.js';
import type { ManagedSession } from './session.js';
import type { ClientRequest } from './types.js';

/** What a backend call reads of the client's request: a ClientRequest, or the session it opened. */
export type RequestFields = Pick<ClientRequest, 'name' | 'proto' | 'ip' | 'qs' | 'dvr'> & {
  readonly userAgent?: string | undefined;
  readonly referer?: string | undefined;
  readonly host?: string | undefined;
};

/** Live counts the backend is told (`stream_clients`, `total_clients`). */
export interface ClientCounts {
  streamClients(name: string): number;
  totalClients(): number;
}

export class BackendCalls {
  /** Backends are cached per spec object: a reloaded config brings new specs and so new backends. */
  private readonly backends = new WeakMap<AuthSpec, AuthBackend>();

  constructor(
    private readonly factory: (spec: AuthSpec) => AuthBackend,
    private readonly clock: Clock,
    private readonly counts: ClientCounts,
  ) {}

  backendFor(spec: AuthSpec): AuthBackend {
    let b = this.backends.get(spec);
    if (b === undefined) {
      b = this.factory(spec);
      this.backends.set(spec, b);
    }
    return b;
  }

  /** AUTH-SPEC §1.2: 3 s (the spec's timeout) for connect + response; never rejects. */
  call(backend: AuthBackend, spec: AuthSpec, req: AuthRequest, kind: SessionKind): Promise<AuthDecision> {
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
  newSessionRequest(req: RequestFields, token: string, sessionId: string): AuthRequest {
    const r: AuthRequest = {
      name: req.name,
      proto: req.proto,
      ip: req.ip,
      request_type: 'new_session',
      request_number: 0,
      session_id: sessionId,
      stream_clients: this.counts.streamClients(req.name),
      total_clients: this.counts.totalClients(),
      token,
      qs: req.qs,
    };
    if (req.userAgent !== undefined) r.user_agent = req.userAgent;
    if (req.referer !== undefined) r.referer = req.referer;
    if (req.host !== undefined) r.host = req.host;
    if (req.dvr !== undefined) {
      r.dvr = true;
      r.media_request = req.dvr.mediaRequest;
    }
    return r;
  }

  updateRequest(s: ManagedSession): AuthRequest {
    const r = this.newSessionRequest(s, s.token, s.id);
    r.request_type = 'update_session';
    r.request_number = s.requestNumber;
    r.duration = Math.floor((this.clock.now() - s.openedAt) / 1000);
    r.bytes = s.bytes;
    return r;
  }
}
