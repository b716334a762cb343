/**
 * RTSP header values this server reads and writes: Transport (RFC 2326 §12.39), Session
 * (§12.37), CSeq (§12.17), RTP-Info (§12.33) and Authorization Basic (RFC 7617, as RFC 2326
 * §12.5 inherits it from HTTP). Pure string functions.
 */
import { RtspProtocolError } from './errors.js';

export type LowerTransport = 'tcp' | 'udp';

/** One transport alternative a client offers, or the one the server picked. */
export interface TransportSpec {
  /** RTP/AVP is RTP over UDP; RTP/AVP/TCP is RTP interleaved in the RTSP connection. */
  readonly lower: LowerTransport;
  readonly unicast: boolean;
  /** RTP and RTCP channel numbers for TCP interleaving (`interleaved=0-1`). */
  readonly interleaved?: readonly [number, number];
  /** Client RTP and RTCP UDP ports (`client_port=5000-5001`). */
  readonly clientPort?: readonly [number, number];
  readonly serverPort?: readonly [number, number];
  /** `mode=record` for publishers (ffmpeg sends it on every SETUP of ANNOUNCE/RECORD). */
  readonly mode?: 'play' | 'record';
  readonly ssrc?: number;
}

/**
 * Parses a Transport header into its alternatives, in the client's order of preference.
 * Alternatives with a profile other than RTP/AVP are dropped (the client offered something
 * else as well, or the SETUP fails with 461 when nothing is left).
 */
export function parseTransport(value: string): TransportSpec[] {
  const out: TransportSpec[] = [];
  for (const alt of value.split(',')) {
    const [proto = '', ...params] = alt.trim().split(';');
    const p = proto.trim().toUpperCase();
    let lower: LowerTransport;
    if (p === 'RTP/AVP' || p === 'RTP/AVP/UDP') lower = 'udp';
    else if (p === 'RTP/AVP/TCP') lower = 'tcp';
    else continue;
    let unicast = true;
    let interleaved: [number, number] | undefined;
    let clientPort: [number, number] | undefined;
    let serverPort: [number, number] | undefined;
    let mode: 'play' | 'record' | undefined;
    let ssrc: number | undefined;
    for (const param of params) {
      const eq = param.indexOf('=');
      const key = (eq < 0 ? param : param.slice(0, eq)).trim().toLowerCase();
      const val = eq < 0 ? '' : param.slice(eq + 1).trim();
      switch (key) {
        case 'unicast':
          unicast = true;
          break;
        case 'multicast':
          unicast = false;
          break;
        case 'interleaved':
          interleaved = parseRange(val, 255, 'interleaved');
          break;
        case 'client_port':
          clientPort = parseRange(val, 65535, 'client_port');
          break;
        case 'server_port':
          serverPort = parseRange(val, 65535, 'server_port');
          break;
        case 'mode': {
          // RFC 2326 §12.39 quotes the value; old clients send `receive` for record.
          const m = val.replace(/"/g, '').toLowerCase();
          mode = m === 'record' || m === 'receive' ? 'record' : 'play';
          break;
        }
        case 'ssrc':
          if (/^[0-9a-f]{1,8}$/i.test(val)) ssrc = parseInt(val, 16);
          break;
        default:
          break; // ttl, destination, source, layers, append: not used by a unicast origin
      }
    }
    out.push({
      lower,
      unicast,
      ...(interleaved ? { interleaved } : {}),
      ...(clientPort ? { clientPort } : {}),
      ...(serverPort ? { serverPort } : {}),
      ...(mode ? { mode } : {}),
      ...(ssrc !== undefined ? { ssrc } : {}),
    });
  }
  return out;
}

/** `a-b` or `a` (then b = a + 1, RFC 2326 §12.39 port ranges). */
function parseRange(val: string, max: number, what: string): [number, number] {
  const m = /^(\d+)(?:-(\d+))?$/.exec(val);
  const a = Number(m?.[1]);
  const b = m?.[2] === undefined ? a + 1 : Number(m[2]);
  if (!m || a > max || b > max) throw new RtspProtocolError(`invalid ${what} '${val}'`, 461);
  return [a, b];
}

export function formatTransport(t: TransportSpec): string {
  const parts = [t.lower === 'tcp' ? 'RTP/AVP/TCP' : 'RTP/AVP', t.unicast ? 'unicast' : 'multicast'];
  if (t.interleaved) parts.push(`interleaved=${t.interleaved[0]}-${t.interleaved[1]}`);
  if (t.clientPort) parts.push(`client_port=${t.clientPort[0]}-${t.clientPort[1]}`);
  if (t.serverPort) parts.push(`server_port=${t.serverPort[0]}-${t.serverPort[1]}`);
  if (t.ssrc !== undefined) parts.push(`ssrc=${t.ssrc.toString(16).toUpperCase().padStart(8, '0')}`);
  if (t.mode === 'record') parts.push('mode=record');
  return parts.join(';');
}

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
