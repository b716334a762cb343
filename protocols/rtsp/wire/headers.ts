/**
 * RTSP header values this server reads and writes: Session (RFC 2326 §12.37), CSeq (§12.17),
 * RTP-Info (§12.33) and Authorization Basic (RFC 7617, as RFC 2326 §12.5 inherits it from
 * HTTP). Transport (§12.39) has its own module, wire/transport.ts. Pure string functions.
 */

/** The session id of a Session header, without `;timeout=` (RFC 2326 §12.37). */
export function parseSession(value: string | undefined): string | undefined {
  const id = value?.split(';')[0]?.trim();
  return id ? id : undefined;
}

/** CSeq as a non-negative integer; RFC 2326 §12.17 makes it mandatory in every request. */
export function parseCSeq(value: string | undefined): number | undefined {
  if (value === undefined || !/^\s*\d{1,10}\s*$/.test(value)) return undefined;
  return Number(value);
}

export interface BasicCredentials {
  readonly user: string;
  readonly pass: string;
}

/**
 * Decodes `Authorization: Basic base64(user:pass)` (RFC 7617 §2). Other schemes (Digest)
 * and malformed values yield undefined: the caller treats them as "no credentials".
 */
export function parseBasicAuth(value: string | undefined): BasicCredentials | undefined {
  const m = /^\s*basic\s+([A-Za-z0-9+/=]+)\s*$/i.exec(value ?? '');
  if (!m) return undefined;
  const text = Buffer.from(m[1] ?? '', 'base64').toString('utf8');
  const colon = text.indexOf(':');
  if (colon < 0) return undefined;
  return { user: text.slice(0, colon), pass: text.slice(colon + 1) };
}

export interface RtpInfoEntry {
  readonly url: string;
  readonly seq: number;
  readonly rtptime?: number;
}

/** RTP-Info for a PLAY response (RFC 2326 §12.33): where each track's RTP numbering starts. */
export function formatRtpInfo(entries: readonly RtpInfoEntry[]): string {
  return entries
    .map((e) => `url=${e.url};seq=${e.seq}${e.rtptime === undefined ? '' : `;rtptime=${e.rtptime}`}`)
    .join(',');
}
