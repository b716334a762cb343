/**
 * RtmpSessionMachine: one RTMP client's protocol session as a pure state machine (the
 * NetConnection and its one NetStream, not the session manager's Session).
 *
 * handshake → connecting → connected → authorizing → starting → publishing | playing
 *
 * Inputs are the client's bytes and what the connection learned on the machine's behalf (the
 * session manager's answer, whether the stream could be claimed); outputs are actions for the
 * connection to perform in order. No I/O and no timers, so every exchange is unit-tested with
 * captured bytes. Media is surfaced only in `publishing`, which is reached only through an
 * allowing decision: nothing is published before the session manager said yes.
 *
 * Exceptions (malformed chunks or commands, a second connect) mean the client broke the
 * protocol; the connection's error policy closes it, and the machine is not used again.
 */
import { FlvToFrames } from '../../src/media/flv.js';
import type { Frame, Tracks } from '../../src/media/types.js';
import type { Amf0Value } from '../../src/media/amf0.js';
import type { LimitName, Limits } from '../../src/core/limits.js';
import type { SessionKind } from '../../src/core/proto.js';
import { refusalText, type CloseReason } from '../../src/core/reasons.js';
import type { ClientRequest, Denial } from '../../src/sessions/types.js';
import { isValidStreamName } from '../../src/streams/names.js';
import {
  AdobeAuth,
  connectApp,
  connectInfo,
  connectParams,
  rtmpTarget,
  withoutAdobeParams,
  type ConnectInfo,
} from './credentials.js';
import { canCarry } from '../../src/media/codec-support.js';
import { DEFAULT_SEGMENT_S, longGopWarning } from '../../src/media/bus.js';
import { CLOCK_RATE } from '../../src/media/types.js';
import { AUDIO_FOURCC, VIDEO_FOURCC } from '../../src/media/flv.js';
import { OUT_CHUNK_SIZE, PLAY_STREAM_ID } from './egress.js';
import {
  ChunkReader,
  type ChunkReaderLimit,
  type ChunkReaderLimits,
  type RtmpMessage,
} from './wire/chunk-reader.js';
import { RtmpLimitError, RtmpProtocolError } from './wire/errors.js';
import { ServerHandshake } from './wire/handshake.js';
import {
  ChunkStreamId,
  MessageType as MSG,
  PeerBandwidthLimit,
  UserControlEvent,
  acknowledgement,
  command,
  decodeCommand,
  onStatus,
  pingResponse,
  setChunkSize,
  setPeerBandwidth,
  streamBegin,
  windowAckSize,
} from './wire/messages.js';

/** A publisher that sends nothing for this long is gone (its encoder crashed or the network died). */
export const PUBLISH_IDLE_MS = 30_000;
/** Window we ask peers to acknowledge; large enough that acks cost nothing. */
const WINDOW_ACK_SIZE = 2_500_000;

/** Which configured limit each of the chunk reader's limits is. */
const READER_LIMIT_NAMES = {
  maxChunkSize: 'rtmp_max_chunk_size',
  maxMessageBytes: 'rtmp_max_message_bytes',
  maxBufferedBytes: 'rtmp_max_buffered_bytes',
  maxChunkStreams: 'rtmp_max_chunk_streams',
} as const satisfies Record<ChunkReaderLimit, LimitName>;

/** The chunk reader's limits from the configured ones. */
export function chunkReaderLimits(limits: Limits): ChunkReaderLimits {
  return {
    maxChunkSize: limits.rtmp_max_chunk_size,
    maxMessageBytes: limits.rtmp_max_message_bytes,
    maxBufferedBytes: limits.rtmp_max_buffered_bytes,
    maxChunkStreams: limits.rtmp_max_chunk_streams,
  };
}

/**
 * Where our messages go. Message stream 0 belongs to the NetConnection (connect, createStream
 * and their answers, §7.1); the NetStream that createStream hands out is the egress's
 * PLAY_STREAM_ID, since the pre-muxed media is written on it. Commands and their answers share
 * one chunk stream.
 */
const NET_CONNECTION_STREAM_ID = 0;
const COMMAND_CSID = ChunkStreamId.Command;

/** One per process: a challenge handed out on one connection is answered on the next. */
const SHARED_ADOBE_AUTH = new AdobeAuth();

/**
 * Enhanced RTMP capabilities we announce when a client declares its own (E-RTMP v2 "Enhancing
 * NetConnection connect Command"): we forward every codec the bus carries (FourCcInfoMask
 * CanForward = 4), parse ModEx (CapsExMask 4) and accept multitrack by keeping one track (2).
 */
const FOURCC_CAN_FORWARD = 0x04;
const CAPS_EX = 0x02 | 0x04;
const OUR_VIDEO_FOURCCS = Object.values(VIDEO_FOURCC);
const OUR_AUDIO_FOURCCS = Object.values(AUDIO_FOURCC);

/** onStatus codes we send (§7.2.2). */
const Status = {
  PublishStart: 'NetStream.Publish.Start',
  PublishBadName: 'NetStream.Publish.BadName',
  PlayReset: 'NetStream.Play.Reset',
  PlayStart: 'NetStream.Play.Start',
  PlayFailed: 'NetStream.Play.Failed',
  PlayStreamNotFound: 'NetStream.Play.StreamNotFound',
} as const;

export type RtmpAction =
  /** Bytes for the client, in order. */
  | { type: 'write'; bytes: Buffer }
  /** The socket's inactivity limit from now on; 0 = none. */
  | { type: 'idle'; ms: number }
  /**
   * Handshake, connect and the play or publish command are in: the handshake deadline is met.
   * From here a player sends nothing while it watches, and the answer may take as long as the
   * auth backend's time-out.
   */
  | { type: 'ready' }
  /** Ask the session manager, then answer with `decided()` (or `decisionFailed()`). */
  | { type: 'authorize'; request: ClientRequest }
  /**
   * The session manager said yes: claim the stream's publisher slot (publish) or find the stream
   * (play), then answer `started()` or `startFailed()`; for play, subscribe after `started()`'s
   * actions are written, so the status precedes the first media byte.
   */
  | { type: 'start'; kind: SessionKind; name: string }
  /** A publisher's audio or video message: `payloadBytes` for the session's count, and what it decoded to. */
  | { type: 'media'; payloadBytes: number; tracks?: Tracks; frame?: Frame }
  /** The onStatus error just written refuses the play or publish: flush it, then close. */
  | { type: 'refuse'; kind: SessionKind; code: string; description: string }
  /** End the connection now. */
  | { type: 'close'; reason: CloseReason }
  /** The client went over a configured limit (`detail` says how): count it and end the connection now. */
  | { type: 'limit'; limit: LimitName; detail: string }
  /** Something about the publisher's media worth one warning in the log (a dropped codec or track, a long GOP). */
  | { type: 'notice'; message: string };

/** Why a granted play or publish could not start (the connection's view of the stream). */
export type StartFailure = Extract<CloseReason, 'stream_not_found' | 'stream_busy'>;

type Phase =
  'handshake' | 'connecting' | 'connected' | 'authorizing' | 'starting' | 'publishing' | 'playing' | 'closed';

export interface RtmpSessionOptions {
  /** The client's address, for the ClientRequest. */
  ip: string;
  /** Random bytes for the handshake's S1; tests inject a deterministic source. */
  random?: (n: number) => Buffer;
  /** The configured limits; the chunk reader enforces the `rtmp_*` ones. */
  limits: Limits;
  /** The `authmod=adobe` challenger; tests inject one with a fixed key and clock. */
  adobeAuth?: AdobeAuth;
  /** Whether publishers to this app must answer the adobe challenge (streams with `rtmp_auth adobe`). */
  adobeRequired?: (app: string) => boolean;
}

export class RtmpSessionMachine {
  private phase: Phase = 'handshake';
  private readonly ip: string;
  private readonly handshake: ServerHandshake;
  private readonly reader: ChunkReader;
  private connect: ConnectInfo | undefined;
  /** The play or publish being authorized or running. */
  private target: { kind: SessionKind; name: string } | undefined;
  private demux: FlvToFrames | undefined;
  private bytesIn = 0;
  private lastAck = 0;
  private peerWindow = 0;
  private readonly adobe: AdobeAuth;
  private readonly adobeRequired: (app: string) => boolean;
  /** A publisher's `authmod=adobe` answer, checked against the stream's password by admission. */
  private passwordProof: ((password: string) => boolean) | undefined;
  /** The FourCCs a client declared it can play (E-RTMP connect); undefined = it said nothing. */
  private clientFourCcs: Set<string> | undefined;
  /** Publisher keyframe spacing watch: the last keyframe's dts and the segment duration to compare with. */
  private lastKeyframeDts: number | undefined;
  private segmentSeconds = DEFAULT_SEGMENT_S;
  private longGopWarned = false;

  constructor(options: RtmpSessionOptions) {
    this.ip = options.ip;
    this.adobe = options.adobeAuth ?? SHARED_ADOBE_AUTH;
    this.adobeRequired = options.adobeRequired ?? (() => false);
    this.handshake = new ServerHandshake(options.random);
    this.reader = new ChunkReader(chunkReaderLimits(options.limits));
  }

  /** Whether the machine refused or ended; it ignores every input from then on. */
  get closed(): boolean {
    return this.phase === 'closed';
  }

  /** Bytes from the client, as the socket delivered them. */
  receive(data: Buffer): RtmpAction[] {
    if (this.closed) return [];
    const out: RtmpAction[] = [];
    this.bytesIn += data.length;
    if (this.phase === 'handshake') {
      const step = this.handshake.push(data);
      if (step.reply) out.push(write(step.reply));
      if (!step.complete) return out;
      this.phase = 'connecting';
      data = step.remainder;
      if (data.length === 0) return out;
    }
    for (const msg of this.read(data, out)) {
      this.onMessage(msg, out);
      if (this.closed) return out;
    }
    if (this.closed) return out;
    // Acknowledged per read, not per message: the peer only needs one ack per window.
    if (this.peerWindow > 0 && this.bytesIn - this.lastAck >= this.peerWindow) {
      this.lastAck = this.bytesIn;
      out.push(write(acknowledgement(this.bytesIn >>> 0)));
    }
    return out;
  }

  /** The reader's messages; a limit it hits ends the machine with a `limit` action instead. */
  private read(data: Buffer, out: RtmpAction[]): RtmpMessage[] {
    try {
      return this.reader.push(data);
    } catch (err) {
      if (!(err instanceof RtmpLimitError)) throw err;
      this.phase = 'closed';
      out.push({ type: 'limit', limit: READER_LIMIT_NAMES[err.limit], detail: err.message });
      return [];
    }
  }

  /** The session manager's answer to the `authorize` action. */
  decided(answer: { allow: true } | Denial): RtmpAction[] {
    const target = this.target;
    if (this.phase !== 'authorizing' || !target) return [];
    if (!answer.allow) {
      const description =
        answer.status === 302 && answer.location ? `redirect: ${answer.location}` : refusalText(answer);
      const code = answer.status === 404 && target.kind === 'play' ? Status.PlayStreamNotFound : undefined;
      return this.refuse(target.kind, description, code);
    }
    this.phase = 'starting';
    return [{ type: 'start', kind: target.kind, name: target.name }];
  }

  /** The session manager could not answer (it threw): the client is refused, not left waiting. */
  decisionFailed(): RtmpAction[] {
    const target = this.target;
    if (this.phase !== 'authorizing' || !target) return [];
    return this.refuse(target.kind, 'internal error');
  }

  /**
   * The stream is claimed (publish) or found (play): tell the client it runs. `segmentSeconds`
   * is the stream's HLS segment duration, which a publisher's keyframe interval is held against.
   */
  started(options: { segmentSeconds?: number | undefined } = {}): RtmpAction[] {
    if (options.segmentSeconds !== undefined) this.segmentSeconds = options.segmentSeconds;
    const target = this.target;
    if (this.phase !== 'starting' || !target) throw new Error(`started() in phase ${this.phase}`);
    const { kind, name } = target;
    if (kind === 'publish') {
      this.phase = 'publishing';
      this.demux = new FlvToFrames();
      return [
        { type: 'idle', ms: PUBLISH_IDLE_MS },
        write(streamBegin(PLAY_STREAM_ID)),
        status('status', Status.PublishStart, `${name} is now published.`),
      ];
    }
    this.phase = 'playing';
    return [
      write(streamBegin(PLAY_STREAM_ID)),
      status('status', Status.PlayReset, `Playing and resetting ${name}.`),
      status('status', Status.PlayStart, `Started playing ${name}.`),
    ];
  }

  /**
   * A player about to start on a stream with these tracks: refusal actions (`NetStream.Play.Failed`
   * with the reason) when RTMP or this client cannot take a codec, else undefined. A client that
   * declared no FourCCs gets every codec (ffmpeg 6.1+ plays E-RTMP without declaring it).
   */
  codecRefusal(tracks: Tracks | undefined): RtmpAction[] | undefined {
    const target = this.target;
    if (this.phase !== 'starting' || target?.kind !== 'play') return undefined;
    for (const track of [tracks?.video, tracks?.audio]) {
      if (!track) continue;
      const fourCc = track.kind === 'video' ? VIDEO_FOURCC[track.codec] : AUDIO_FOURCC[track.codec];
      const legacy = track.codec === 'h264' || track.codec === 'aac';
      if (!canCarry('rtmp', track.codec)) {
        return this.refuse('play', `${track.codec} ${track.kind} cannot be carried over RTMP`);
      }
      if (!legacy && this.clientFourCcs && !this.clientFourCcs.has(fourCc) && !this.clientFourCcs.has('*')) {
        return this.refuse(
          'play',
          `the stream's ${track.kind} is ${fourCc}, which this client did not list in fourCcList`,
        );
      }
    }
    return undefined;
  }

  /** The granted play or publish cannot start: refuse it (the session closes as `refused`). */
  startFailed(reason: StartFailure): RtmpAction[] {
    const target = this.target;
    if (this.phase !== 'starting' || !target) throw new Error(`startFailed() in phase ${this.phase}`);
    if (reason === 'stream_busy') return this.refuse(target.kind, 'stream is already being published');
    return this.refuse(
      target.kind,
      'stream not found',
      target.kind === 'play' ? Status.PlayStreamNotFound : undefined,
    );
  }

  private onMessage(msg: RtmpMessage, out: RtmpAction[]): void {
    switch (msg.type) {
      case MSG.WindowAckSize:
        this.peerWindow = msg.payload.length >= 4 ? msg.payload.readUInt32BE(0) : 0;
        return;
      case MSG.UserControl:
        if (msg.payload.length >= 6 && msg.payload.readUInt16BE(0) === UserControlEvent.PingRequest) {
          out.push(write(pingResponse(msg.payload.readUInt32BE(2))));
        }
        return;
      case MSG.CommandAmf0:
      case MSG.CommandAmf3:
        this.onCommand(msg, out);
        return;
      case MSG.Audio:
      case MSG.Video:
        this.onMedia(msg, out);
        return;
      default:
        return; // data messages (@setDataFrame, onMetaData) and acks: our own metadata comes from the tracks
    }
  }

  private onCommand(msg: RtmpMessage, out: RtmpAction[]): void {
    const { name, txId, args } = decodeCommand(msg);
    switch (name) {
      case 'connect':
        this.onConnect(txId, args[0], out);
        return;
      case 'createStream':
        out.push(result(txId, null, PLAY_STREAM_ID));
        return;
      case 'releaseStream':
      case 'FCPublish':
      case 'FCUnpublish':
        // OBS (librtmp) sends these around publish and ignores the answers; answer them anyway.
        out.push(result(txId, null, undefined));
        return;
      case 'publish':
      case 'play':
        out.push(...this.onPlayOrPublish(name, args[1]));
        return;
      case 'deleteStream':
      case 'closeStream':
        if (this.phase === 'publishing' || this.phase === 'playing') {
          this.phase = 'closed';
          out.push({ type: 'close', reason: 'client_closed' });
        }
        return;
      default:
        return; // getStreamLength, _checkbw, … : nothing a live origin needs to answer
    }
  }

  private onConnect(txId: number, commandObject: Amf0Value | undefined, out: RtmpAction[]): void {
    if (this.phase !== 'connecting') throw new RtmpProtocolError('connect sent twice');
    let connect = connectInfo(commandObject);
    out.push(
      write(windowAckSize(WINDOW_ACK_SIZE)),
      write(setPeerBandwidth(WINDOW_ACK_SIZE, PeerBandwidthLimit.Dynamic)),
      write(setChunkSize(OUT_CHUNK_SIZE)),
    );
    // Players connect to the same apps and cannot answer the challenge; publishers name themselves
    // with the Flash Media Live Encoder flashVer ("FMLE/3.0 (compatible; …)": OBS, ffmpeg, GStreamer).
    const publisherLike = connect.flashVer?.startsWith('FMLE/') === true;
    const adobe = this.adobe.step(
      connectParams(connect),
      publisherLike && this.adobeRequired(connectApp(connect)),
    );
    if (adobe.kind === 'reject') {
      // The client reconnects with its answer; this connection is done (FMS closes it too).
      this.phase = 'closed';
      const info = { level: 'error', code: 'NetConnection.Connect.Rejected', description: adobe.description };
      out.push(
        write(command(COMMAND_CSID, NET_CONNECTION_STREAM_ID, OUT_CHUNK_SIZE, '_error', txId, null, info)),
        { type: 'refuse', kind: 'publish', code: info.code, description: 'authmod=adobe challenge sent' },
      );
      return;
    }
    if (adobe.kind === 'answered') {
      this.passwordProof = adobe.check;
      connect = withoutAdobeParams(connect);
    }
    this.connect = connect;
    this.phase = 'connected';
    const caps = enhancedCaps(commandObject);
    this.clientFourCcs = caps?.fourCcs;
    out.push(
      result(
        txId,
        {
          fmsVer: 'FMS/3,0,1,123',
          capabilities: 31,
          ...(caps
            ? {
                fourCcList: [...OUR_VIDEO_FOURCCS, ...OUR_AUDIO_FOURCCS],
                videoFourCcInfoMap: Object.fromEntries(OUR_VIDEO_FOURCCS.map((f) => [f, FOURCC_CAN_FORWARD])),
                audioFourCcInfoMap: Object.fromEntries(OUR_AUDIO_FOURCCS.map((f) => [f, FOURCC_CAN_FORWARD])),
                capsEx: CAPS_EX,
              }
            : {}),
        },
        {
          level: 'status',
          code: 'NetConnection.Connect.Success',
          description: 'Connection succeeded.',
          objectEncoding: 0,
        },
      ),
    );
  }

  private onPlayOrPublish(kind: SessionKind, nameArg: Amf0Value | undefined): RtmpAction[] {
    const connect = this.connect;
    if (this.phase !== 'connected' || !connect) {
      return this.refuse(kind, 'already playing or publishing on this connection');
    }
    const out: RtmpAction[] = [{ type: 'ready' }];
    const target = rtmpTarget(connect, typeof nameArg === 'string' ? nameArg : '');
    if (!isValidStreamName(target.name)) {
      out.push(
        ...this.refuse(
          kind,
          `invalid stream name '${shorten(target.name)}'`,
          kind === 'play' ? Status.PlayStreamNotFound : undefined,
        ),
      );
      return out;
    }
    this.phase = 'authorizing';
    this.target = { kind, name: target.name };
    const host = connect.tcUrl ? hostOf(connect.tcUrl) : undefined;
    const request: ClientRequest = {
      kind,
      proto: 'rtmp',
      name: target.name,
      ip: this.ip,
      qs: target.qs,
      query: target.query,
      ...(target.token !== undefined ? { token: target.token } : {}),
      ...(connect.flashVer ? { userAgent: connect.flashVer } : {}),
      ...(connect.pageUrl ? { referer: connect.pageUrl } : {}),
      ...(host ? { host } : {}),
      ...(kind === 'publish' && this.passwordProof ? { passwordProof: this.passwordProof } : {}),
    };
    out.push({ type: 'authorize', request });
    return out;
  }

  private onMedia(msg: RtmpMessage, out: RtmpAction[]): void {
    // Media before the session manager allowed the publish is dropped, never forwarded.
    if (this.phase !== 'publishing' || !this.demux) return;
    const r =
      msg.type === MSG.Video
        ? this.demux.video(msg.timestamp, msg.payload)
        : this.demux.audio(msg.timestamp, msg.payload);
    if (r.notice) out.push({ type: 'notice', message: r.notice });
    if (r.frame?.kind === 'video' && r.frame.keyframe) this.watchKeyframes(r.frame.dts, out);
    out.push({
      type: 'media',
      payloadBytes: msg.payload.length,
      ...(r.tracks ? { tracks: r.tracks } : {}),
      ...(r.frame ? { frame: r.frame } : {}),
    });
  }

  /** Warns once when keyframes come much further apart than an HLS segment should last. */
  private watchKeyframes(dts: number, out: RtmpAction[]): void {
    const previous = this.lastKeyframeDts;
    this.lastKeyframeDts = dts;
    if (previous === undefined || this.longGopWarned) return;
    const message = longGopWarning((dts - previous) / CLOCK_RATE, this.segmentSeconds);
    if (!message) return;
    this.longGopWarned = true;
    out.push({ type: 'notice', message });
  }

  /** Refuses a play or publish with an onStatus error, then closes (SPEC §9). */
  private refuse(kind: SessionKind, description: string, code?: string): RtmpAction[] {
    const statusCode = code ?? (kind === 'play' ? Status.PlayFailed : Status.PublishBadName);
    this.phase = 'closed';
    return [
      status('error', statusCode, description),
      { type: 'refuse', kind, code: statusCode, description },
    ];
  }
}

function write(bytes: Buffer): RtmpAction {
  return { type: 'write', bytes };
}

/** A `_result` answer to a NetConnection command. */
function result(txId: number, ...args: Amf0Value[]): RtmpAction {
  return write(command(COMMAND_CSID, NET_CONNECTION_STREAM_ID, OUT_CHUNK_SIZE, '_result', txId, ...args));
}

function status(level: 'status' | 'error', code: string, description: string): RtmpAction {
  return write(onStatus(PLAY_STREAM_ID, OUT_CHUNK_SIZE, level, code, description));
}

function hostOf(url: string): string | undefined {
  try {
    return new URL(url).host || undefined;
  } catch {
    return undefined;
  }
}

/** A refused name as quoted back to the client and the log: a hostile one may be 200,000 characters. */
function shorten(name: string): string {
  return name.length > 64 ? `${name.slice(0, 64)}… (${name.length} characters)` : name;
}

/**
 * The Enhanced RTMP capabilities a client declared in connect, or undefined when it declared none
 * (a legacy client: we add nothing to the answer). `fourCcs` is what it can play: the fourCcList
 * entries and the info-map keys with CanDecode (1) or CanForward (4).
 */
function enhancedCaps(
  commandObject: Amf0Value | undefined,
): { fourCcs: Set<string> | undefined } | undefined {
  if (typeof commandObject !== 'object' || commandObject === null || Array.isArray(commandObject)) {
    return undefined;
  }
  const list = commandObject['fourCcList'];
  const maps = [commandObject['videoFourCcInfoMap'], commandObject['audioFourCcInfoMap']];
  const declared =
    Array.isArray(list) || maps.some((m) => typeof m === 'object' && m !== null) || 'capsEx' in commandObject;
  if (!declared) return undefined;
  const fourCcs = new Set<string>();
  if (Array.isArray(list)) for (const f of list) if (typeof f === 'string') fourCcs.add(f);
  for (const m of maps) {
    if (typeof m !== 'object' || m === null || Array.isArray(m)) continue;
    for (const [f, mask] of Object.entries(m)) if (typeof mask === 'number' && mask & 0x05) fourCcs.add(f);
  }
  return { fourCcs: fourCcs.size > 0 ? fourCcs : undefined };
}
