/**
 * Every bound the server puts on what one client, one backend or one packet may cost, named
 * in one place with its default and why. An operator overrides them in the config's
 * `limits { NAME VALUE; }` block (README "Limits"); code reads them from `Config.limits`.
 *
 * When a limit is hit, the code that enforces it closes (or refuses) the one offender with a
 * reason in the log and calls `countLimitHit(name)`, which `/metrics` exports as
 * `streamgate_limit_hits_total{limit="NAME"}`.
 */

export interface LimitSpec {
  readonly default: number;
  /** `count`, `bytes` or `seconds`: how the config value is read and how README shows it. */
  readonly unit: 'count' | 'bytes' | 'seconds';
  readonly doc: string;
}

export const LIMITS = {
  max_connections: {
    default: 10_000,
    unit: 'count',
    doc: 'open client connections per listener (RTMP, RTSP, HTTP); the next one is refused at accept',
  },
  max_connections_per_ip: {
    default: 1_000,
    unit: 'count',
    doc: 'open connections per client address per listener, so one host cannot starve the others',
  },
  handshake_timeout: {
    default: 10,
    unit: 'seconds',
    doc: 'time for an RTMP handshake + connect, an RTSP first request, or HTTP request headers',
  },
  request_head_timeout: {
    default: 30,
    unit: 'seconds',
    doc: 'time for one HTTP request head, or one RTSP request with its body, to arrive once it has started (slowloris)',
  },
  request_head_bytes: {
    default: 16 * 1024,
    unit: 'bytes',
    doc: 'size of one RTSP or HTTP request head (request line and headers)',
  },
  request_body_bytes: {
    default: 64 * 1024,
    unit: 'bytes',
    doc: 'size of an RTSP request body (SDP) or an API request body',
  },
  rtmp_max_chunk_size: {
    default: 16 * 1024 * 1024,
    unit: 'bytes',
    doc: 'chunk size an RTMP peer may announce (OBS and ffmpeg use 4 KiB to 64 KiB)',
  },
  rtmp_max_message_bytes: {
    default: 8 * 1024 * 1024,
    unit: 'bytes',
    doc: 'one RTMP message (a video frame is the largest: a 4K keyframe is a few MiB)',
  },
  rtmp_max_buffered_bytes: {
    default: 16 * 1024 * 1024,
    unit: 'bytes',
    doc: 'unfinished RTMP messages buffered across all chunk streams of one connection',
  },
  rtmp_max_chunk_streams: {
    default: 32,
    unit: 'count',
    doc: 'chunk streams one RTMP connection may open (clients use fewer than ten)',
  },
  viewer_send_queue_bytes: {
    default: 2 * 1024 * 1024,
    unit: 'bytes',
    doc: 'bytes queued towards one viewer before it skips to the next keyframe (a few seconds of HD)',
  },
  viewer_stall_timeout: {
    default: 30,
    unit: 'seconds',
    doc: 'a viewer whose queue stays over viewer_send_queue_bytes this long has stopped reading and is closed',
  },
  new_sessions_per_ip_burst: {
    default: 100,
    unit: 'count',
    doc: 'new-session backend calls one client address may make at once (token bucket size)',
  },
  new_sessions_per_ip_per_second: {
    default: 20,
    unit: 'count',
    doc: 'sustained new-session backend calls per client address; over budget gets 429 with no backend call',
  },
  hls_playlist_hold: {
    default: 15,
    unit: 'seconds',
    doc: 'how long an HLS playlist request that arrives before the first segment waits for it (OBS sends a keyframe every 10 s by default); then 503',
  },
  hls_held_requests: {
    default: 1_000,
    unit: 'count',
    doc: 'HLS playlist requests waiting for a first segment at once, across all streams; more get 503 at once',
  },
  denial_cache_bytes: {
    default: 16 * 1024 * 1024,
    unit: 'bytes',
    doc: 'memory for cached denials and bans (least recently used entries go first)',
  },
  sql_query_timeout: {
    default: 10,
    unit: 'seconds',
    doc: 'run time of one query on the MySQL-protocol statistics endpoint; the query is stopped and refused',
  },
  sql_max_rows: {
    default: 100_000,
    unit: 'count',
    doc: 'rows one SQL query may return; a larger result is refused, never cut short',
  },
  sql_max_result_bytes: {
    default: 64 * 1024 * 1024,
    unit: 'bytes',
    doc: 'size of the values one SQL query may return',
  },
  sql_max_packet_bytes: {
    default: 1024 * 1024,
    unit: 'bytes',
    doc: 'one packet from a MySQL client (a query text); a larger one closes that connection',
  },
} as const satisfies Record<string, LimitSpec>;

export type LimitName = keyof typeof LIMITS;
export type Limits = { readonly [K in LimitName]: number };

export const LIMIT_NAMES = Object.keys(LIMITS) as readonly LimitName[];

export function isLimitName(s: string): s is LimitName {
  return Object.hasOwn(LIMITS, s);
}

export const DEFAULT_LIMITS: Limits = Object.fromEntries(
  LIMIT_NAMES.map((n) => [n, LIMITS[n].default]),
) as Limits;

/** A seconds-valued limit in milliseconds. */
export function limitMs(limits: Limits, name: LimitName): number {
  return limits[name] * 1000;
}

const hits = new Map<LimitName, number>();

/** Records that a limit was hit (one offender closed or refused). */
export function countLimitHit(name: LimitName): void {
  hits.set(name, (hits.get(name) ?? 0) + 1);
}

/** Hits per limit since the process started, for `/metrics`. */
export function limitHits(): ReadonlyMap<LimitName, number> {
  return hits;
}
