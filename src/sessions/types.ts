/**
 * The contract between protocol adapters and the session manager (ARCHITECTURE.md).
 * Every adapter turns a play or publish into a ClientRequest and asks `open()` before a
 * single media byte flows; on allow it gets a Session it must close when the client goes.
 */

import type { DvrRange } from '../auth/backend.js';
import type { AuthSpec, ProtocolsConfig } from '../config/types.js';
import type { Proto, SessionKind } from '../core/proto.js';
import type { CloseReason, DenyReason } from '../core/reasons.js';

export interface ClientRequest {
  kind: SessionKind;
  proto: Proto;
  /** Resolved stream name, without query, `mp4:` prefix or leading slash. */
  name: string;
  /** Client address after trusted-proxy resolution. */
  ip: string;
  /** Token from the request; the manager generates one when absent (unless `no_auto_token`). */
  token?: string;
  /** The client's original query string, without the leading `?`. */
  qs: string;
  /** Parsed query parameters (the stream-name query wins over the connect-URL one for RTMP). */
  query: URLSearchParams;
  referer?: string;
  userAgent?: string;
  host?: string;
  /**
   * Set for a request of the DVR archive (AUTH-SPEC §3.5: a play session of the same stream
   * with `dvr=true`). It is a session of its own: a live grant never opens the archive.
   */
  dvr?: { mediaRequest: string };
  /**
   * A publisher that proved knowing a password without sending it (RTMP `authmod=adobe`): checks
   * the stream's `password` in place of the `password` query parameter, once.
   */
  passwordProof?: (password: string) => boolean;
}

export type Denial = {
  allow: false;
  /** 403 denied, 302 redirect (see `location`), 404 unknown stream, 429 rate limited (see `retryAfterSec`). */
  status: 403 | 302 | 404 | 429;
  reason: DenyReason;
  /** The backend's own word for a `backend_denied` (`jwt_expired`, `rule_denied_ip`, …). */
  detail?: string;
  location?: string;
  /** With a 429: whole seconds until the client's address may ask for a new session again. */
  retryAfterSec?: number;
};

export type Decision = { allow: true; session: Session } | Denial;

export interface Session {
  /** UUID sent to the backend as `session_id`. */
  readonly id: string;
  /** SHA-1 identity key over the configured session keys. */
  readonly idKey: string;
  readonly kind: SessionKind;
  readonly proto: Proto;
  readonly name: string;
  readonly ip: string;
  /** The client's token, or the one generated for it (HLS rewrites playlist URIs with it). */
  readonly token: string;
  readonly userId: string | undefined;
  readonly openedAt: number;
  readonly bytes: number;
  /** AUTH-SPEC §2.3: the archive ranges the backend allowed; undefined means all of it. */
  readonly allowedDvrRanges: readonly DvrRange[] | undefined;
  /** Count payload bytes written to (play) or read from (publish) the client. */
  addBytes(n: number): void;
  /** Stateless protocols: a request of this session arrived (keeps it from idling out). */
  touch(): void;
  /**
   * Register how the manager ends this session (ban, unique, re-check denied, kick):
   * persistent protocols close their socket here without a status message.
   */
  onKill(kill: (reason: CloseReason) => void): void;
  /** The client went away or the adapter ended it; idempotent. */
  close(reason: CloseReason): void;
  readonly closed: boolean;
}

export interface SessionManager {
  open(req: ClientRequest): Promise<Decision>;
  /** Sessions currently open (granted and not closed), optionally filtered. */
  list(filter?: SessionFilter): Session[];
}

/** Filters of `GET /api/sessions` (SPEC §8); every given field must match. */
export interface SessionFilter {
  name?: string;
  userId?: string;
  proto?: Proto;
}

/**
 * What the session manager needs to know about a stream, resolved by the stream registry
 * (template ⊕ stream ⊕ backend override). Absent `onPlay`/`onPublish` fall back to the global
 * `Config.onPlay`/`onPublish`; absent there too means "allow without a backend call".
 */
export interface StreamPolicy {
  onPlay?: AuthSpec;
  onPublish?: AuthSpec;
  /** Publish password, compared in constant time with the `password` query parameter (AUTH-SPEC §7.3). */
  password?: string;
  /** Which play protocols the stream serves (AUTH-SPEC §8.2); all when absent. */
  protocols?: ProtocolsConfig;
}
