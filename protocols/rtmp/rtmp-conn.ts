/**
 * RtmpConn: one RTMP client socket — handshake, commands, and then either publishing
 * into a stream or playing from one. Nothing is published into a stream and no media
 * byte is written to a player before the session manager has allowed the session.
 */
import type { Socket } from 'node:net';
import type { Logger } from 'pino';
import type { Amf0Value } from '../../src/media/amf0.js';
import { FlvToFrames } from '../../src/media/flv.js';
import type { StreamRegistry } from '../../src/streams/registry.js';
import type { Publisher } from '../../src/streams/stream.js';
import { isValidStreamName } from '../../src/streams/names.js';
import { normalizeIp } from '../../src/net.js';
import type { SessionKind } from '../../src/core/proto.js';
import { refusalText, type CloseReason } from '../../src/core/reasons.js';
import type { ClientRequest, Session, SessionManager } from '../../src/sessions/types.js';
import { rtmpTarget, type ConnectInfo } from './credentials.js';
import { OUT_CHUNK_SIZE, PLAY_STREAM_ID, RtmpEgress } from './egress.js';
import { ServerHandshake } from './wire/handshake.js';
import { ChunkReader, type RtmpMessage } from './wire/chunk-reader.js';
import {
  MessageType as MSG,
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

export interface RtmpDeps {
  registry: StreamRegistry;
  sessions: SessionManager;
  log: Logger;
}

/** Window we ask peers to acknowledge; large enough that acks cost nothing. */
const WINDOW_ACK_SIZE = 2_500_000;
/** A client must finish handshake and connect within this time. */
const CONNECT_TIMEOUT_MS = 10_000;
/** A publisher that sends nothing for this long is gone (its encoder crashed or the network died). */
const PUBLISH_IDLE_MS = 30_000;

type Phase = 'handshake' | 'connecting' | 'connected' | 'authorizing' | 'publishing' | 'playing' | 'closed';

export class RtmpConn {
  private phase: Phase = 'handshake';
  private readonly handshake = new ServerHandshake();
  private readonly reader = new ChunkReader();
  private connectInfo: ConnectInfo | undefined;
  private session: Session | undefined;
  private publisher: Publisher | undefined;
  private demux: FlvToFrames | undefined;
  private unsubscribe: (() => void) | undefined;
  private bytesIn = 0;
  private corked = false;
  private lastAck = 0;
  private peerWindow = 0;
  private readonly ip: string;
  private readonly log: Logger;

  constructor(
    private readonly socket: Socket,
    private readonly deps: RtmpDeps,
  ) {
    this.ip = normalizeIp(socket.remoteAddress ?? '');
    this.log = deps.log.child({ proto: 'rtmp', ip: this.ip, port: socket.remotePort });
    socket.setNoDelay(true);
    socket.setTimeout(CONNECT_TIMEOUT_MS);
    socket.on('timeout', () => this.close('timeout'));
    socket.on('data', (d: Buffer) => this.onData(d));
    socket.on('error', (err) => this.log.debug({ err: err.message }, 'socket error'));
    socket.on('close', () => this.close('client_closed'));
  }

  private onData(data: Buffer): void {
    if (this.phase === 'closed') return;
    this.bytesIn += data.length;
    try {
      if (this.phase === 'handshake') {
        const step = this.handshake.push(data);
        if (step.reply) this.socket.write(step.reply);
        if (!step.complete) return;
        this.phase = 'connecting';
        data = step.remainder;
        if (data.length === 0) return;
      }
      for (const msg of this.reader.push(data)) {
        this.onMessage(msg);
        // onMessage may have closed the connection; TypeScript cannot see that through the call.
        if ((this.phase as Phase) === 'closed') return;
      }
      this.maybeAcknowledge();
    } catch (err) {
      // Malformed input ends this client only; the server and everyone else carry on.
      this.log.warn({ err: (err as Error).message }, 'protocol error; closing connection');
      this.close('protocol_error');
    }
  }

  private maybeAcknowledge(): void {
    if (this.peerWindow > 0 && this.bytesIn - this.lastAck >= this.peerWindow) {
      this.lastAck = this.bytesIn;
      this.socket.write(acknowledgement(this.bytesIn >>> 0));
    }
  }

  private onMessage(msg: RtmpMessage): void {
    switch (msg.type) {
      case MSG.WindowAckSize:
        this.peerWindow = msg.payload.length >= 4 ? msg.payload.readUInt32BE(0) : 0;
        return;
      case MSG.UserControl:
        // Ping request (event 6) → ping response (event 7) with the same timestamp.
        if (msg.payload.length >= 6 && msg.payload.readUInt16BE(0) === 6) {
          this.socket.write(pingResponse(msg.payload.readUInt32BE(2)));
        }
        return;
      case MSG.CommandAmf0:
      case MSG.CommandAmf3:
        this.onCommand(msg);
        return;
      case MSG.Audio:
      case MSG.Video:
        this.onMedia(msg);
        return;
      default:
        return; // data messages (@setDataFrame, onMetaData) and acks: our own metadata comes from the tracks
    }
  }

  private onCommand(msg: RtmpMessage): void {
    const { name, txId, args } = decodeCommand(msg);
    switch (name) {
      case 'connect':
        return this.onConnect(txId, args[0]);
      case 'createStream':
        this.send(command(3, 0, OUT_CHUNK_SIZE, '_result', txId, null, PLAY_STREAM_ID));
        return;
      case 'releaseStream':
      case 'FCPublish':
      case 'FCUnpublish':
        // OBS (librtmp) sends these around publish and ignores the answers; answer them anyway.
        this.send(command(3, 0, OUT_CHUNK_SIZE, '_result', txId, null, undefined));
        return;
      case 'publish':
        return this.onPlayOrPublish('publish', args[1]);
      case 'play':
        return this.onPlayOrPublish('play', args[1]);
      case 'deleteStream':
      case 'closeStream':
        if (this.phase === 'publishing' || this.phase === 'playing') this.close('client_closed');
        return;
      default:
        return; // getStreamLength, _checkbw, … : nothing a live origin needs to answer
    }
  }

  private onConnect(txId: number, cmdObject: Amf0Value | undefined): void {
    if (this.phase !== 'connecting') throw new Error('connect sent twice');
    const o = isObject(cmdObject) ? cmdObject : {};
    const app = typeof o['app'] === 'string' ? o['app'] : '';
    this.connectInfo = {
      app,
      ...(typeof o['tcUrl'] === 'string' ? { tcUrl: o['tcUrl'] } : {}),
      ...(typeof o['flashVer'] === 'string' ? { flashVer: o['flashVer'] } : {}),
      ...(typeof o['pageUrl'] === 'string' ? { pageUrl: o['pageUrl'] } : {}),
    };
    this.phase = 'connected';
    this.socket.write(windowAckSize(WINDOW_ACK_SIZE));
    this.socket.write(setPeerBandwidth(WINDOW_ACK_SIZE, 2));
    this.socket.write(setChunkSize(OUT_CHUNK_SIZE));
    this.send(
      command(
        3,
        0,
        OUT_CHUNK_SIZE,
        '_result',
        txId,
        { fmsVer: 'FMS/3,0,1,123', capabilities: 31 },
        {
          level: 'status',
          code: 'NetConnection.Connect.Success',
          description: 'Connection succeeded.',
          objectEncoding: 0,
        },
      ),
    );
  }

  private onPlayOrPublish(kind: SessionKind, nameArg: Amf0Value | undefined): void {
    if (this.phase !== 'connected' || !this.connectInfo) {
      this.fail(kind, 'already playing or publishing on this connection');
      return;
    }
    this.socket.setTimeout(0);
    const target = rtmpTarget(this.connectInfo, typeof nameArg === 'string' ? nameArg : '');
    if (!isValidStreamName(target.name)) {
      this.fail(
        kind,
        `invalid stream name '${target.name}'`,
        kind === 'play' ? 'NetStream.Play.StreamNotFound' : undefined,
      );
      return;
    }
    this.phase = 'authorizing';
    const req: ClientRequest = {
      kind,
      proto: 'rtmp',
      name: target.name,
      ip: this.ip,
      qs: target.qs,
      query: target.query,
      ...(target.token !== undefined ? { token: target.token } : {}),
      ...(this.connectInfo.flashVer ? { userAgent: this.connectInfo.flashVer } : {}),
      ...(this.connectInfo.pageUrl ? { referer: this.connectInfo.pageUrl } : {}),
      ...(this.connectInfo.tcUrl ? { host: hostOf(this.connectInfo.tcUrl) } : {}),
    };
    this.deps.sessions.open(req).then(
      (decision) => {
        if (this.phase !== 'authorizing') {
          if (decision.allow) decision.session.close('client_closed');
          return;
        }
        if (!decision.allow) {
          const description =
            decision.status === 302 && decision.location
              ? `redirect: ${decision.location}`
              : refusalText(decision);
          const code =
            decision.status === 404 && kind === 'play' ? 'NetStream.Play.StreamNotFound' : undefined;
          this.fail(kind, description, code);
          return;
        }
        this.session = decision.session;
        decision.session.onKill((reason) => this.kill(reason));
        if (kind === 'publish') this.startPublish(target.name);
        else this.startPlay(target.name);
      },
      (err: unknown) => {
        this.log.error({ err: (err as Error).message, stream: target.name }, 'session manager failed');
        this.fail(kind, 'internal error');
      },
    );
  }

  private startPublish(name: string): void {
    const stream = this.deps.registry.resolve(name);
    const publisher = stream?.claimPublisher();
    if (!stream || !publisher) {
      this.fail('publish', stream ? 'stream is already being published' : 'stream not found');
      return;
    }
    this.publisher = publisher;
    this.demux = new FlvToFrames();
    this.phase = 'publishing';
    this.socket.setTimeout(PUBLISH_IDLE_MS);
    this.socket.write(streamBegin(PLAY_STREAM_ID));
    this.send(
      onStatus(
        PLAY_STREAM_ID,
        OUT_CHUNK_SIZE,
        'status',
        'NetStream.Publish.Start',
        `${name} is now published.`,
      ),
    );
    this.log.info({ stream: name, session: this.session?.id }, 'publishing');
  }

  private startPlay(name: string): void {
    const stream = this.deps.registry.resolve(name);
    if (!stream) {
      this.fail('play', 'stream not found', 'NetStream.Play.StreamNotFound');
      return;
    }
    this.phase = 'playing';
    this.socket.write(streamBegin(PLAY_STREAM_ID));
    this.send(
      onStatus(
        PLAY_STREAM_ID,
        OUT_CHUNK_SIZE,
        'status',
        'NetStream.Play.Reset',
        `Playing and resetting ${name}.`,
      ),
    );
    this.send(
      onStatus(PLAY_STREAM_ID, OUT_CHUNK_SIZE, 'status', 'NetStream.Play.Start', `Started playing ${name}.`),
    );
    const egress = stream.bus.egress('rtmp', (bus) => new RtmpEgress(bus));
    const session = this.session;
    this.unsubscribe = egress.subscribe({
      deliver: (item) => {
        // One publisher read often yields several frames; corking until the end of the tick
        // turns their writes into one writev per viewer instead of one syscall per frame.
        if (!this.corked) {
          this.corked = true;
          this.socket.cork();
          process.nextTick(() => {
            this.corked = false;
            this.socket.uncork();
          });
        }
        this.socket.write(item.bytes);
        session?.addBytes(item.bytes.length);
      },
      backlog: () => this.socket.writableLength,
    });
  }

  private onMedia(msg: RtmpMessage): void {
    // Media before the session manager allowed the publish is dropped, never forwarded.
    if (this.phase !== 'publishing' || !this.publisher || !this.demux) return;
    this.session?.addBytes(msg.payload.length);
    const r =
      msg.type === MSG.Video
        ? this.demux.video(msg.timestamp, msg.payload)
        : this.demux.audio(msg.timestamp, msg.payload);
    if (r.tracks) this.publisher.source.tracks(r.tracks);
    if (r.frame) this.publisher.source.frame(r.frame);
  }

  /** Refuses a play or publish with an onStatus error, then closes (SPEC §9). */
  private fail(kind: SessionKind, description: string, code?: string): void {
    const statusCode = code ?? (kind === 'play' ? 'NetStream.Play.Failed' : 'NetStream.Publish.BadName');
    this.log.info({ kind, code: statusCode, description }, 'refused');
    this.send(onStatus(PLAY_STREAM_ID, OUT_CHUNK_SIZE, 'error', statusCode, description));
    this.phase = 'closed';
    // end() flushes the status before the FIN, so the client can show why.
    this.socket.end();
    this.teardown('refused');
  }

  /** The session manager ended the session: close silently (AUTH-SPEC §5.3). */
  private kill(reason: CloseReason): void {
    this.log.info({ reason, session: this.session?.id }, 'session ended by the server');
    this.close(reason);
  }

  close(reason: CloseReason): void {
    if (this.phase === 'closed') {
      this.teardown(reason);
      return;
    }
    this.phase = 'closed';
    this.socket.destroy();
    this.teardown(reason);
  }

  private teardown(reason: CloseReason): void {
    this.unsubscribe?.();
    this.unsubscribe = undefined;
    this.publisher?.release();
    this.publisher = undefined;
    if (this.session && !this.session.closed) this.session.close(reason);
  }

  private send(bytes: Buffer): void {
    if (!this.socket.destroyed) this.socket.write(bytes);
  }
}

function isObject(v: Amf0Value | undefined): v is { [k: string]: Amf0Value } {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function hostOf(url: string): string | undefined {
  try {
    return new URL(url).host || undefined;
  } catch {
    return undefined;
  }
}
