/**
 * The Transport header (RFC 2326 §12.39) and the choice this server makes from a client's
 * offers: RTP interleaved in the RTSP connection (TCP) or RTP over UDP to the client's ports,
 * with the interleaved channels or server ports that go with it. Pure: strings and values in,
 * values out.
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

/** The server's UDP port pair that sends RTP and RTCP, when a UDP viewer can be reached from it. */
export interface UdpPorts {
  readonly rtpPort: number;
  readonly rtcpPort: number;
}

/**
 * The transport for one more played track: the client's first unicast offer the server can
 * serve. All tracks of a connection share one lower transport, since a player that mixes
 * them is a player we have never seen. Interleaved channels default to the next free pair
 * (0-1, then 2-3); UDP needs the client's ports and a server socket that reaches it (`udp`
 * undefined when not). Undefined when nothing fits: the SETUP is answered 461.
 */
export function pickPlayTransport(
  offers: readonly TransportSpec[],
  setUp: readonly TransportSpec[],
  udp: UdpPorts | undefined,
): TransportSpec | undefined {
  const existing = setUp[0]?.lower;
  for (const t of offers) {
    if (!t.unicast || (existing !== undefined && t.lower !== existing)) continue;
    if (t.lower === 'tcp') {
      const n = setUp.length;
      return { lower: 'tcp', unicast: true, interleaved: t.interleaved ?? [2 * n, 2 * n + 1] };
    }
    if (udp && t.clientPort) {
      return {
        lower: 'udp',
        unicast: true,
        clientPort: t.clientPort,
        serverPort: [udp.rtpPort, udp.rtcpPort],
      };
    }
  }
  return undefined;
}

/**
 * The transport for one more recorded track: TCP interleaved only. UDP record would need
 * per-publisher receive sockets; every RTSP publisher we know (ffmpeg, GStreamer, OBS
 * plugins) can use TCP, and 461 makes ffmpeg retry with it. `tracksSetUp` tracks already
 * have a channel pair, so the default pair is the next one.
 */
export function pickRecordTransport(
  offers: readonly TransportSpec[],
  tracksSetUp: number,
): TransportSpec | undefined {
  const offer = offers.find((t) => t.lower === 'tcp' && t.unicast);
  if (!offer) return undefined;
  const n = tracksSetUp;
  const [rtp, rtcp] = offer.interleaved ?? [2 * n, 2 * n + 1];
  return { lower: 'tcp', unicast: true, interleaved: [rtp, rtcp], mode: 'record' };
}
