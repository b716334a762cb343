/**
 * RtspConn: one RTSP control connection (RFC 2326) — either a player (DESCRIBE, SETUP, PLAY)
 * or a publisher (ANNOUNCE, SETUP, RECORD). The session manager is asked before an SDP is
 * answered or a publisher is accepted, so no media byte flows in either direction without
 * an allowed session; a session the manager ends closes the socket without a word
 * (AUTH-SPEC §5.3).
 *
 * This class is the I/O shell: ClientConn owns the socket, the error policy and teardown;
 * the decisions live in pure pieces beside it (control.ts, play.ts, record.ts,
 * request-queue.ts, wire/). Here requests are dispatched, answers and packets written, and
 * the stream, its publisher slot and its egress are reached.
 */
import { randomBytes, randomInt } from 'node:crypto';
import type { RemoteInfo } from 'node:dgram';
import type { Socket } from 'node:net';
import type { Logger } from 'pino';
import { ClientConn } from '../../src/client-conn.js';
import { codecRefusal } from '../../src/media/codec-support.js';
import type { Config } from '../../src/config/types.js';
import { limitMs } from '../../src/core/limits.js';
import type { SessionKind } from '../../src/core/proto.js';
import { normalizeIp } from '../../src/net.js';
import type { Denial, SessionManager } from '../../src/sessions/types.js';
import type { StreamRegistry } from '../../src/streams/registry.js';
import type { Publisher, Stream } from '../../src/streams/stream.js';
import {
  admission,
  answerHeaders,
  precheck,
  PUBLIC_METHODS,
  READER_LIMIT_NAMES,
  readerLimits,
  refusal,
  SERVER,
  SESSION_TIMEOUT_S,
} from './control.js';
import { rtspTarget, type RtspTarget } from './credentials.js';
import { RtspEgress } from './egress.js';
import { playable, PlayState, type Delivery, type Route } from './play.js';
import { RecordState, type Received } from './record.js';
import { RequestQueue } from './request-queue.js';
import { waitForTracks } from './tracks-wait.js';
import { RtspLimitError, RtspProtocolError } from './wire/errors.js';
import {
  interleavedHeader,
  RtspReader,
  writeResponse,
  type HeaderList,
  type RtspItem,
  type RtspRequest,
} from './wire/message.js';
import { ANNOUNCE_CODECS, announcedTracks, parseSdp } from './wire/sdp.js';
import { formatTransport, offersUdp, parseTransport, type TransportSpec } from './wire/transport.js';
import type { RecordPair, RecordPortPool } from './udp-record.js';
import type { TrackKind } from './to-stream.js';

/** The shared UDP socket pair that sends RTP/RTCP to UDP viewers; absent when UDP is not offered. */
export interface UdpSender {
  readonly rtpPort: number;
  readonly rtcpPort: number;
  /** Whether a client address can be reached from these sockets (IPv4 sockets cannot reach IPv6 clients). */
  reaches(ip: string): boolean;
  /**
   * Sends one datagram. Never throws, since it runs inside the publisher's fan-out: a datagram
   * the socket refuses at once (a port or address it cannot send to) comes back as the error.
   */
  send(channel: 'rtp' | 'rtcp', packet: Buffer, ip: string, port: number): Error | undefined;
}

export interface RtspDeps {
  registry: StreamRegistry;
  sessions: SessionManager;
  log: Logger;
  /** The running config; its limits are read when a client is accepted. */
  config: () => Config;
  udp?: UdpSender;
  /** Server port pairs for publishers that RECORD over UDP; absent: record over TCP only (461 to UDP offers). */
  recordPorts?: RecordPortPool;
}

/** A publisher that sends nothing for this long is gone (its encoder crashed or the network died). */
const PUBLISH_IDLE_MS = 30_000;
/** RTCP receiver reports to a UDP publisher: RFC 3550 §6.2's minimum interval for a two-party session. */
const RECEIVER_REPORT_MS = 5_000;
/** Datagrams from an address other than the publisher's that are logged; the rest are only dropped. */
const LOGGED_FOREIGN_PACKETS = 3;
/** How long DESCRIBE waits for a just-started stream to know its tracks before answering 404. */
const TRACKS_WAIT_MS = 5_000;
/**
 * Requests held while an earlier one waits for the session manager. ffmpeg and GStreamer
 * wait for each answer; a peer that piles up more than this is not a player.
 */
const MAX_QUEUED_REQUESTS = 16;

export class RtspConn extends ClientConn {
  private readonly reader: RtspReader;
  /** `request_head_timeout`: a request must be complete this long after its first byte. */
  private readonly requestTimeoutMs: number;
  /** The deadline of the request being read, by the stream offset where it started. */
  private requestDeadline: { start: number; cancel: () => void } | undefined;
  /** Set once a SETUP was answered 200: interleaved data before that is not from an RTSP client. */
  private transportSetUp = false;
  private readonly queue: RequestQueue<RtspRequest>;
  private readonly rtspSession = randomBytes(8).toString('hex');
  /** Set when the session manager is first asked; a 401 challenge clears it for the retry. */
  private mode: SessionKind | undefined;
  private target: RtspTarget | undefined;
  private stream: Stream | undefined;
  private play: PlayState | undefined;
  private record: RecordState | undefined;
  private publisher: Publisher | undefined;
  /** Server UDP port pairs of tracks recorded over UDP. */
  private readonly udpTracks = new Map<TrackKind, RecordPair>();
  /** When the last media datagram of a UDP publisher came (the control connection may be silent). */
  private lastUdpAt = 0;
  private foreignPackets = 0;

  constructor(
    socket: Socket,
    private readonly deps: RtspDeps,
  ) {
    const limits = deps.config().limits;
    super(socket, {
      proto: 'rtsp',
      log: deps.log,
      sessions: deps.sessions,
      idleTimeoutMs: SESSION_TIMEOUT_S * 1000,
      // Until the first complete request; `request_head_timeout` bounds each request from then on.
      handshakeTimeoutMs: limitMs(limits, 'handshake_timeout'),
    });
    this.reader = new RtspReader(readerLimits(limits));
    this.requestTimeoutMs = limitMs(limits, 'request_head_timeout');
    this.queue = new RequestQueue(
      (req) => this.handle(req),
      (req, err) => this.failed(req, err),
      MAX_QUEUED_REQUESTS,
    );
    this.onTeardown(() => this.queue.stop());
  }

  protected onBytes(data: Buffer): void {
    let items: RtspItem[];
    try {
      items = this.reader.push(data);
    } catch (err) {
      // Anything but a protocol error is a fault, which the base turns into a close.
      if (!(err instanceof RtspProtocolError)) throw err;
      this.write(writeResponse(err.status, [['Server', SERVER]]));
      if (err instanceof RtspLimitError) {
        this.limitExceeded(READER_LIMIT_NAMES[err.limit], err.message, 'limit_exceeded', 'finish');
        return;
      }
      this.log.info({ err: err.message }, 'protocol error; closing connection');
      this.finish('protocol_error');
      return;
    }
    for (const item of items) {
      if (item.kind === 'interleaved') {
        this.onInterleaved(item.channel, item.payload);
      } else if (item.kind === 'request') {
        this.handshakeDone();
        if (!this.queue.push(item.request)) {
          this.log.info('too many pipelined requests; closing connection');
          this.close('protocol_error');
        }
      }
      // Responses (to requests we never send) are ignored.
      if (this.closed) return;
    }
    this.watchRequest();
  }

  /**
   * Arms `request_head_timeout` when a new request has begun and not ended (a head and the
   * body it announces), so a client that trickles a byte now and then cannot hold one open
   * for ever; the socket's idle timeout alone would be reset by every byte.
   */
  private watchRequest(): void {
    const partial = this.reader.partial;
    if (partial?.start === this.requestDeadline?.start) return;
    this.requestDeadline?.cancel();
    this.requestDeadline = partial && {
      start: partial.start,
      cancel: this.after(this.requestTimeoutMs, () =>
        this.limitExceeded(
          'request_head_timeout',
          `request incomplete ${this.requestTimeoutMs / 1000} s after its first byte (${this.reader.buffered} bytes in)`,
          'timeout',
        ),
      ),
    };
  }

  /** Dispatches one request; returns a promise only when the answer waits for something. */
  private handle(req: RtspRequest): Promise<void> | undefined {
    const early = precheck(req, this.sessionId);
    if (early === 400) {
      this.write(writeResponse(400, [['Server', SERVER]]));
      return undefined;
    }
    if (early === 454) {
      this.answer(req, 454);
      return undefined;
    }
    if (!this.play?.playing && !this.record?.started) this.socket.setTimeout(SESSION_TIMEOUT_S * 1000);
    switch (req.method) {
      case 'OPTIONS':
        this.answer(req, 200, [['Public', PUBLIC_METHODS]]);
        return undefined;
      case 'DESCRIBE':
        return this.onDescribe(req);
      case 'SETUP':
        if (this.mode !== 'publish') return this.onSetupPlay(req);
        return this.onSetupRecord(req);
      case 'PLAY':
        return this.onPlay(req);
      case 'ANNOUNCE':
        return this.onAnnounce(req);
      case 'RECORD':
        this.onRecord(req);
        return undefined;
      case 'TEARDOWN':
        this.answer(req, 200);
        this.finish('client_closed');
        return undefined;
      case 'GET_PARAMETER':
      case 'SET_PARAMETER':
        // Keep-alives (ffmpeg, GStreamer): the answer itself is the point.
        this.answer(req, 200);
        return undefined;
      default:
        this.answer(req, 501, [['Public', PUBLIC_METHODS]]);
        return undefined;
    }
  }

  /** A request's handling threw: a protocol error is answered with its status; anything else ends this client. */
  private failed(req: RtspRequest, err: unknown): void {
    if (err instanceof RtspProtocolError) {
      this.log.info({ err: err.message, method: req.method }, 'bad request');
      this.answer(req, err.status);
      return;
    }
    this.fault(err);
  }

  // ---- play -------------------------------------------------------------------------

  private async onDescribe(req: RtspRequest): Promise<void> {
    const target = rtspTarget(req.uri);
    const play = await this.authorizePlay(req, target);
    if (!play) return;
    const local = this.socket.localAddress;
    const { headers, sdp } = play.describe(target.base, local ? normalizeIp(local) : '127.0.0.1');
    this.answer(req, 200, headers, sdp);
  }

  /**
   * Opens the play session once per connection (at DESCRIBE, or at SETUP/PLAY for clients
   * that skip DESCRIBE) and waits for the stream's tracks. Answers the request itself on
   * failure and returns undefined.
   */
  private async authorizePlay(req: RtspRequest, target: RtspTarget): Promise<PlayState | undefined> {
    if (this.mode === 'publish') {
      this.answer(req, 455);
      return undefined;
    }
    if (this.play) return this.play;
    if (!target.valid) {
      this.answer(req, 404);
      return undefined;
    }
    const stream = await this.openSession('play', req, target);
    if (!stream) return undefined;
    // Any track ends the wait: a stream whose codecs RTSP cannot carry is refused by name at
    // once instead of after the wait.
    const wait = waitForTracks(
      stream.bus,
      (t) => t.video !== undefined || t.audio !== undefined,
      TRACKS_WAIT_MS,
    );
    this.onTeardown(wait.cancel);
    const tracks = await wait.tracks;
    if (this.closed) return undefined;
    if (!tracks) {
      this.log.info({ stream: target.name }, 'stream has no tracks yet; refusing play');
      this.refuse(req, 404);
      return undefined;
    }
    // A track RTSP cannot carry refuses the play by name rather than leaving it out silently.
    const why = codecRefusal('rtsp', tracks) ?? (playable(tracks) ? undefined : 'no track RTSP can carry');
    if (why !== undefined) {
      this.log.info({ stream: target.name, why }, "rtsp cannot carry the stream's codecs; refusing play");
      this.refuse(req, 415, [], why);
      return undefined;
    }
    this.stream = stream;
    this.play = new PlayState(tracks);
    return this.play;
  }

  private async onSetupPlay(req: RtspRequest): Promise<void> {
    const target = rtspTarget(req.uri);
    const play = await this.authorizePlay(req, target);
    if (!play) return;
    const udp = this.deps.udp?.reaches(this.ip) ? this.deps.udp : undefined;
    const transport = req.headers.get('transport') ?? '';
    const a = play.setup(target.control, transport, udp);
    this.answerSetup(req, a, transport);
  }

  private answerSetup(
    req: RtspRequest,
    a: { status: number; transport?: TransportSpec },
    offered: string,
  ): void {
    if (a.transport) {
      this.transportSetUp = true;
      this.answer(req, a.status, [['Transport', formatTransport(a.transport)]]);
      return;
    }
    if (a.status === 461) this.log.info({ transport: offered }, 'no transport offer this server can serve');
    this.answer(req, a.status);
  }

  private async onPlay(req: RtspRequest): Promise<void> {
    const target = rtspTarget(req.uri);
    const play = await this.authorizePlay(req, target);
    const stream = this.stream;
    if (!play || !stream) return;
    if (play.playing) {
      this.answer(req, 200);
      return;
    }
    if (!play.ready) {
      this.answer(req, 455);
      return;
    }
    const egress = stream.bus.egress('rtsp', (bus) => new RtspEgress(bus));
    play.subscribing();
    const unsubscribe = egress.subscribe({
      // This runs inside the publisher's push: a fault here must end this viewer, not the publisher.
      deliver: (item) => this.guard(() => this.send(play.offer(item))),
      backlog: () => this.socket.writableLength,
      // The egress dropped this player (stopped reading, or a write threw) and has logged why.
      close: (reason) => this.close(reason),
    });
    this.onTeardown(unsubscribe);
    const started = play.start(target.valid ? target.base : req.uri, (kind) => egress.nextSequence(kind));
    this.answer(req, 200, [
      ['Range', 'npt=0.000-'],
      ['RTP-Info', started.rtpInfo],
    ]);
    // TCP players are watched by the socket itself; UDP players keep the control connection
    // alive with GET_PARAMETER/OPTIONS, so a silent one is gone after two session timeouts.
    this.socket.setTimeout(started.udp ? 2 * SESSION_TIMEOUT_S * 1000 : 0);
    for (const d of started.backlog) this.send(d);
    this.log.info({ stream: stream.name, session: this.session?.id, udp: started.udp }, 'playing');
  }

  /** Writes one item's packets (shared Buffers) to this viewer, each TCP one after its own interleaved header. */
  private send(d: Delivery | undefined): void {
    if (!d) return;
    const tcp = d.to.via === 'tcp';
    if (tcp) this.socket.cork();
    for (const r of d.reports) this.sendPacket(r.to, r.packet);
    for (const p of d.packets) this.sendPacket(d.to, p);
    if (tcp) this.socket.uncork();
    this.session?.addBytes(d.bytes);
  }

  private sendPacket(to: Route, packet: Buffer): void {
    if (this.closed) return;
    if (to.via === 'tcp') {
      this.write(interleavedHeader(to.channel, packet.length));
      this.write(packet);
      return;
    }
    const err = this.deps.udp?.send(to.channel, packet, this.ip, to.port);
    if (err) {
      // This viewer's ports are unusable: it alone goes, the publisher and other viewers stay.
      this.log.warn(
        { event: 'udp_send_failed', err: err.message, port: to.port },
        'udp send failed; closing the viewer',
      );
      this.close('viewer_fault');
    }
  }

  // ---- publish ----------------------------------------------------------------------

  private async onAnnounce(req: RtspRequest): Promise<void> {
    if (this.mode !== undefined) {
      this.answer(req, 455);
      return;
    }
    const target = rtspTarget(req.uri);
    if (!target.valid) {
      this.refuse(req, 404);
      return;
    }
    const announced = announcedTracks(parseSdp(req.body.toString('utf8')));
    if (announced.unsupported.length > 0) {
      // Publishing the tracks we can carry and dropping the rest would look like success to
      // the publisher while its viewers miss a track: refuse, naming what cannot be carried.
      const what = announced.unsupported.join(', ');
      this.log.info(
        { stream: target.name, unsupported: what },
        'ANNOUNCE has media this server cannot carry',
      );
      this.answer(
        req,
        415,
        [['Content-Type', 'text/plain']],
        `cannot carry ${what}; supported: ${ANNOUNCE_CODECS}\r\n`,
        `cannot carry ${what}`,
      );
      this.finish('refused');
      return;
    }
    const stream = await this.openSession('publish', req, target);
    if (!stream) return;
    const publisher = stream.claimPublisher();
    if (!publisher) {
      this.log.info(
        { stream: target.name },
        stream.acceptsPublish ? 'stream is already published' : 'stream does not accept publishing',
      );
      this.refuse(req, stream.acceptsPublish ? 409 : 403);
      return;
    }
    this.onTeardown(() => publisher.release());
    if (announced.ignored.length > 0) {
      this.log.info({ ignored: announced.ignored }, 'ignoring non-audio/video media in ANNOUNCE');
    }
    this.publisher = publisher;
    this.record = new RecordState(announced);
    this.answer(req, 200);
  }

  private async onSetupRecord(req: RtspRequest): Promise<void> {
    const record = this.record;
    if (!record) {
      this.answer(req, 455);
      return;
    }
    const transport = req.headers.get('transport') ?? '';
    const kind = record.trackFor(req.uri);
    let pair: RecordPair | undefined;
    const pool = this.deps.recordPorts;
    if (kind && !record.started && pool && offersUdp(parseTransport(transport))) {
      pair = await pool.allocate();
      if (this.closed) {
        pair?.close();
        return;
      }
      if (!pair) this.log.warn({ inUse: pool.inUse }, 'no udp port pair free for an rtsp publisher');
    }
    let a: ReturnType<RecordState['setup']>;
    try {
      a = record.setup(req.uri, transport, pair);
    } catch (err) {
      pair?.close();
      throw err;
    }
    if (pair && a.status === 200 && a.transport.lower === 'udp') {
      const track = a.kind;
      this.udpTracks.get(track)?.close();
      this.udpTracks.set(track, pair);
      const p = pair;
      p.onPacket((rtcp, msg, from) => this.guard(() => this.onUdp(track, rtcp, msg, from)));
      this.onTeardown(() => p.close());
    } else {
      pair?.close();
    }
    this.answerSetup(req, a, transport);
  }

  private onRecord(req: RtspRequest): void {
    if (!this.record?.record()) {
      this.answer(req, 455);
      return;
    }
    if (this.udpTracks.size > 0) {
      // Media comes on the UDP ports and the control connection may stay silent for the whole
      // publish: the publisher is gone when its datagrams stop, not when the TCP socket is quiet.
      this.socket.setTimeout(0);
      this.lastUdpAt = Date.now();
      this.reportToUdpPublisher();
    } else {
      this.socket.setTimeout(PUBLISH_IDLE_MS);
    }
    this.answer(req, 200);
    this.log.info(
      { stream: this.target?.name, session: this.session?.id, udp: this.udpTracks.size > 0 },
      'publishing',
    );
  }

  /** Every RECEIVER_REPORT_MS: receiver reports to a UDP publisher, and the idle check its silence needs. */
  private reportToUdpPublisher(): void {
    const ssrc = randomInt(0, 2 ** 32 - 1);
    const cname = `streamgate@${normalizeIp(this.socket.localAddress ?? '127.0.0.1')}`;
    const tick = (): void => {
      const record = this.record;
      if (this.closed || !record) return;
      if (Date.now() - this.lastUdpAt > PUBLISH_IDLE_MS) {
        this.log.info(
          { stream: this.target?.name },
          `no media from the udp publisher for ${PUBLISH_IDLE_MS / 1000} s`,
        );
        this.close('timeout');
        return;
      }
      for (const r of record.receiverReports(ssrc, cname, Date.now() / 1000)) {
        const port = r.transport.clientPort?.[1];
        const pair = this.udpTracks.get(r.kind);
        if (pair && port !== undefined) pair.sendRtcp(r.packet, this.ip, port);
      }
      this.after(RECEIVER_REPORT_MS, tick);
    };
    this.after(RECEIVER_REPORT_MS, tick);
  }

  /** A datagram on a recorded track's server ports: only the publisher's address may feed the stream. */
  private onUdp(kind: TrackKind, rtcp: boolean, msg: Buffer, from: RemoteInfo): void {
    if (this.closed || !this.record) return;
    if (normalizeIp(from.address) !== this.ip) {
      if (++this.foreignPackets <= LOGGED_FOREIGN_PACKETS) {
        this.log.info(
          { from: from.address, port: from.port },
          'dropping udp packet from an address other than the publisher',
        );
      }
      return;
    }
    const r = this.record.receiveUdp(kind, rtcp, msg, Date.now() / 1000);
    if (r.kind !== 'ignored') this.lastUdpAt = Date.now();
    this.received(r);
  }

  private onInterleaved(channel: number, payload: Buffer): void {
    if (!this.transportSetUp) {
      // Binary frames before any channel exists: not a player's RTCP nor a publisher's RTP.
      this.log.info({ channel, bytes: payload.length }, 'interleaved data before SETUP; closing connection');
      this.close('protocol_error');
      return;
    }
    if (!this.record) return;
    this.received(this.record.receive(channel, payload, Date.now() / 1000));
  }

  /** What a publisher's packet gave, to the stream. */
  private received(r: Received): void {
    const publisher = this.publisher;
    if (!publisher || r.kind === 'ignored') return;
    this.session?.addBytes(r.bytes);
    if (r.kind === 'malformed') {
      if (r.log) this.log.info({ err: r.error }, 'dropping malformed rtp packet');
      return;
    }
    if (r.tracks) publisher.source.tracks(r.tracks);
    for (const f of r.frames) publisher.source.frame(f);
  }

  // ---- sessions ---------------------------------------------------------------------

  /** This connection's RTSP session id, once the session manager has been asked. */
  private get sessionId(): string | undefined {
    return this.mode === undefined ? undefined : this.rtspSession;
  }

  /**
   * Asks the session manager, then resolves the stream. On any refusal the request is
   * answered (403, 404, 302 + Location, 401 with a Basic challenge) and, but for the
   * challenge, the connection closes; returns the stream on success.
   */
  private async openSession(
    kind: SessionKind,
    req: RtspRequest,
    target: RtspTarget,
  ): Promise<Stream | undefined> {
    this.mode = kind;
    this.target = target;
    const { request, mayChallenge } = admission(kind, req, target, this.ip);
    const decision = await this.authorize(request);
    if (!decision) return undefined;
    if (!decision.allow) {
      this.deny(req, decision, mayChallenge);
      return undefined;
    }
    const stream = this.deps.registry.resolve(target.name);
    if (!stream) {
      this.refuse(req, 404);
      return undefined;
    }
    return stream;
  }

  private deny(req: RtspRequest, d: Denial, mayChallenge: boolean): void {
    this.log.debug({ status: d.status, reason: d.reason, stream: this.target?.name }, 'refused');
    const r = refusal(d, mayChallenge);
    if (r.challenge) {
      this.mode = undefined;
      this.answer(req, r.status, r.headers);
    } else {
      this.refuse(req, r.status, r.headers);
    }
  }

  /**
   * Answers with an error and closes the connection after the answer is flushed. `detail`
   * names the cause in the status line and, as text, in the body.
   */
  private refuse(req: RtspRequest, status: number, headers: HeaderList = [], detail?: string): void {
    if (detail === undefined) this.answer(req, status, headers);
    else this.answer(req, status, [...headers, ['Content-Type', 'text/plain']], `${detail}\r\n`, detail);
    this.finish('refused');
  }

  private answer(
    req: RtspRequest,
    status: number,
    headers: HeaderList = [],
    body?: string,
    detail?: string,
  ): void {
    this.write(writeResponse(status, answerHeaders(req, status, this.sessionId, headers), body, detail));
  }
}
