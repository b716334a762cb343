/**
 * RtmpEgress: a stream's media as encoded RTMP chunks, muxed once per stream and
 * written as the same Buffers to every RTMP viewer (ARCHITECTURE "fan-out rule").
 *
 * Every message uses a full (type 0) chunk header with an absolute timestamp, so the
 * bytes do not depend on what a particular viewer was sent before.
 *
 * Unlike the TS and RTP egresses it does not build on src/media/egress.ts: an RTMP viewer
 * must receive the codec headers (which are not start points) even when it subscribed
 * before the publisher arrived, so it is never gated and stays subscribed to the bus.
 */
import type { MediaBus } from '../../src/media/bus.js';
import { FanOut, type FanOutSubscriber } from '../../src/media/fanout.js';
import {
  audioSequenceHeader,
  audioTagBody,
  flvTimestamp,
  onMetaData,
  videoSequenceHeader,
  videoTagBody,
} from '../../src/media/flv.js';
import type { Frame, Tracks } from '../../src/media/types.js';
import { encodeMessage } from './wire/chunk-writer.js';
import { MessageType as MSG } from './wire/messages.js';

/** Chunk size announced to every viewer on connect; large chunks mean fewer headers per frame. */
export const OUT_CHUNK_SIZE = 4096;
/** Message stream id handed out by createStream; one stream per connection. */
export const PLAY_STREAM_ID = 1;

const CSID_DATA = 5;
const CSID_AUDIO = 6;
const CSID_VIDEO = 7;

export interface EgressItem {
  readonly bytes: Buffer;
  /** A video keyframe (or an audio frame when there is no video): where a viewer may start. */
  readonly start: boolean;
  /** Media payload bytes in this item, for session byte counts. */
  readonly payload: number;
}

export class RtmpEgress {
  private readonly fanout = new FanOut<EgressItem>((i) => i.start);
  private header: Buffer | undefined;
  private tracks: Tracks | undefined;

  constructor(bus: MediaBus) {
    bus.subscribe({
      onTracks: (t) => this.onTracks(t),
      onFrame: (f) => this.onFrame(f),
      backlog: () => 0,
    });
  }

  /** Sends the current codec headers, then the cached GOP, then live media to a viewer. */
  subscribe(viewer: FanOutSubscriber<EgressItem>): () => void {
    if (this.header) viewer.deliver({ bytes: this.header, start: false, payload: 0 });
    return this.fanout.subscribe(viewer);
  }

  get viewers(): number {
    return this.fanout.size;
  }

  private onTracks(tracks: Tracks): void {
    this.tracks = tracks;
    const parts = [message(CSID_DATA, MSG.DataAmf0, 0, onMetaData(tracks))];
    if (tracks.video) parts.push(message(CSID_VIDEO, MSG.Video, 0, videoSequenceHeader(tracks.video)));
    if (tracks.audio) parts.push(message(CSID_AUDIO, MSG.Audio, 0, audioSequenceHeader(tracks.audio)));
    this.header = Buffer.concat(parts);
    // Old frames do not decode with new parameters; current viewers get the new headers now.
    this.fanout.reset();
    this.fanout.publish({ bytes: this.header, start: false, payload: 0 });
  }

  private onFrame(frame: Frame): void {
    const ts = flvTimestamp(frame.dts);
    if (frame.kind === 'video') {
      const body = videoTagBody(frame);
      this.fanout.publish({
        bytes: message(CSID_VIDEO, MSG.Video, ts, body),
        start: frame.keyframe,
        payload: body.length,
      });
    } else if (this.tracks?.audio) {
      const body = audioTagBody(frame, this.tracks.audio);
      this.fanout.publish({
        bytes: message(CSID_AUDIO, MSG.Audio, ts, body),
        start: this.tracks.video === undefined,
        payload: body.length,
      });
    }
  }
}

function message(csid: number, type: number, timestamp: number, payload: Buffer): Buffer {
  return encodeMessage({ csid, type, streamId: PLAY_STREAM_ID, timestamp, payload }, OUT_CHUNK_SIZE);
}
