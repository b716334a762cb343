/**
 * Archive playlists (RFC 8216): a VOD playlist of a closed range, an EVENT playlist that
 * grows to the live edge. Pure: segments and a query string in, text out.
 */

export interface PlaylistSegment {
  startMs: number;
  durationMs: number;
}

export interface ArchivePlaylistInput {
  segments: readonly PlaylistSegment[];
  /** `VOD` adds EXT-X-ENDLIST; `EVENT` is still growing; `live` is a sliding time-shifted view. */
  type: 'VOD' | 'EVENT' | 'live';
  /** Query appended to each segment URI (the session token), with its `?`, or ''. */
  query: string;
  /** For `live`: EXT-X-MEDIA-SEQUENCE of the first listed segment. */
  mediaSequence?: number;
}

/** Segment URI relative to the playlist. */
export function archiveSegmentName(startMs: number): string {
  return `dvr-${Math.round(startMs)}.ts`;
}

export function renderArchivePlaylist(p: ArchivePlaylistInput): string {
  // RFC 8216 §4.3.3.1: the rounded maximum segment duration, fixed for the playlist's life;
  // an archive's segments are known in full, so the maximum is exact.
  const target = Math.max(1, ...p.segments.map((s) => Math.round(s.durationMs / 1000)));
  const lines = ['#EXTM3U', '#EXT-X-VERSION:3', `#EXT-X-TARGETDURATION:${target}`];
  if (p.type !== 'live') lines.push(`#EXT-X-PLAYLIST-TYPE:${p.type}`);
  lines.push(`#EXT-X-MEDIA-SEQUENCE:${p.mediaSequence ?? 0}`);
  let prevEnd: number | undefined;
  for (const s of p.segments) {
    // A gap in the recording (publisher away) is a new timeline for the player.
    if (prevEnd !== undefined && s.startMs - prevEnd > 1000) lines.push('#EXT-X-DISCONTINUITY');
    lines.push(`#EXT-X-PROGRAM-DATE-TIME:${new Date(s.startMs).toISOString()}`);
    lines.push(`#EXTINF:${(s.durationMs / 1000).toFixed(3)},`);
    lines.push(archiveSegmentName(s.startMs) + p.query);
    prevEnd = s.startMs + s.durationMs;
  }
  if (p.type === 'VOD') lines.push('#EXT-X-ENDLIST');
  return lines.join('\n') + '\n';
}
