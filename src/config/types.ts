/**
 * The typed configuration that the parser produces and the rest of the server reads.
 * Syntax: SPEC.md §2 and AUTH-SPEC.md §8.3; every default is stated next to its field.
 */
import type { Proto } from '../core/proto.js';
import type { Limits } from '../core/limits.js';
import type { SessionKey } from '../core/session-keys.js';

/** `Config.source` of the config used when no `--config` is given (SPEC §3). */
export const EMBEDDED_CONFIG_FILE = '<embedded>';

/** One problem found in a config file; printed as `FILE:LINE:COL: message`. */
export interface ConfigError {
  file: string;
  line: number;
  col: number;
  message: string;
}

/** Where a directive was written, for `FILE:LINE:COL` messages. */
export interface SourceLoc {
  file: string;
  line: number;
  col: number;
}

export interface Listen {
  /** Interface address; all interfaces when absent. */
  host?: string;
  port: number;
}

/** The value of an `on_play` / `on_publish` directive with its options (SPEC §2). */
export interface AuthSpec {
  /** `http(s)://…`, a script path, `auth://NAME`, `jwt://…`, `ks://…`, `securetoken://…`, or `true`. */
  url: string;
  /** Default `name,ip,proto,token`; duplicates kept; must contain ip, name and proto. */
  sessionKeys: SessionKey[];
  maxSessions?: number;
  softLimitation: boolean;
  /** Domain lock on the Referer (AUTH-SPEC §7.1). */
  domains?: string[];
  domainsStrict: boolean;
  /** Backend timeout in seconds; default 3. */
  timeoutSec: number;
  bearer?: string;
  /** `allowed_countries=RU,US` (AUTH-SPEC §6.5): ISO 3166-1 alpha-2, upper case. */
  allowedCountries?: string[];
  /** `disallowed_countries=GB`. */
  disallowedCountries?: string[];
  /**
   * Written as the legacy `auth` keyword rather than `on_play`. AUTH-SPEC §6.5: a stream's
   * own `auth` loses to an `on_play` inherited from its template.
   */
  legacyAuth?: boolean;
  /** Any other `key=value` option, passed to the backend as query parameters. */
  extra: Record<string, string>;
  loc: SourceLoc;
}

export type RuleAction = 'allow' | 'deny';
export type RuleKind = 'token' | 'ip' | 'country' | 'ua';

/** `auth_backend NAME { … }` (AUTH-SPEC §6). */
export interface AuthBackendConfig {
  name: string;
  rules: { action: RuleAction; kind: RuleKind; values: string[]; loc: SourceLoc }[];
  backends: AuthSpec[];
  allowDefault: boolean;
  loc: SourceLoc;
}

/**
 * Protocol switches a `protocols {}` block may name (AUTH-SPEC §8.2): the protocols we serve
 * plus the other ones Flussonic knows, accepted so that Flussonic configs parse unchanged.
 */
export type ProtocolSwitch =
  | Proto
  | 'dash'
  | 'player'
  | 'mss'
  | 'm4f'
  | 'm4s'
  | 'mseld'
  | 'webrtc'
  | 'srt'
  | 'shoutcast'
  | 'mp4'
  | 'jpeg'
  | 'api';

/** `protocols { hls false; … }` (AUTH-SPEC §8.2): which play protocols a stream serves. */
export interface ProtocolsConfig {
  whitelist: boolean;
  /** Per-protocol switch as written; absent = not mentioned. */
  flags: Partial<Record<ProtocolSwitch, boolean>>;
}

export interface PlaybackHeaders {
  /** Restrict to these protocols (`protocols hls;`); all when absent. */
  protocols?: string[];
  /** Restrict to these playback kinds (`playback live;`, AUTH-SPEC §7.2); all when absent. */
  playback?: string[];
  headers: [name: string, value: string][];
}

/** `dvr PATH [DEPTH] [SIZE];` (issue 12): where a stream's archive lives and how much of it is kept. */
export interface DvrConfig {
  /** Directory the stream's archive goes under (`ROOT/<stream name>/`). */
  root: string;
  /** Oldest recording kept, seconds (`24h`, `7d`, `3600`); unlimited when absent. */
  depthSec?: number;
  /** Largest archive per stream, bytes (`10G`, `500M`); unlimited when absent. */
  maxBytes?: number;
}

/** A `stream NAME { … }` or `template NAME { … }` block. */
export interface StreamConfig {
  kind: 'stream' | 'template';
  name: string;
  /** Templates: name prefixes they serve (`prefix live;` → `live/<anything>`). */
  prefixes: string[];
  /** Input URLs in order of preference (`publish://`, `fake://fake`, `file://…`, …). */
  inputs: string[];
  onPlay?: AuthSpec;
  onPublish?: AuthSpec;
  /** Publish password (`?password=`), AUTH-SPEC §7.3. */
  password?: string;
  /**
   * `rtmp_auth adobe;`: RTMP publishers authenticate with the Adobe `authmod` challenge (OBS's
   * username/password fields) against `password`, which it requires.
   */
  rtmpAuth?: 'adobe';
  protocols?: ProtocolsConfig;
  playbackHeaders?: PlaybackHeaders;
  /** `template NAME;` inside a stream block: inherit from that template. */
  template?: string;
  /** HLS segment target duration in seconds (`segment_duration 2;`), default 2. */
  segmentDuration?: number;
  /** `dvr PATH [DEPTH] [SIZE];`: record the stream to disk and serve the archive. */
  dvr?: DvrConfig;
  /** HLS segment container when the playlist URL does not ask (`hls_container fmp4;`), default ts. */
  hlsContainer?: 'ts' | 'fmp4';
  loc: SourceLoc;
}

export interface Config {
  /** The file it was read from, or `<embedded>`. */
  source: string;
  http?: Listen;
  rtmp?: Listen;
  rtsp?: Listen;
  /** `mysql [PORT];` (AUTH-SPEC §9.2): the SQL statistics listener; off when absent, 14406 without a port. */
  mysql?: Listen;
  editAuth?: { user: string; password: string };
  /** `session_store redis://…`; in memory when absent. */
  sessionStore?: string;
  /** `history sqlite://PATH`; default `sqlite://data/history.db`. */
  history: string;
  noAutoToken: boolean;
  adminViewDisabled: boolean;
  /** Global defaults applied to streams that set none. */
  onPlay?: AuthSpec;
  onPublish?: AuthSpec;
  authBackends: Map<string, AuthBackendConfig>;
  streams: StreamConfig[];
  templates: StreamConfig[];
  /** Peers whose X-Forwarded-For / X-Real-IP are believed (AUTH-SPEC §1.4). */
  trustedProxies: string[];
  /** Seconds of idle before an HLS session closes; default 60. */
  httpSessionTimeout: number;
  /** Re-check interval when the backend sends no X-AuthDuration; default 180. */
  defaultAuthDuration: number;
  /** `limits { … }`: every bound on what a client may cost (src/core/limits.ts has the defaults). */
  limits: Limits;
  /** `metrics_public;`: /metrics and /health answer anyone, not only edit_auth or loopback. */
  metricsPublic: boolean;
  /** Where `file://` inputs may read from, and what relative paths mean (`file_root`). */
  files: FileRoots;
  /** `workers N | auto;`: processes sharing the listeners (src/cluster/); absent means 1. */
  workers?: number | 'auto';
  /** `events URL secret=S;`: session and stream lifecycle events posted to a receiver (README "Events"). */
  events?: EventsConfig;
}

/** `events URL secret=S [max_queue=N] [max_batch=N];` */
export interface EventsConfig {
  /** `http(s)://` receiver; batches are POSTed as JSON. */
  url: string;
  /** HMAC-SHA256 key of the `X-Streamgate-Signature` header. */
  secret: string;
  /** Events held while the receiver is down; beyond it the oldest are dropped and counted. Default 10000. */
  maxQueue: number;
  /** Events per POST; default 100. */
  maxBatch: number;
}

/**
 * `file_root PATH;` (repeatable): the directories `file://` inputs, in the file or from a
 * backend override, must lie under. Without one, the directory the config file is in (the
 * working directory for the embedded config), so a backend can never point a stream at
 * `/etc` or someone's home directory.
 */
export interface FileRoots {
  /** Absolute, normalised. */
  roots: string[];
  /** What a relative `file://` path or `file_root` is resolved against: the config file's directory. */
  base: string;
}
