/**
 * Why a session was refused or ended: one typed registry, so a reason written by an adapter,
 * the session manager or the API is one of a known set, each with what an operator reads in
 * logs and history. Backends' own refusal words (`jwt_expired`, `rule_denied_ip`, …) travel
 * beside these as a free-form detail.
 */

/**
 * Refusals the session manager or an adapter decides (the client sees `403 <reason>`, or
 * `429 rate_limited` with a Retry-After).
 */
export const DENY_REASONS = {
  stream_not_found: 'no stream or template serves this name',
  protocol_disabled: "the stream's protocols block switches this protocol off",
  wrong_password: 'publish password missing or wrong',
  no_token: 'no_auto_token is set and the client brought no token',
  domain_denied: 'the Referer is outside the domain lock',
  banned: 'the identity is banned (session limit or X-Unique)',
  cached_negative: 'the backend denied this identity recently; its answer is cached',
  backend_denied: 'the auth backend answered no',
  failed_to_open_session: 'the auth backend was unavailable for a new session',
  session_limit: 'the user is over X-Max-Sessions',
  duplicated_user_id: 'X-Unique: a newer session of the user won',
  redirect: 'the backend redirected the client (302)',
  dvr_range_denied: "the archive time asked for is outside the backend's allowed_dvr_ranges",
  rate_limited:
    'the client address is over new_sessions_per_ip_per_second; refused (429) without a backend call',
} as const;

export type DenyReason = keyof typeof DENY_REASONS;

/** Why an open session ended, as written to history (`close_reason`) and logs. */
export const CLOSE_REASONS = {
  client_closed: 'the client disconnected or stopped',
  protocol_error: 'the client sent something the server could not handle',
  limit_exceeded: 'the client went over a limit of the limits block (the log names it)',
  timeout: 'the client went silent, or missed a deadline (handshake, request head)',
  idle_timeout: 'no HLS request within http_session_timeout',
  head: 'a HEAD request: answered, nothing streamed',
  refused: 'the adapter refused the request after the session opened',
  stream_not_found: 'the stream went away before media flowed',
  protocol_disabled: 'the stream does not serve this protocol',
  stream_busy: 'someone else already publishes this stream',
  publish_ended: 'the publisher finished its upload',
  kicked: 'an operator closed the session (API or admin UI)',
  recheck_denied: 'a re-check was answered no',
  session_limit: 'banned: the user went over X-Max-Sessions',
  duplicated_user_id: 'banned: X-Unique and a newer session of the user won',
  config_changed: 'a backend override switched this protocol off',
  server_shutdown: 'the server is stopping',
  viewer_stalled:
    'the viewer stopped reading: its send queue stayed over viewer_send_queue_bytes for viewer_stall_timeout',
  viewer_fault: 'sending to the viewer failed (a write threw, or its output format did)',
} as const;

export type CloseReason = keyof typeof CLOSE_REASONS;

/** Why an egress dropped one viewer: the close reason its adapter gives the session. */
export type ViewerDropReason = Extract<CloseReason, 'viewer_stalled' | 'viewer_fault'>;

/** Close reasons that come with a ban of the identity (AUTH-SPEC §5). */
export type BanReason = Extract<CloseReason, 'session_limit' | 'duplicated_user_id'>;

/** What a refused client is told: the backend's own word when it gave one, else the reason. */
export function refusalText(denial: { reason: DenyReason; detail?: string }): string {
  return denial.detail ?? denial.reason;
}
