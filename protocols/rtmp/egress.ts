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
 *
 * Messages are not handed out one by one: those muxed in one turn of the event loop (a
 * publisher read often carries audio and video, a joining viewer's GOP replay carries many)
 * are concatenated into ONE Buffer when the turn ends (setImmediate, no timer), and that Buffer
 * is the item every viewer writes: one write syscall per viewer per turn instead of one per
 * message, one Buffer.concat per stream instead of one writev per viewer. A batch only ever
 * begins at a start point or continues one, so start points survive batching.
 *
 * Audio of a stream with video does not end a batch by itself: it rides with the next video
 * frame (at most one frame interval later), or leaves after AUDIO_HOLD_MS if no video comes.
 * An encoder sends audio and video as separate messages a few ms apart, so without this every
 * viewer would get about two writes per video frame (~77 a second for 30 fps + 48 kHz AAC)
 * instead of one (~31); players buffer far more than that, and video is never held back.
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
export const OUT_CHUNK_SIZE = 65536;
/** Longest an audio message waits for a video frame to share a write with (see the header). */
export const AUDIO_HOLD_MS = 50;
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
  /** Messages of the current event-loop turn, not yet handed to the viewers. */
  private batch: Buffer[] = [];
  private batchBytes = 0;
  private batchPayload = 0;
  private batchStart = false;
  private batchAllStarts = true;
  private flushScheduled = false;
  /** Armed while the batch holds only audio waiting for video. */
  private audioHold: ReturnType<typeof setTimeout> | undefined;
  private readonly flushSoon = (): void => {
    this.flushScheduled = false;
    this.flush();
  };
  private readonly audioHoldOver = (): void => {
    this.audioHold = undefined;
    this.flush();
  };

  /** Hands the messages batched so far to the viewers now (also run when the turn ends). */
  flush(): void {
    if (this.audioHold !== undefined) {
      clearTimeout(this.audioHold);
      this.audioHold = undefined;
    }
    if (this.batch.length === 0) return;
    const bytes = this.batch.length === 1 ? this.batch[0]! : Buffer.concat(this.batch, this.batchBytes);
    const item: RtmpItem = { bytes, start: this.batchStart, payload: this.batchPayload };
    this.batch = [];
    this.batchBytes = 0;
    this.batchPayload = 0;
    this.fanout.publish(item);
  }

  /** `soon`: flush when this turn ends; otherwise (audio next to video) wait for video, or AUDIO_HOLD_MS. */
  private queue(bytes: Buffer, start: boolean, payload: number, soon: boolean): void {
    // A start point in the middle of a batch would be invisible to a viewer waiting for one
    // and to the GOP cache, so it opens a batch of its own. Audio without video is the
    // exception: every frame is a start point, and any of them can begin the batch.
    if (start && this.batch.length > 0 && !this.batchAllStarts) this.flush();
    if (this.batch.length === 0) {
      this.batchStart = start;
      this.batchAllStarts = true;
    }
    this.batchAllStarts &&= start;
    this.batch.push(bytes);
    this.batchBytes += bytes.length;
    this.batchPayload += payload;
    if (soon) {
      if (!this.flushScheduled) {
        this.flushScheduled = true;
        setImmediate(this.flushSoon);
      }
    } else if (this.audioHold === undefined && !this.flushScheduled) {
      this.audioHold = setTimeout(this.audioHoldOver, AUDIO_HOLD_MS);
    }
  }

  protected override idle(): void {
    if (this.audioHold !== undefined) clearTimeout(this.audioHold);
    this.audioHold = undefined;
    this.batch = [];
    this.batchBytes = 0;
    this.batchPayload = 0;
    super.idle();
  }

  protected onTracks(tracks: Tracks): void {
    // Frames muxed with the old parameters go out before the new headers, as they came.
    this.flush();
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
      this.queue(message(CSID_VIDEO, MSG.Video, ts, body), frame.keyframe, body.length, true);
    } else if (this.tracks?.audio) {
      const body = audioTagBody(frame, this.tracks.audio);
      const alone = this.tracks.video === undefined;
      this.queue(message(CSID_AUDIO, MSG.Audio, ts, body), alone, body.length, alone);
    }
  }
}

function message(csid: number, type: number, timestamp: number, payload: Buffer): Buffer {
  return encodeMessage({ csid, type, streamId: PLAY_STREAM_ID, timestamp, payload }, OUT_CHUNK_SIZE);
}
