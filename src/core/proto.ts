/**
 * The play/publish protocols streamgate serves, named as they go to backends (SPEC §4), and
 * what each one means for a session's lifetime. Every layer speaks these names; code that
 * behaves differently per protocol asks this table instead of comparing names.
 */

/**
 * `connection`: the session lives as long as the client's socket (RTMP, RTSP, HTTP MPEG-TS).
 * `request`: every request stands alone; the session is found again by its identity key and
 * closes after a stretch of silence (HLS, AUTH-SPEC §3.5).
 */
export type SessionLifetime = 'connection' | 'request';

export const PROTOCOLS = {
  rtmp: { lifetime: 'connection' },
  rtsp: { lifetime: 'connection' },
  hls: { lifetime: 'request' },
  tshttp: { lifetime: 'connection' },
  /** DVR exports as MP4 files (the archive's `archive-FROM-DURATION.mp4`). */
  mp4: { lifetime: 'connection' },
} as const satisfies Record<string, { lifetime: SessionLifetime }>;

export type Proto = keyof typeof PROTOCOLS;

export const PROTOS = Object.keys(PROTOCOLS) as readonly Proto[];

export function isProto(s: string): s is Proto {
  return Object.hasOwn(PROTOCOLS, s);
}

/** Whether sessions of this protocol are per request (re-found by identity, closed when idle). */
export function perRequest(proto: Proto): boolean {
  return PROTOCOLS[proto].lifetime === 'request';
}

export type SessionKind = 'play' | 'publish';
