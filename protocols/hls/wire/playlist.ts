/**
 * HLS playlist text (RFC 8216): the master playlist that names the one variant, and the
 * live media playlist of the segment window. Pure functions of their inputs.
 *
 * Every URI written here carries the client's query with `token=<session token>`
 * (AUTH-SPEC §3.4): a player that came without a token gets the generated one, and every
 * later playlist and segment request lands in the same session.
 */
import { aacCodecString } from '../../../src/media/aac.js';
import { avcCodecString, parseAvcC, spsDimensions } from '../../../src/media/h264.js';
import type { Tracks, VideoTrack } from '../../../src/media/types.js';
import type { Segment } from './segmenter.js';

export const MEDIA_PLAYLIST = 'mono.m3u8';

/** Segment containers: MPEG-TS (the default) or fMP4/CMAF (RFC 8216 §3.3). */
export type Container = 'ts' | 'fmp4';

/** The file name of segment `seq`, relative to the playlist. */
export function segmentName(seq: number, container: Container = 'ts'): string {
  return container === 'ts' ? `mono-${seq}.ts` : `mono-${seq}.m4s`;
}

/** The file name of fMP4 init segment `id` (EXT-X-MAP). */
export function initName(id: number): string {
  return `init-${id}.mp4`;
}

/** Parses `mono-<seq>.ts` / `mono-<seq>.m4s`; undefined for any other name. */
export function parseSegmentName(name: string): { seq: number; container: Container } | undefined {
  const m = /^mono-(\d{1,15})\.(ts|m4s)$/.exec(name);
  return m ? { seq: Number(m[1]), container: m[2] === 'ts' ? 'ts' : 'fmp4' } : undefined;
}

/** Parses `init-<id>.mp4`; undefined for any other name. */
export function parseInitName(name: string): number | undefined {
  const m = /^init-(\d{1,9})\.mp4$/.exec(name);
  return m ? Number(m[1]) : undefined;
}

/**
 * The container a playlist request asks for: `?container=fmp4|ts`, else the stream's
 * configured default. Anything else is undefined (the adapter answers 400).
 */
export function requestedContainer(query: URLSearchParams, configured: Container): Container | undefined {
  const v = query.get('container');
  if (v === null || v === '') return configured;
  return v === 'fmp4' || v === 'ts' ? v : undefined;
}

/**
 * The query every child URI carries: the client's own parameters (session keys may use
 * `query:<param>`, AUTH-SPEC A6) with `token` replaced by the session's token.
 */
export function childQuery(clientQuery: URLSearchParams, token: string): string {
  const q = new URLSearchParams(clientQuery);
  q.delete('token');
  q.set('token', token);
  return q.toString();
}

/** Appends a query to a URI, keeping one that is already there. */
export function withQuery(uri: string, query: string): string {
  if (query === '') return uri;
  return uri + (uri.includes('?') ? '&' : '?') + query;
}

export interface MediaPlaylistInput {
  segments: readonly Segment[];
  mediaSequence: number;
  discontinuitySequence: number;
  /** EXT-X-TARGETDURATION, fixed for the playlist's life (see the segmenter's header). */
  targetDuration: number;
  /** Query appended to every segment URI (see `childQuery`). */
  query: string;
  /** Default `ts`. For `fmp4` only the segments that have a fragment are listed. */
  container?: Container;
}

/**
 * A live media playlist (RFC 8216 §4.3.3, §6.2.1). Every segment carries its
 * EXT-X-PROGRAM-DATE-TIME (§4.3.2.6), so players and recorders can map it to wall time; an
 * fMP4 playlist names the init segment of each run of segments with EXT-X-MAP (§4.3.2.5),
 * which needs version 6 (version 7 is what CMAF players expect).
 */
export function renderMediaPlaylist(p: MediaPlaylistInput): string {
  const fmp4 = p.container === 'fmp4';
  let segments = p.segments;
  let mediaSequence = p.mediaSequence;
  let discontinuitySequence = p.discontinuitySequence;
  if (fmp4) {
    // Segments cut before fMP4 was asked for have no fragment: list the ones after them.
    let first = 0;
    while (first < segments.length && segments[first]?.fmp4 === undefined) {
      if (segments[first]?.discontinuity) discontinuitySequence++;
      first++;
    }
    segments = segments.slice(first).filter((s) => s.fmp4 !== undefined);
    mediaSequence = segments[0]?.seq ?? mediaSequence;
  }
  const lines = [
    '#EXTM3U',
    `#EXT-X-VERSION:${fmp4 ? 7 : 3}`,
    `#EXT-X-TARGETDURATION:${p.targetDuration}`,
    `#EXT-X-MEDIA-SEQUENCE:${mediaSequence}`,
  ];
  if (discontinuitySequence > 0) lines.push(`#EXT-X-DISCONTINUITY-SEQUENCE:${discontinuitySequence}`);
  let map: number | undefined;
  const container = p.container ?? 'ts';
  for (const s of segments) {
    if (s.discontinuity) lines.push('#EXT-X-DISCONTINUITY');
    if (fmp4 && s.initId !== map) {
      map = s.initId;
      lines.push(`#EXT-X-MAP:URI="${withQuery(initName(s.initId), p.query)}"`);
    }
    lines.push(
      `#EXT-X-PROGRAM-DATE-TIME:${new Date(s.programDateTime).toISOString()}`,
      `#EXTINF:${s.duration.toFixed(3)},`,
      withQuery(segmentName(s.seq, container), p.query),
    );
  }
  return lines.join('\n') + '\n';
}

export interface MasterPlaylistInput {
  tracks: Tracks;
  /** Peak bits per second over the window's segments (§4.3.4.2 BANDWIDTH). */
  bandwidth: number;
  query: string;
}

/** The master playlist: one variant, `mono.m3u8`, with BANDWIDTH, CODECS and RESOLUTION. */
export function renderMasterPlaylist(p: MasterPlaylistInput): string {
  const attrs = [`BANDWIDTH=${Math.max(1, Math.round(p.bandwidth))}`];
  const codecs = codecsOf(p.tracks);
  if (codecs.length > 0) attrs.push(`CODECS="${codecs.join(',')}"`);
  const size = p.tracks.video ? videoSize(p.tracks.video) : undefined;
  if (size) attrs.push(`RESOLUTION=${size.width}x${size.height}`);
  return [
    '#EXTM3U',
    '#EXT-X-VERSION:3',
    `#EXT-X-STREAM-INF:${attrs.join(',')}`,
    withQuery(MEDIA_PLAYLIST, p.query),
    '',
  ].join('\n');
}

/** Peak bit rate of the listed segments; 0 when there are none. */
export function peakBandwidth(segments: readonly Segment[]): number {
  return segments.reduce((m, s) => Math.max(m, (s.data.length * 8) / s.duration), 0);
}

/** RFC 6381 codec strings for the CODECS attribute. */
export function codecsOf(tracks: Tracks): string[] {
  const out: string[] = [];
  if (tracks.video) out.push(videoCodecString(tracks.video));
  if (tracks.audio) out.push(tracks.audio.codec === 'opus' ? 'opus' : aacCodecString(tracks.audio.config));
  return out.filter((c) => c !== '');
}

/** The picture size: from the track, or from the first SPS of an H.264 avcC (RTMP sources omit it). */
function videoSize(v: VideoTrack): { width: number; height: number } | undefined {
  if (v.width && v.height) return { width: v.width, height: v.height };
  if (v.codec !== 'h264') return undefined;
  const sps = parseAvcC(v.config)?.sps[0];
  return sps ? spsDimensions(sps) : undefined;
}

function videoCodecString(v: VideoTrack): string {
  if (v.codec === 'h264') return v.config.length >= 4 ? avcCodecString(v.config) : 'avc1.42e01e';
  return hevcCodecString(v.config);
}

/**
 * `hvc1.<profile>.<compat>.<tier><level>.<constraints>` from an hvcC record (ISO/IEC 14496-15
 * Annex E): compatibility flags bit-reversed in hex, trailing zero constraint bytes dropped.
 */
export function hevcCodecString(hvcc: Buffer): string {
  if (hvcc.length < 13) return 'hvc1.1.6.L93.B0';
  const b1 = hvcc[1] ?? 0;
  const space = ['', 'A', 'B', 'C'][b1 >> 6] ?? '';
  const tier = (b1 & 0x20) !== 0 ? 'H' : 'L';
  const profile = b1 & 0x1f;
  let compat = hvcc.readUInt32BE(2);
  let reversed = 0;
  for (let i = 0; i < 32; i++) {
    reversed = (reversed << 1) | (compat & 1);
    compat >>>= 1;
  }
  const constraints = [...hvcc.subarray(6, 12)];
  while (constraints.length > 0 && constraints[constraints.length - 1] === 0) constraints.pop();
  const level = hvcc[12] ?? 0;
  const parts = [
    `hvc1`,
    `${space}${profile}`,
    (reversed >>> 0).toString(16).toUpperCase(),
    `${tier}${level}`,
  ];
  for (const c of constraints) parts.push(c.toString(16).toUpperCase());
  return parts.join('.');
}
