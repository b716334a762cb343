/**
 * The decisions every RTSP request goes through, whatever the mode: the checks before a
 * request is dispatched (CSeq, Session), the headers of an answer, what the session manager
 * is asked, and how its refusal is answered. Pure: requests and decisions in, values out.
 */
import type { SessionKind } from '../../src/core/proto.js';
import type { ClientRequest, Denial } from '../../src/sessions/types.js';
import type { RtspTarget } from './credentials.js';
import { parseBasicAuth, parseCSeq, parseSession } from './wire/headers.js';
import type { HeaderList, RtspRequest } from './wire/message.js';

export const SERVER = 'streamgate';
export const PUBLIC_METHODS =
  'OPTIONS, DESCRIBE, SETUP, PLAY, TEARDOWN, ANNOUNCE, RECORD, GET_PARAMETER, SET_PARAMETER';
/** Without a request for this long, a connection that is not streaming is gone (RFC 2326 §12.37 default session timeout). */
export const SESSION_TIMEOUT_S = 60;

/**
 * Why a request is answered before it is dispatched: 400 without a CSeq (RFC 2326 §12.17
 * makes it mandatory, and the answer cannot echo one), 454 when it names another session
 * than this connection's. `session` is this connection's RTSP session id once it has a mode.
 */
export function precheck(req: RtspRequest, session: string | undefined): 400 | 454 | undefined {
  if (parseCSeq(req.headers.get('cseq')) === undefined) return 400;
  const given = parseSession(req.headers.get('session'));
  if (given !== undefined && session !== undefined && given !== session) return 454;
  return undefined;
}

/**
 * The headers of an answer: the request's CSeq, and the Session header on success once the
 * connection has a session (`session` undefined before DESCRIBE or ANNOUNCE).
 */
export function answerHeaders(
  req: RtspRequest,
  status: number,
  session: string | undefined,
  headers: HeaderList = [],
): HeaderList {
  return [
    ['CSeq', req.headers.get('cseq')?.trim()],
    ['Server', SERVER],
    [
      'Session',
      session !== undefined && status < 300 ? `${session};timeout=${SESSION_TIMEOUT_S}` : undefined,
    ],
    ...headers,
  ];
}

export interface Admission {
  readonly request: ClientRequest;
  /**
   * A wrong or missing publish password is answered with a Basic challenge instead of a
   * refusal: the client brought no password at all, so it may have one to send.
   */
  readonly mayChallenge: boolean;
}

/** What the session manager is asked for a DESCRIBE (or a SETUP/PLAY without one) or an ANNOUNCE. */
export function admission(kind: SessionKind, req: RtspRequest, target: RtspTarget, ip: string): Admission {
  const query = new URLSearchParams(target.query);
  const basic = parseBasicAuth(req.headers.get('authorization'));
  // AUTH-SPEC §7.3: the publish password may come as the Basic auth password instead of ?password=.
  if (kind === 'publish' && basic && !query.has('password')) query.set('password', basic.pass);
  const userAgent = req.headers.get('user-agent');
  return {
    request: {
      kind,
      proto: 'rtsp',
      name: target.name,
      ip,
      qs: target.qs,
      query,
      ...(target.token !== undefined ? { token: target.token } : {}),
      ...(userAgent ? { userAgent } : {}),
      ...(target.host ? { host: target.host } : {}),
    },
    mayChallenge: kind === 'publish' && !basic && !target.query.has('password'),
  };
}

export interface Refusal {
  readonly status: number;
  readonly headers: HeaderList;
  /**
   * A 401 challenge: the connection stays open, because ffmpeg sends the credentials of
   * rtsp://user:pass@host/… only after a challenge (RFC 7617 §2) and repeats the request on
   * the same connection. Any other refusal closes it once the answer is flushed.
   */
  readonly challenge: boolean;
}

/**
 * How the session manager's "no" is answered: 302 with Location, a Basic challenge, 503 with
 * Retry-After for a rate-limited client (RTSP has no 429; RFC 2326 §7.1.1 lists 503 with
 * Retry-After for "try later"), or its status.
 */
export function refusal(d: Denial, mayChallenge: boolean): Refusal {
  if (d.status === 302 && d.location) {
    return { status: 302, headers: [['Location', d.location]], challenge: false };
  }
  if (d.reason === 'wrong_password' && mayChallenge) {
    return { status: 401, headers: [['WWW-Authenticate', 'Basic realm="streamgate"']], challenge: true };
  }
  if (d.status === 429) {
    return { status: 503, headers: [['Retry-After', String(d.retryAfterSec ?? 1)]], challenge: false };
  }
  return { status: d.status, headers: [], challenge: false };
}
