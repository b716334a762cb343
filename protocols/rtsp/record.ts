/**
 * Record mode of one RTSP connection once ANNOUNCE was accepted: which transport carries
 * which announced track (interleaved channels, or a UDP port pair of the server), RECORD,
 * the received packets turned into tracks and frames for the stream, and the receiver
 * reports the publisher is sent. Pure: the connection owns the sockets and hands the result
 * to the stream's publisher.
 */
import type { Frame, Tracks } from '../../src/media/types.js';
import { RtpToFrames, type TrackKind } from './to-stream.js';
import { RtspProtocolError } from './wire/errors.js';
import { ReceptionStats } from './wire/reception.js';
import { parseRtp, parseSenderReports } from './wire/rtp.js';
import type { AnnouncedTracks } from './wire/sdp.js';
import { parseTransport, pickRecordTransport, type TransportSpec, type UdpPorts } from './wire/transport.js';

/** Malformed packets logged per connection; after that they are only dropped. */
const LOGGED_BAD_PACKETS = 5;
/**
 * Packets held per UDP track to put reordered ones back in order: at 5 Mb/s a keyframe is
 * some hundreds of packets sent back to back, and reordering on a real network spans a few;
 * 64 packets is under 100 ms of video and a second of audio, held only while one is missing.
 */
export const UDP_REORDER_DEPTH = 64;

export type RecordSetupAnswer =
  | { readonly status: 200; readonly kind: TrackKind; readonly transport: TransportSpec }
  /** 404: the URL names no announced track; 455: already recording; 461: no offer this server can take. */
  | { readonly status: 404 | 455 | 461 };

export type Received =
  /** Before RECORD, or on a channel no SETUP assigned (a player's receiver reports): dropped, never forwarded. */
  | { readonly kind: 'ignored' }
  | {
      readonly kind: 'media';
      readonly bytes: number;
      readonly tracks?: Tracks;
      readonly frames: readonly Frame[];
    }
  /** One bad packet costs one picture, not the publisher; `log` is true for the first few. */
  | { readonly kind: 'malformed'; readonly bytes: number; readonly error: string; readonly log: boolean };

/** A receiver report for one track and the transport it goes back on. */
export interface ReceiverReport {
  readonly kind: TrackKind;
  readonly transport: TransportSpec;
  readonly packet: Buffer;
}

export class RecordState {
  private readonly ingest: RtpToFrames;
  private readonly transports = new Map<TrackKind, TransportSpec>();
  private readonly channels = new Map<number, { kind: TrackKind; rtcp: boolean }>();
  private readonly stats: Record<TrackKind, ReceptionStats>;
  private recording = false;
  private badPackets = 0;

  constructor(readonly announced: AnnouncedTracks) {
    this.ingest = new RtpToFrames(announced);
    this.stats = {
      video: new ReceptionStats(announced.video?.clockRate ?? 90_000),
      audio: new ReceptionStats(announced.audio?.clockRate ?? 48_000),
    };
  }

  get started(): boolean {
    return this.recording;
  }

  /** The transport a track was set up with. */
  transport(kind: TrackKind): TransportSpec | undefined {
    return this.transports.get(kind);
  }

  /** Which announced track a SETUP URL names (undefined: 404). */
  trackFor(uri: string): TrackKind | undefined {
    return recordTrackFor(uri, this.announced);
  }

  /**
   * SETUP of one announced track. `udp` is the server port pair allocated for it when the
   * client offered UDP. Throws RtspProtocolError (400) for a malformed Transport header.
   */
  setup(uri: string, transportHeader: string, udp?: UdpPorts): RecordSetupAnswer {
    if (this.recording) return { status: 455 };
    const kind = recordTrackFor(uri, this.announced);
    if (!kind) return { status: 404 };
    const others = [...this.transports].filter(([k]) => k !== kind).map(([, t]) => t);
    const transport = pickRecordTransport(parseTransport(transportHeader), others, udp);
    if (!transport) return { status: 461 };
    // A repeated SETUP of a track moves it to its new channels or ports.
    for (const [channel, c] of this.channels) if (c.kind === kind) this.channels.delete(channel);
    this.transports.set(kind, transport);
    if (transport.interleaved) {
      const [rtp, rtcp] = transport.interleaved;
      this.channels.set(rtp, { kind, rtcp: false });
      this.channels.set(rtcp, { kind, rtcp: true });
    }
    this.ingest.useReorder(kind, transport.lower === 'udp' ? UDP_REORDER_DEPTH : 0);
    return { status: 200, kind, transport };
  }

  /** RECORD: false (455) before any SETUP or when already recording. */
  record(): boolean {
    if (this.recording || this.transports.size === 0) return false;
    this.recording = true;
    return true;
  }

  /** One interleaved packet from the publisher; `arrival` in seconds, for the jitter estimate. */
  receive(channel: number, payload: Buffer, arrival = 0): Received {
    const ch = this.recording ? this.channels.get(channel) : undefined;
    if (!ch) return { kind: 'ignored' };
    return this.take(ch.kind, ch.rtcp, payload, arrival);
  }

  /** One datagram on the server port pair of a track set up over UDP (the sender's address already checked). */
  receiveUdp(kind: TrackKind, rtcp: boolean, payload: Buffer, arrival: number): Received {
    if (!this.recording || this.transports.get(kind)?.lower !== 'udp') return { kind: 'ignored' };
    return this.take(kind, rtcp, payload, arrival);
  }

  /** Receiver reports for every track that has received something (`reporter`: our SSRC). */
  receiverReports(reporter: number, cname: string, now: number): ReceiverReport[] {
    const out: ReceiverReport[] = [];
    for (const [kind, transport] of this.transports) {
      const packet = this.stats[kind].report(reporter, cname, now);
      if (packet) out.push({ kind, transport, packet });
    }
    return out;
  }

  /** Packets lost and packets that came too late, per track, after reordering. */
  losses(kind: TrackKind): { lost: number; late: number } {
    return this.ingest.losses(kind);
  }

  private take(kind: TrackKind, rtcp: boolean, payload: Buffer, arrival: number): Received {
    const bytes = payload.length;
    if (rtcp) {
      this.ingest.rtcp(kind, payload);
      const sr = parseSenderReports(payload)[0];
      if (sr) this.stats[kind].onSenderReport(sr.ntpSeconds, arrival);
      return { kind: 'media', bytes, frames: [] };
    }
    try {
      const p = parseRtp(payload);
      this.stats[kind].onRtp(p, arrival);
      const r = this.ingest.packet(kind, p, arrival);
      return { kind: 'media', bytes, frames: r.frames, ...(r.tracks ? { tracks: r.tracks } : {}) };
    } catch (err) {
      if (!(err instanceof RtspProtocolError)) throw err;
      return { kind: 'malformed', bytes, error: err.message, log: ++this.badPackets <= LOGGED_BAD_PACKETS };
    }
  }
}

/** Which announced track a record SETUP URL names: its SDP control ends the URL (ffmpeg: `…/streamid=1`). */
export function recordTrackFor(uri: string, announced: AnnouncedTracks): TrackKind | undefined {
  const url = uri.replace(/\/+$/, '');
  const matches = (control: string | undefined): boolean =>
    control !== undefined && control !== '' && control !== '*' && url.endsWith(control);
  if (announced.video && matches(announced.video.control)) return 'video';
  if (announced.audio && matches(announced.audio.control)) return 'audio';
  // A single announced track may be set up at the aggregate URL.
  if (announced.video && !announced.audio) return 'video';
  if (announced.audio && !announced.video) return 'audio';
  return undefined;
}
