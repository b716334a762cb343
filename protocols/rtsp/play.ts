/**
 * Play mode of one RTSP connection once the session manager said yes and the stream has
 * tracks: which tracks are set up over which transport, the DESCRIBE and PLAY answers, and
 * where each packet of the stream's shared RTP items goes for this viewer. Pure: the
 * connection does the writing.
 */
import type { Tracks } from '../../src/media/types.js';
import { rtspCarriesAudio, rtspCarriesVideo, rtspTracks } from './codecs.js';
import type { MediaKind, RtpItem } from './egress.js';
import { formatRtpInfo, type RtpInfoEntry } from './wire/headers.js';
import type { HeaderList } from './wire/message.js';
import { AUDIO_TRACK_ID, VIDEO_TRACK_ID, writeSdp } from './wire/sdp.js';
import { parseTransport, pickPlayTransport, type TransportSpec, type UdpPorts } from './wire/transport.js';

/** A stream can be played over RTSP once it has a track of a codec RTSP carries (codecs.ts). */
export function playable(tracks: Tracks | undefined): tracks is Tracks {
  return rtspCarriesVideo(tracks?.video?.codec) || rtspCarriesAudio(tracks?.audio?.codec);
}

/** Where one packet goes: an interleaved channel of the RTSP connection, or a UDP port of the client. */
export type Route =
  | { readonly via: 'tcp'; readonly channel: number }
  | { readonly via: 'udp'; readonly channel: 'rtp' | 'rtcp'; readonly port: number };

/** One RTP item as this viewer is sent it: sender reports first, then the item's shared packets. */
export interface Delivery {
  readonly reports: readonly { readonly to: Route; readonly packet: Buffer }[];
  readonly to: Route;
  readonly packets: readonly Buffer[];
  /** Media bytes, for the session's byte count. */
  readonly bytes: number;
}

export type SetupAnswer =
  | { readonly status: 200; readonly transport: TransportSpec }
  /** 404: no such track; 455: already playing; 461: no transport offer we can serve. */
  | { readonly status: 404 | 455 | 461 };

interface SetUpTrack {
  readonly transport: TransportSpec;
  readonly rtp: Route;
  readonly rtcp: Route | undefined;
}

const NO_REPORTS: Delivery['reports'] = [];

export class PlayState {
  private readonly setUp = new Map<MediaKind, SetUpTrack>();
  /** Items that came before the PLAY answer was written; they follow it. */
  private held: RtpItem[] | undefined;
  private started = false;

  constructor(readonly tracks: Tracks) {}

  get playing(): boolean {
    return this.started;
  }

  /** The DESCRIBE answer: the SDP, and Content-Base so that relative track URLs resolve against the request URL. */
  describe(base: string, origin: string): { headers: HeaderList; sdp: string } {
    return {
      headers: [
        ['Content-Type', 'application/sdp'],
        // RFC 2326 §C.1.1: relative a=control URLs resolve against this; the query stays on it
        // so that SETUP and PLAY URLs keep the token.
        ['Content-Base', `${base}/`],
      ],
      sdp: writeSdp(rtspTracks(this.tracks), { origin }),
    };
  }

  /**
   * SETUP of one track (`control`: its `trackID=N`, or undefined for the aggregate URL) with
   * the client's Transport header. `udp` is the server's port pair when it can reach this
   * client over UDP. Throws RtspProtocolError (400) for a malformed Transport header.
   */
  setup(control: string | undefined, transportHeader: string, udp: UdpPorts | undefined): SetupAnswer {
    // Adding tracks to a running PLAY is not supported (RFC 2326 §10.4 allows refusing).
    if (this.started || this.held) return { status: 455 };
    const kind = this.trackFor(control);
    if (!kind) return { status: 404 };
    // A repeated SETUP of a track replaces its transport, so its own channels are not taken.
    const others = [...this.setUp].filter(([k]) => k !== kind).map(([, t]) => t.transport);
    const transport = pickPlayTransport(parseTransport(transportHeader), others, udp);
    if (!transport) return { status: 461 };
    this.setUp.set(kind, { transport, ...routes(transport) });
    return { status: 200, transport };
  }

  /** True once a track is set up, which PLAY needs (455 before). */
  get ready(): boolean {
    return this.setUp.size > 0;
  }

  /**
   * PLAY is about to subscribe: from now on `offer` holds items until `start`, because the
   * cached GOP is replayed at once on subscribe and must follow the PLAY answer, whose
   * RTP-Info tells where each track's numbering starts.
   */
  subscribing(): void {
    this.held ??= [];
  }

  /**
   * The PLAY answer's RTP-Info for the tracks set up (`base`: the stream URL), from the first
   * held item of each track or else the track's next sequence number; then playing starts
   * and the held items come back as deliveries to write after the answer.
   */
  start(
    base: string,
    nextSequence: (kind: MediaKind) => number | undefined,
  ): { rtpInfo: string | undefined; udp: boolean; backlog: Delivery[] } {
    const held = this.held ?? [];
    const info: RtpInfoEntry[] = [];
    for (const kind of this.setUp.keys()) {
      const first = held.find((i) => i.track === kind);
      const seq = first?.sequence ?? nextSequence(kind);
      const url = `${base}/trackID=${kind === 'video' ? VIDEO_TRACK_ID : AUDIO_TRACK_ID}`;
      if (seq !== undefined) info.push({ url, seq, ...(first ? { rtptime: first.rtpTime } : {}) });
    }
    this.held = undefined;
    this.started = true;
    const backlog: Delivery[] = [];
    for (const item of held) {
      const d = this.delivery(item);
      if (d) backlog.push(d);
    }
    return {
      rtpInfo: info.length > 0 ? formatRtpInfo(info) : undefined,
      udp: [...this.setUp.values()].some((t) => t.transport.lower === 'udp'),
      backlog,
    };
  }

  /** An item from the stream: what to send now, or nothing (held until PLAY is answered, or a track not set up). */
  offer(item: RtpItem): Delivery | undefined {
    if (this.held) {
      this.held.push(item);
      return undefined;
    }
    return this.started ? this.delivery(item) : undefined;
  }

  private delivery(item: RtpItem): Delivery | undefined {
    const track = this.setUp.get(item.track);
    if (!track) return undefined;
    let reports = NO_REPORTS;
    if (item.reports) {
      const list: { to: Route; packet: Buffer }[] = [];
      for (const [kind, t] of this.setUp) {
        const report = item.reports[kind];
        if (report && t.rtcp) list.push({ to: t.rtcp, packet: report });
      }
      reports = list;
    }
    return { reports, to: track.rtp, packets: item.packets, bytes: item.payload };
  }

  private trackFor(control: string | undefined): MediaKind | undefined {
    const t = this.tracks;
    if (control !== undefined) {
      const id = Number(/=(\d+)$/.exec(control)?.[1]);
      if (id === VIDEO_TRACK_ID && rtspCarriesVideo(t.video?.codec)) return 'video';
      if (id === AUDIO_TRACK_ID && rtspCarriesAudio(t.audio?.codec)) return 'audio';
      return undefined;
    }
    // A SETUP of the aggregate URL: the first track not yet set up.
    if (rtspCarriesVideo(t.video?.codec) && !this.setUp.has('video')) return 'video';
    if (rtspCarriesAudio(t.audio?.codec) && !this.setUp.has('audio')) return 'audio';
    return undefined;
  }
}

function routes(t: TransportSpec): { rtp: Route; rtcp: Route | undefined } {
  if (t.lower === 'tcp') {
    const [rtp = 0, rtcp] = t.interleaved ?? [];
    return {
      rtp: { via: 'tcp', channel: rtp },
      rtcp: rtcp === undefined ? undefined : { via: 'tcp', channel: rtcp },
    };
  }
  const [rtp = 0, rtcp] = t.clientPort ?? [];
  return {
    rtp: { via: 'udp', channel: 'rtp', port: rtp },
    rtcp: rtcp === undefined ? undefined : { via: 'udp', channel: 'rtcp', port: rtcp },
  };
}
