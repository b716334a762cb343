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
 * Parses a Transport header into the alternatives this server could serve, in the client's
 * order of preference. A header that is not a Transport header (a port or channel that is not
 * a number or a range of two) throws RtspProtocolError (400). Alternatives that parse but
 * cannot be served are left out, and the SETUP is answered 461 when nothing is left:
 * - a profile other than RTP/AVP;
 * - client ports outside 1–65535, or a pair that is not an even RTP port with RTCP on the
 *   next one (RFC 3550 §11; ffmpeg, GStreamer and VLC/live555 all offer such a pair). A single
 *   port is RTP alone (RFC 2326 §12.39) and RTCP goes to the next one, so it may be up to 65534;
 * - interleaved channels outside 0–255, or a pair that is not two consecutive channels
 *   (every client sends 0-1, 2-3, …); a single channel is RTP, RTCP takes the next.
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
    let usable = true;
    let unicast = true;
    let interleaved: Pair | undefined;
    let clientPort: Pair | undefined;
    let serverPort: Pair | undefined;
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
          interleaved = checkPair(parseRange(val, key), 0, 255, false);
          usable &&= interleaved !== undefined;
          break;
        case 'client_port':
          clientPort = checkPair(parseRange(val, key), 1, 65535, true);
          usable &&= clientPort !== undefined;
          break;
        case 'server_port':
          // Only a server sends it; a client's is kept when it is sound, for round trips.
          serverPort = checkPair(parseRange(val, key), 1, 65535, true);
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
    if (!usable) continue;
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

type Pair = readonly [number, number];

/** `a-b`, or `a` alone (b undefined); anything else is not a Transport header. */
function parseRange(val: string, what: string): { a: number; b: number | undefined } {
  const m = /^(\d+)(?:-(\d+))?$/.exec(val);
  if (!m) throw new RtspProtocolError(`malformed ${what} '${val}'`, 400);
  return { a: Number(m[1]), b: m[2] === undefined ? undefined : Number(m[2]) };
}

/**
 * An RTP/RTCP pair within `min`..`max`: RTCP on the next number (derived when only RTP is
 * given) and, for a pair of ports, an even RTP port. Undefined when the pair cannot be served.
 */
function checkPair(
  r: { a: number; b: number | undefined },
  min: number,
  max: number,
  evenPair: boolean,
): Pair | undefined {
  const rtp = r.a;
  const rtcp = r.b ?? r.a + 1;
  if (rtp < min || rtcp > max || rtcp !== rtp + 1) return undefined;
  if (evenPair && r.b !== undefined && rtp % 2 !== 0) return undefined;
  return [rtp, rtcp];
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
 * serve (`setUp`: the other tracks' transports). All tracks of a connection share one lower transport, since a player that mixes
 * them is a player we have never seen. Interleaved channels default to the next free pair
 * (0-1, then 2-3) and must not be another track's; UDP needs the client's ports and a server socket that reaches it (`udp`
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
      const interleaved = channelsFor(t, setUp);
      if (interleaved) return { lower: 'tcp', unicast: true, interleaved };
      continue;
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
 * The transport for one more recorded track: the client's first unicast offer the server can
 * take, TCP interleaved or UDP to a server port pair (`udp`: the pair allocated for this
 * track, undefined when none could be). `setUp`: the other tracks' transports, whose
 * channels are taken and whose lower transport this track shares.
 */
export function pickRecordTransport(
  offers: readonly TransportSpec[],
  setUp: readonly TransportSpec[],
  udp?: UdpPorts,
): TransportSpec | undefined {
  const existing = setUp[0]?.lower;
  for (const t of offers) {
    if (!t.unicast || (existing !== undefined && t.lower !== existing)) continue;
    if (t.lower === 'tcp') {
      const interleaved = channelsFor(t, setUp);
      if (interleaved) return { lower: 'tcp', unicast: true, interleaved, mode: 'record' };
      continue;
    }
    if (udp && t.clientPort) {
      return {
        lower: 'udp',
        unicast: true,
        clientPort: t.clientPort,
        serverPort: [udp.rtpPort, udp.rtcpPort],
        mode: 'record',
      };
    }
  }
  return undefined;
}

/** Whether a Transport header offers RTP over UDP to client ports: a UDP port pair is worth allocating for it. */
export function offersUdp(offers: readonly TransportSpec[]): boolean {
  return offers.some((t) => t.lower === 'udp' && t.unicast && t.clientPort !== undefined);
}

/**
 * The channels of one more interleaved track: those offered, or else the pair after the
 * highest taken (0-1, then 2-3). Undefined when they are taken by another track, whose
 * packets they would otherwise be mistaken for, or when no pair is left.
 */
function channelsFor(offer: TransportSpec, setUp: readonly TransportSpec[]): Pair | undefined {
  const taken = new Set(setUp.flatMap((t) => t.interleaved ?? []));
  if (offer.interleaved) return offer.interleaved.some((c) => taken.has(c)) ? undefined : offer.interleaved;
  const highest = Math.max(-1, ...taken);
  const rtp = highest + 1 + ((highest + 1) % 2);
  return rtp + 1 <= 255 ? [rtp, rtp + 1] : undefined;
}
