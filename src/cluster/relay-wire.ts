/**
 * The relay's wire format between workers (`workers N`): how the worker that owns a stream
 * hands its MediaBus (tracks and frames, already parsed) to another worker over loopback, so
 * each worker keeps one copy of the stream and muxes it once for its own viewers. Hand-written
 * because it carries our own Frame/Tracks model: no parsing or remuxing on either side, which
 * an RTMP hop (as nginx-rtmp's rtmp_auto_push uses) would cost. Sans-IO: encoders return
 * Buffers, RelayReader takes chunks and returns messages.
 *
 * Every message: u32 length of what follows, u8 type, payload.
 *   1 subscribe  secret (32 bytes) + UTF-8 stream name     (puller → owner, first message)
 *   2 tracks     JSON {video?, audio?} with configs in base64
 *   3 frame      u8 kind (0 video, 1 audio), u8 keyframe, f64 dts, f64 pts, data
 */
import type { AudioTrack, Frame, Tracks, VideoTrack } from '../media/types.js';

export const SECRET_BYTES = 32;
const TYPE_SUBSCRIBE = 1;
const TYPE_TRACKS = 2;
const TYPE_FRAME = 3;
const FRAME_HEAD = 1 + 1 + 8 + 8;

export type RelayMessage =
  | { type: 'subscribe'; secret: Buffer; name: string }
  | { type: 'tracks'; tracks: Tracks }
  | { type: 'frame'; frame: Frame };

export class RelayWireError extends Error {}

function head(type: number, bodyLength: number): Buffer {
  const h = Buffer.allocUnsafe(5);
  h.writeUInt32BE(bodyLength + 1, 0);
  h.writeUInt8(type, 4);
  return h;
}

export function encodeSubscribe(secret: Buffer, name: string): Buffer {
  const n = Buffer.from(name, 'utf8');
  return Buffer.concat([head(TYPE_SUBSCRIBE, SECRET_BYTES + n.length), secret, n]);
}

export function encodeTracks(tracks: Tracks): Buffer {
  const plain = {
    ...(tracks.video ? { video: { ...tracks.video, config: tracks.video.config.toString('base64') } } : {}),
    ...(tracks.audio ? { audio: { ...tracks.audio, config: tracks.audio.config.toString('base64') } } : {}),
  };
  const json = Buffer.from(JSON.stringify(plain), 'utf8');
  return Buffer.concat([head(TYPE_TRACKS, json.length), json]);
}

/** The frame's header; its data follows as a second Buffer (written as is, never copied). */
export function encodeFrameHead(frame: Frame): Buffer {
  const h = head(TYPE_FRAME, FRAME_HEAD + frame.data.length);
  const b = Buffer.allocUnsafe(5 + FRAME_HEAD);
  h.copy(b, 0);
  b.writeUInt8(frame.kind === 'video' ? 0 : 1, 5);
  b.writeUInt8(frame.keyframe ? 1 : 0, 6);
  b.writeDoubleBE(frame.dts, 7);
  b.writeDoubleBE(frame.pts, 15);
  return b;
}

function decodeTracks(body: Buffer): Tracks {
  const parsed = JSON.parse(body.toString('utf8')) as {
    video?: Omit<VideoTrack, 'config'> & { config: string };
    audio?: Omit<AudioTrack, 'config'> & { config: string };
  };
  if (typeof parsed !== 'object' || parsed === null) throw new RelayWireError('tracks: not an object');
  const tracks: Tracks = {};
  if (parsed.video) tracks.video = { ...parsed.video, config: Buffer.from(parsed.video.config, 'base64') };
  if (parsed.audio) tracks.audio = { ...parsed.audio, config: Buffer.from(parsed.audio.config, 'base64') };
  return tracks;
}

/** Splits a byte stream into messages; throws RelayWireError on a malformed one. */
export class RelayReader {
  private buf: Buffer = Buffer.alloc(0);

  constructor(private readonly maxMessage: number) {}

  push(chunk: Buffer): RelayMessage[] {
    this.buf = this.buf.length === 0 ? chunk : Buffer.concat([this.buf, chunk]);
    const out: RelayMessage[] = [];
    while (this.buf.length >= 4) {
      const len = this.buf.readUInt32BE(0);
      if (len < 1 || len > this.maxMessage) throw new RelayWireError(`message of ${len} bytes`);
      if (this.buf.length < 4 + len) break;
      const type = this.buf[4] as number;
      const body = this.buf.subarray(5, 4 + len);
      this.buf = this.buf.subarray(4 + len);
      out.push(decode(type, body));
    }
    return out;
  }
}

function decode(type: number, body: Buffer): RelayMessage {
  switch (type) {
    case TYPE_SUBSCRIBE:
      if (body.length < SECRET_BYTES) throw new RelayWireError('subscribe: short');
      return {
        type: 'subscribe',
        secret: Buffer.from(body.subarray(0, SECRET_BYTES)),
        name: body.subarray(SECRET_BYTES).toString('utf8'),
      };
    case TYPE_TRACKS:
      return { type: 'tracks', tracks: decodeTracks(body) };
    case TYPE_FRAME: {
      if (body.length < FRAME_HEAD) throw new RelayWireError('frame: short');
      const kind = body[0];
      if (kind !== 0 && kind !== 1) throw new RelayWireError(`frame: kind ${String(kind)}`);
      return {
        type: 'frame',
        frame: {
          kind: kind === 0 ? 'video' : 'audio',
          keyframe: body[1] === 1,
          dts: body.readDoubleBE(2),
          pts: body.readDoubleBE(10),
          // Copied out, so a frame in a viewer's GOP cache does not pin the whole socket read.
          data: Buffer.from(body.subarray(FRAME_HEAD)),
        },
      };
    }
    default:
      throw new RelayWireError(`unknown message type ${type}`);
  }
}
