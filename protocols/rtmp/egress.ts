/**
 * RtmpEgress: a stream's media as encoded RTMP chunks, muxed once per stream and
 * written as the same Buffers to every RTMP viewer (ARCHITECTURE "fan-out rule").
 *
 * Every message uses a full (type 0) chunk header with an absolute timestamp, so the
 * bytes do not depend on what a particular viewer was sent before.
 *
 * The metadata and codec headers are the egress's preamble (src/media/egress.ts): an RTMP
 * player decodes nothing without them, so every viewer gets them first — also one that
 * subscribed before the publisher arrived, the moment the tracks are known — and again
 * whenever the tracks change. Media then starts at a keyframe.
 */
import { Egress } from '../../src/media/egress.js';
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

export interface RtmpItem {
  readonly bytes: Buffer;
  /** A video keyframe (or an audio frame when there is no video): where a viewer may start. */
  readonly start: boolean;
  /** Media payload bytes in this item, for session byte counts. */
  readonly payload: number;
}

export class RtmpEgress extends Egress<RtmpItem> {
  private tracks: Tracks | undefined;

  protected onTracks(tracks: Tracks): void {
    this.tracks = tracks;
    const parts = [message(CSID_DATA, MSG.DataAmf0, 0, onMetaData(tracks))];
    if (tracks.video) parts.push(message(CSID_VIDEO, MSG.Video, 0, videoSequenceHeader(tracks.video)));
    if (tracks.audio) parts.push(message(CSID_AUDIO, MSG.Audio, 0, audioSequenceHeader(tracks.audio)));
    // Old frames do not decode with new parameters.
    this.fanout.reset();
    this.setPreamble({ bytes: Buffer.concat(parts), start: false, payload: 0 });
  }

  protected onFrame(frame: Frame): void {
    const ts = flvTimestamp(frame.dts);
    if (frame.kind === 'video') {
      // The frame's tag header must name the same codec as the sequence header (E-RTMP for H.265).
      const codec = this.tracks?.video?.codec;
      if (!codec) return;
      const body = videoTagBody(frame, codec);
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
