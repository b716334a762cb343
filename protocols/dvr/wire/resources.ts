/**
 * The archive's URLs (AUTH-SPEC §1.3 table, Flussonic's names) and the access rule of
 * `allowed_dvr_ranges` (AUTH-SPEC §2.3). Pure functions.
 *
 *   index-FROM-DURATION.m3u8   a time range as a VOD playlist
 *   index-FROM-now.m3u8        an EVENT playlist from FROM to the live edge (rewinding live)
 *   timeshift_abs-FROM.m3u8    live, delayed: plays from FROM on at normal speed
 *   archive-FROM-DURATION.ts   an export as one MPEG-TS file
 *   archive-FROM-DURATION.mp4  an export as one MP4 (moov first)
 *   dvr-STARTMS.ts             one archived segment, as the playlists above list them
 *
 * FROM is Unix seconds, DURATION seconds.
 */

export type DvrResource =
  | { kind: 'range'; from: number; duration: number }
  | { kind: 'event'; from: number }
  | { kind: 'timeshift'; from: number }
  | { kind: 'export'; from: number; duration: number; container: 'ts' | 'mp4' }
  | { kind: 'segment'; startMs: number };

/** Longest export or range one request may ask for (a day), so one URL cannot read a whole disk. */
export const MAX_DURATION_SEC = 86_400;

export const DVR_RESOURCE =
  /^(?:index-\d{1,12}-(?:\d{1,6}|now)\.m3u8|timeshift_abs-\d{1,12}\.m3u8|archive-\d{1,12}-\d{1,6}\.(?:ts|mp4)|dvr-\d{10,16}\.ts)$/;

export function parseDvrResource(last: string): DvrResource | undefined {
  let m = /^index-(\d{1,12})-(\d{1,6}|now)\.m3u8$/.exec(last);
  if (m) {
    const from = Number(m[1]);
    if (m[2] === 'now') return { kind: 'event', from };
    const duration = Number(m[2]);
    return duration >= 1 && duration <= MAX_DURATION_SEC ? { kind: 'range', from, duration } : undefined;
  }
  m = /^timeshift_abs-(\d{1,12})\.m3u8$/.exec(last);
  if (m) return { kind: 'timeshift', from: Number(m[1]) };
  m = /^archive-(\d{1,12})-(\d{1,6})\.(ts|mp4)$/.exec(last);
  if (m) {
    const duration = Number(m[2]);
    if (duration < 1 || duration > MAX_DURATION_SEC) return undefined;
    return { kind: 'export', from: Number(m[1]), duration, container: m[3] === 'mp4' ? 'mp4' : 'ts' };
  }
  m = /^dvr-(\d{10,16})\.ts$/.exec(last);
  if (m) return { kind: 'segment', startMs: Number(m[1]) };
  return undefined;
}

/**
 * AUTH-SPEC §1.3's legacy `media_request` descriptor: tells a backend which kind of archive
 * request it is asked about (a playlist, a time-shifted live view, an export, a segment).
 */
export function mediaRequest(r: DvrResource): string {
  switch (r.kind) {
    case 'range':
      return `dvr_session-hls_mbr_playlist-${r.from}-${r.duration}`;
    case 'event':
      return `dvr_session-hls_mbr_playlist-${r.from}-now`;
    case 'timeshift':
      return `hls_timeshift_playlist-hls_timeshift_abs-${r.from}`;
    case 'export':
      return r.container === 'mp4'
        ? `dvr_handler-mp4-${r.from}-${r.duration}`
        : `dvr_stream_handler-ts_file-${r.from}-${r.duration}`;
    case 'segment':
      return `dvr_session-hls_segment-${Math.floor(r.startMs / 1000)}`;
  }
}

export interface AllowedRange {
  openedAt: number;
  closedAt: number;
}

/**
 * Whether [fromMs, toMs) lies inside the union of the allowed ranges (Unix seconds); no list
 * means the backend did not restrict the archive. Touching ranges join, so a request spanning
 * two adjacent grants is allowed.
 */
export function withinAllowed(
  fromMs: number,
  toMs: number,
  allowed: readonly AllowedRange[] | undefined,
): boolean {
  if (allowed === undefined) return true;
  const sorted = [...allowed].sort((a, b) => a.openedAt - b.openedAt);
  let covered = fromMs;
  for (const r of sorted) {
    if (r.openedAt * 1000 > covered) break;
    covered = Math.max(covered, r.closedAt * 1000);
    if (covered >= toMs) return true;
  }
  return false;
}
