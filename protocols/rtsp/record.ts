/**
 * Record mode of one RTSP connection once ANNOUNCE was accepted: which interleaved channel
 * carries which announced track, RECORD, and the interleaved packets turned into tracks and
 * frames for the stream. Pure: the connection hands the result to the stream's publisher.
 */
import type { Frame, Tracks } from '../../src/media/types.js';
import { RtpToFrames, type TrackKind } from './to-stream.js';
import { RtspProtocolError } from './wire/errors.js';
import type { AnnouncedTracks } from './wire/sdp.js';
import { parseTransport, pickRecordTransport, type TransportSpec } from './wire/transport.js';

/** Malformed packets logged per connection; after that they are only dropped. */
const LOGGED_BAD_PACKETS = 5;

export type RecordSetupAnswer =
  | { readonly status: 200; readonly transport: TransportSpec }
  /** 404: the URL names no announced track; 455: already recording; 461: no TCP interleaved offer on free channels. */
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

export class RecordState {
  private readonly ingest: RtpToFrames;
  private readonly transports = new Map<TrackKind, TransportSpec>();
  private readonly channels = new Map<number, { kind: TrackKind; rtcp: boolean }>();
  private recording = false;
  private badPackets = 0;

  constructor(readonly announced: AnnouncedTracks) {
    this.ingest = new RtpToFrames(announced);
  }

  get started(): boolean {
    return this.recording;
  }

  /** SETUP of one announced track. Throws RtspProtocolError (400) for a malformed Transport header. */
  setup(uri: string, transportHeader: string): RecordSetupAnswer {
    if (this.recording) return { status: 455 };
    const kind = recordTrackFor(uri, this.announced);
    if (!kind) return { status: 404 };
    const others = [...this.transports].filter(([k]) => k !== kind).map(([, t]) => t);
    const transport = pickRecordTransport(parseTransport(transportHeader), others);
    if (!transport?.interleaved) return { status: 461 };
    // A repeated SETUP of a track moves it to its new channels.
    for (const [channel, c] of this.channels) if (c.kind === kind) this.channels.delete(channel);
    this.transports.set(kind, transport);
    const [rtp, rtcp] = transport.interleaved;
    this.channels.set(rtp, { kind, rtcp: false });
    this.channels.set(rtcp, { kind, rtcp: true });
    return { status: 200, transport };
  }

  /** RECORD: false (455) before any SETUP or when already recording. */
  record(): boolean {
    if (this.recording || this.channels.size === 0) return false;
    this.recording = true;
    return true;
  }

  /** One interleaved packet from the publisher. */
  receive(channel: number, payload: Buffer): Received {
    const ch = this.recording ? this.channels.get(channel) : undefined;
    if (!ch) return { kind: 'ignored' };
    const bytes = payload.length;
    if (ch.rtcp) {
      this.ingest.rtcp(ch.kind, payload);
      return { kind: 'media', bytes, frames: [] };
    }
    try {
      const r = this.ingest.rtp(ch.kind, payload);
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
