/**
 * RtspConn: one RTSP control connection (RFC 2326) — either a player (DESCRIBE, SETUP, PLAY)
 * or a publisher (ANNOUNCE, SETUP, RECORD). The session manager is asked before an SDP is
 * answered or a publisher is accepted, so no media byte flows in either direction without
 * an allowed session; a session the manager ends closes the socket without a word
 * (AUTH-SPEC §5.3).
 */
import { randomBytes } from 'node:crypto';
import type { Socket } from 'node:net';
import type { Logger } from 'pino';
import type { Tracks } from '../../src/media/types.js';
import { normalizeIp } from '../../src/net.js';
import type { StreamRegistry } from '../../src/streams/registry.js';
import type { Publisher, Stream } from '../../src/streams/stream.js';
import type { SessionKind } from '../../src/core/proto.js';
import type { CloseReason } from '../../src/core/reasons.js';
import type { ClientRequest, Denial, Session, SessionManager } from '../../src/sessions/types.js';
import { rtspTarget, type RtspTarget } from './credentials.js';
import { RtspEgress, type MediaKind, type RtpItem } from './egress.js';
import { RtpToFrames, type TrackKind } from './to-stream.js';
import { RtspProtocolError } from './wire/errors.js';
import { formatRtpInfo, parseBasicAuth, parseCSeq, parseSession, type RtpInfoEntry } from './wire/headers.js';
import { formatTransport, parseTransport, type TransportSpec } from './wire/transport.js';
import {
  interleavedHeader,
  RtspReader,
  writeResponse,
  type HeaderList,
  type RtspItem,
  type RtspRequest,
} from './wire/message.js';
import {
  announcedTracks,
  AUDIO_TRACK_ID,
  parseSdp,
  VIDEO_TRACK_ID,
  writeSdp,
  type AnnouncedTracks,
} from './wire/sdp.js';

/** The shared UDP socket pair that sends RTP/RTCP to UDP viewers; absent when UDP is not offered. */
export interface UdpSender {
  readonly rtpPort: number;
  readonly rtcpPort: number;
  /** Whether a client address can be reached from these sockets (IPv4 sockets cannot reach IPv6 clients). */
  reaches(ip: string): boolean;
  send(channel: 'rtp' | 'rtcp', packet: Buffer, ip: string, port: number): void;
}

export interface RtspDeps {
  registry: StreamRegistry;
  sessions: SessionManager;
  log: Logger;
  udp?: UdpSender;
}

/** Without a request for this long, a connection that is not streaming is gone (RFC 2326 §12.37 default session timeout). */
const SESSION_TIMEOUT_S = 60;
/** A publisher that sends nothing for this long is gone (its encoder crashed or the network died). */
const PUBLISH_IDLE_MS = 30_000;
/** How long DESCRIBE waits for a just-started stream to know its tracks before answering 404. */
const TRACKS_WAIT_MS = 5_000;
const TRACKS_POLL_MS = 100;
/**
 * Requests held while an earlier one waits for the session manager. ffmpeg and GStreamer
 * wait for each answer; a peer that piles up more than this is not a player.
 */
const MAX_QUEUED_REQUESTS = 16;
const SERVER = 'streamgate';
const PUBLIC_METHODS =
  'OPTIONS, DESCRIBE, SETUP, PLAY, TEARDOWN, ANNOUNCE, RECORD, GET_PARAMETER, SET_PARAMETER';

type Phase = 'idle' | 'authorizing' | 'ready' | 'playing' | 'recording' | 'closed';

interface PlayTrack {
  readonly transport: TransportSpec;
}

export class RtspConn {
  private phase: Phase = 'idle';
  private mode: SessionKind | undefined;
  private readonly reader = new RtspReader();
  private readonly queue: RtspRequest[] = [];
  private busy = false;
  private readonly rtspSession = randomBytes(8).toString('hex');
  private session: Session | undefined;
  private target: RtspTarget | undefined;
  private stream: Stream | undefined;
  private tracks: Tracks | undefined;
  private readonly playTracks = new Map<MediaKind, PlayTrack>();
  private unsubscribe: (() => void) | undefined;
  private publisher: Publisher | undefined;
  private announced: AnnouncedTracks | undefined;
  private ingest: RtpToFrames | undefined;
  private readonly recordChannels = new Map<number, { kind: TrackKind; rtcp: boolean }>();
  private badPackets = 0;
  private readonly ip: string;
  private readonly log: Logger;

  constructor(
    private readonly socket: Socket,
    private readonly deps: RtspDeps,
  ) {
    this.ip = normalizeIp(socket.remoteAddress ?? '');
    this.log = deps.log.child({ proto: 'rtsp', ip: this.ip, port: socket.remotePort });
    socket.setNoDelay(true);
    socket.setTimeout(SESSION_TIMEOUT_S * 1000);
    socket.on('timeout', () => this.close('timeout'));
    socket.on('data', (d: Buffer) => this.onData(d));
    socket.on('error', (err) => this.log.debug({ err: err.message }, 'socket error'));
    socket.on('close', () => this.close('client_closed'));
  }

  private onData(data: Buffer): void {
    if (this.phase === 'closed') return;
    let items: RtspItem[];
    try {
      items = this.reader.push(data);
    } catch (err) {
      // Malformed input ends this client only; the server and everyone else carry on.
      if (!(err instanceof RtspProtocolError)) throw err;
      this.log.info({ err: err.message }, 'protocol error; closing connection');
      this.send(writeResponse(err.status, [['Server', SERVER]]));
      this.phase = 'closed';
      this.socket.end();
      this.teardown('protocol_error');
      return;
    }
    for (const item of items) {
      if (item.kind === 'interleaved') this.onInterleaved(item.channel, item.payload);
      else if (item.kind === 'request') this.enqueue(item.request);
      // Responses (to requests we never send) are ignored.
      if ((this.phase as Phase) === 'closed') return;
    }
  }

  private enqueue(req: RtspRequest): void {
    if (this.queue.length >= MAX_QUEUED_REQUESTS) {
      this.log.info('too many pipelined requests; closing connection');
      this.close('protocol_error');
      return;
    }
    this.queue.push(req);
    this.drain();
  }

  /** Handles queued requests in order; an asynchronous one (the session manager) holds the rest. */
  private drain(): void {
    while (!this.busy && this.queue.length > 0 && this.phase !== 'closed') {
      const req = this.queue.shift();
      if (!req) return;
      const pending = this.handle(req);
      if (pending) {
        this.busy = true;
        pending
          .catch((err: unknown) => {
            this.log.error({ err: (err as Error).message, method: req.method }, 'request failed');
            this.reply(req, 500);
          })
          .finally(() => {
            this.busy = false;
            this.drain();
          });
      }
    }
  }

  /** Dispatches one request; returns a promise only when the answer waits for something. */
  private handle(req: RtspRequest): Promise<void> | undefined {
    if (parseCSeq(req.headers.get('cseq')) === undefined) {
      this.send(writeResponse(400, [['Server', SERVER]]));
      return undefined;
    }
    const given = parseSession(req.headers.get('session'));
    if (given !== undefined && this.mode !== undefined && given !== this.rtspSession) {
      this.reply(req, 454);
      return undefined;
    }
    if (this.phase !== 'playing' && this.phase !== 'recording') {
      this.socket.setTimeout(SESSION_TIMEOUT_S * 1000);
    }
    try {
      switch (req.method) {
        case 'OPTIONS':
          this.reply(req, 200, [['Public', PUBLIC_METHODS]]);
          return undefined;
        case 'DESCRIBE':
          return this.onDescribe(req);
        case 'SETUP':
          if (this.mode !== 'publish') return this.onSetupPlay(req);
          this.onSetupRecord(req);
          return undefined;
        case 'PLAY':
          return this.onPlay(req);
        case 'ANNOUNCE':
          return this.onAnnounce(req);
        case 'RECORD':
          this.onRecord(req);
          return undefined;
        case 'TEARDOWN':
          this.reply(req, 200);
          this.phase = 'closed';
          this.socket.end();
          this.teardown('client_closed');
          return undefined;
        case 'GET_PARAMETER':
        case 'SET_PARAMETER':
          // Keep-alives (ffmpeg, GStreamer): the answer itself is the point.
          this.reply(req, 200);
          return undefined;
        default:
          this.reply(req, 501, [['Public', PUBLIC_METHODS]]);
          return undefined;
      }
    } catch (err) {
      if (!(err instanceof RtspProtocolError)) throw err;
      this.log.info({ err: err.message, method: req.method }, 'bad request');
      this.reply(req, err.status);
      return undefined;
    }
  }

  // ---- play -------------------------------------------------------------------------

  private async onDescribe(req: RtspRequest): Promise<void> {
    const target = rtspTarget(req.uri);
    if (!(await this.authorizePlay(req, target))) return;
    const tracks = this.tracks ?? {};
    const sdp = writeSdp(tracks, {
      origin: this.socket.localAddress ? normalizeIp(this.socket.localAddress) : '127.0.0.1',
    });
    this.reply(
      req,
      200,
      [
        ['Content-Type', 'application/sdp'],
        // RFC 2326 §C.1.1: relative a=control URLs resolve against this; the query stays on it
        // so that SETUP and PLAY URLs keep the token.
        ['Content-Base', `${target.base}/`],
      ],
      sdp,
    );
  }

  /**
   * Opens the play session once per connection (at DESCRIBE, or at SETUP/PLAY for clients
   * that skip DESCRIBE) and waits for the stream's tracks. Answers the request itself on
   * failure and returns false.
   */
  private async authorizePlay(req: RtspRequest, target: RtspTarget): Promise<boolean> {
    if (this.mode === 'publish') {
      this.reply(req, 455);
      return false;
    }
    if (this.session && this.tracks) return true;
    if (!target.valid) {
      this.reply(req, 404);
      return false;
    }
    const stream = await this.openSession('play', req, target);
    if (!stream) return false;
    const deadline = Date.now() + TRACKS_WAIT_MS;
    while (!playable(stream.bus.tracks) && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, TRACKS_POLL_MS));
      if (this.phase === 'closed') return false;
    }
    const tracks = stream.bus.tracks;
    if (!playable(tracks)) {
      this.log.info({ stream: target.name }, 'stream has no h264/aac tracks; refusing play');
      this.refuse(req, 404);
      return false;
    }
    this.tracks = tracks;
    this.phase = 'ready';
    return true;
  }

  private async onSetupPlay(req: RtspRequest): Promise<void> {
    const target = rtspTarget(req.uri);
    if (!(await this.authorizePlay(req, target))) return;
    if (this.phase === 'playing') {
      this.reply(req, 455); // adding tracks to a running PLAY is not supported (RFC 2326 §10.4 allows refusing)
      return;
    }
    const kind = this.trackFor(target.control);
    if (!kind) {
      this.reply(req, 404);
      return;
    }
    const spec = this.pickPlayTransport(req.headers.get('transport') ?? '');
    if (!spec) {
      this.reply(req, 461);
      return;
    }
    this.playTracks.set(kind, { transport: spec });
    this.reply(req, 200, [['Transport', formatTransport(spec)]]);
  }

  private trackFor(control: string | undefined): MediaKind | undefined {
    const t = this.tracks;
    if (control !== undefined) {
      const id = Number(/=(\d+)$/.exec(control)?.[1]);
      if (id === VIDEO_TRACK_ID && t?.video?.codec === 'h264') return 'video';
      if (id === AUDIO_TRACK_ID && t?.audio?.codec === 'aac') return 'audio';
      return undefined;
    }
    // A SETUP of the aggregate URL: the first track not yet set up.
    if (t?.video?.codec === 'h264' && !this.playTracks.has('video')) return 'video';
    if (t?.audio?.codec === 'aac' && !this.playTracks.has('audio')) return 'audio';
    return undefined;
  }

  private pickPlayTransport(header: string): TransportSpec | undefined {
    const existing = [...this.playTracks.values()][0]?.transport.lower;
    for (const t of parseTransport(header)) {
      if (!t.unicast || (existing !== undefined && t.lower !== existing)) continue;
      if (t.lower === 'tcp') {
        const n = this.playTracks.size;
        return { lower: 'tcp', unicast: true, interleaved: t.interleaved ?? [2 * n, 2 * n + 1] };
      }
      const udp = this.deps.udp;
      if (udp && t.clientPort && udp.reaches(this.ip)) {
        return {
          lower: 'udp',
          unicast: true,
          clientPort: t.clientPort,
          serverPort: [udp.rtpPort, udp.rtcpPort],
        };
      }
    }
    return undefined;
  }

  private async onPlay(req: RtspRequest): Promise<void> {
    const target = rtspTarget(req.uri);
    if (!(await this.authorizePlay(req, target))) return;
    if (this.phase === 'playing') {
      this.reply(req, 200);
      return;
    }
    if (this.playTracks.size === 0 || !this.stream) {
      this.reply(req, 455);
      return;
    }
    const egress = this.stream.bus.egress('rtsp', (bus) => new RtspEgress(bus));
    // The cached GOP is replayed synchronously on subscribe; hold it until the PLAY answer
    // (whose RTP-Info tells where each track's numbering starts) has been written.
    const held: RtpItem[] = [];
    let live = false;
    const session = this.session;
    this.unsubscribe = egress.subscribe({
      deliver: (item) => {
        if (live) this.deliver(item, session);
        else held.push(item);
      },
      backlog: () => this.socket.writableLength,
    });
    const base = target.valid ? target.base : req.uri;
    const info: RtpInfoEntry[] = [];
    for (const kind of this.playTracks.keys()) {
      const first = held.find((i) => i.track === kind);
      const seq = first?.sequence ?? egress.nextSequence(kind);
      const url = `${base}/trackID=${kind === 'video' ? VIDEO_TRACK_ID : AUDIO_TRACK_ID}`;
      if (seq !== undefined) info.push({ url, seq, ...(first ? { rtptime: first.rtpTime } : {}) });
    }
    this.reply(req, 200, [
      ['Range', 'npt=0.000-'],
      ['RTP-Info', info.length > 0 ? formatRtpInfo(info) : undefined],
    ]);
    this.phase = 'playing';
    const udp = [...this.playTracks.values()].some((t) => t.transport.lower === 'udp');
    // TCP players are watched by the socket itself; UDP players keep the control connection
    // alive with GET_PARAMETER/OPTIONS, so a silent one is gone after two session timeouts.
    this.socket.setTimeout(udp ? 2 * SESSION_TIMEOUT_S * 1000 : 0);
    live = true;
    for (const item of held) this.deliver(item, session);
    this.log.info({ stream: this.stream.name, session: session?.id, udp }, 'playing');
  }

  /** Writes one frame's packets (shared Buffers) to this viewer, after its own interleaved headers. */
  private deliver(item: RtpItem, session: Session | undefined): void {
    if (this.phase !== 'playing') return;
    const track = this.playTracks.get(item.track);
    if (!track) return;
    const t = track.transport;
    if (t.lower === 'tcp') {
      const [rtpCh = 0] = t.interleaved ?? [];
      this.socket.cork();
      if (item.reports) {
        for (const [kind, pt] of this.playTracks) {
          const report = item.reports[kind];
          const rtcpCh = pt.transport.interleaved?.[1];
          if (report && rtcpCh !== undefined) this.writeInterleaved(rtcpCh, report);
        }
      }
      for (const p of item.packets) this.writeInterleaved(rtpCh, p);
      this.socket.uncork();
    } else {
      const udp = this.deps.udp;
      const [rtpPort = 0] = t.clientPort ?? [];
      if (!udp) return;
      if (item.reports) {
        for (const [kind, pt] of this.playTracks) {
          const report = item.reports[kind];
          const rtcpPort = pt.transport.clientPort?.[1];
          if (report && rtcpPort !== undefined) udp.send('rtcp', report, this.ip, rtcpPort);
        }
      }
      for (const p of item.packets) udp.send('rtp', p, this.ip, rtpPort);
    }
    session?.addBytes(item.payload);
  }

  private writeInterleaved(channel: number, packet: Buffer): void {
    this.socket.write(interleavedHeader(channel, packet.length));
    this.socket.write(packet);
  }

  // ---- publish ----------------------------------------------------------------------

  private async onAnnounce(req: RtspRequest): Promise<void> {
    if (this.mode !== undefined) {
      this.reply(req, 455);
      return;
    }
    const target = rtspTarget(req.uri);
    if (!target.valid) {
      this.refuse(req, 404);
      return;
    }
    const announced = announcedTracks(parseSdp(req.body.toString('utf8')));
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
    if (announced.ignored.length > 0) {
      this.log.info({ ignored: announced.ignored }, 'ignoring unsupported media in ANNOUNCE');
    }
    this.publisher = publisher;
    this.announced = announced;
    this.ingest = new RtpToFrames(announced);
    this.phase = 'ready';
    this.reply(req, 200);
  }

  private onSetupRecord(req: RtspRequest): void {
    const announced = this.announced;
    if (!announced || this.phase !== 'ready') {
      this.reply(req, 455);
      return;
    }
    const kind = recordTrackFor(req.uri, announced);
    if (!kind) {
      this.reply(req, 404);
      return;
    }
    // UDP record would need per-publisher receive sockets; every RTSP publisher we know
    // (ffmpeg, GStreamer, OBS plugins) can use TCP, and 461 makes ffmpeg retry with it.
    const offer = parseTransport(req.headers.get('transport') ?? '').find(
      (t) => t.lower === 'tcp' && t.unicast,
    );
    if (!offer) {
      this.reply(req, 461);
      return;
    }
    const n = new Set([...this.recordChannels.values()].map((c) => c.kind)).size;
    const [rtp, rtcp] = offer.interleaved ?? [2 * n, 2 * n + 1];
    this.recordChannels.set(rtp, { kind, rtcp: false });
    this.recordChannels.set(rtcp, { kind, rtcp: true });
    const spec: TransportSpec = { lower: 'tcp', unicast: true, interleaved: [rtp, rtcp], mode: 'record' };
    this.reply(req, 200, [['Transport', formatTransport(spec)]]);
  }

  private onRecord(req: RtspRequest): void {
    if (this.mode !== 'publish' || this.phase !== 'ready' || this.recordChannels.size === 0) {
      this.reply(req, 455);
      return;
    }
    this.phase = 'recording';
    this.socket.setTimeout(PUBLISH_IDLE_MS);
    this.reply(req, 200);
    this.log.info({ stream: this.target?.name, session: this.session?.id }, 'publishing');
  }

  private onInterleaved(channel: number, payload: Buffer): void {
    // Media before RECORD (or from a player: its RTCP receiver reports) is dropped, never forwarded.
    if (this.phase !== 'recording' || !this.ingest || !this.publisher) return;
    const ch = this.recordChannels.get(channel);
    if (!ch) return;
    this.session?.addBytes(payload.length);
    if (ch.rtcp) {
      this.ingest.rtcp(ch.kind, payload);
      return;
    }
    try {
      const r = this.ingest.rtp(ch.kind, payload);
      if (r.tracks) this.publisher.source.tracks(r.tracks);
      for (const f of r.frames) this.publisher.source.frame(f);
    } catch (err) {
      if (!(err instanceof RtspProtocolError)) throw err;
      // One bad packet costs one picture, not the publisher; the first few are logged.
      if (++this.badPackets <= 5) this.log.info({ err: err.message }, 'dropping malformed rtp packet');
    }
  }

  // ---- sessions ---------------------------------------------------------------------

  /**
   * Asks the session manager, then resolves the stream. On any refusal the request is
   * answered (403, 404, 302 + Location, 401 with a Basic challenge) and the connection
   * closes; returns the stream on success.
   */
  private async openSession(
    kind: SessionKind,
    req: RtspRequest,
    target: RtspTarget,
  ): Promise<Stream | undefined> {
    this.phase = 'authorizing';
    this.mode = kind;
    this.target = target;
    const query = new URLSearchParams(target.query);
    const basic = parseBasicAuth(req.headers.get('authorization'));
    // AUTH-SPEC §7.3: the publish password may come as the Basic auth password instead of ?password=.
    if (kind === 'publish' && basic && !query.has('password')) query.set('password', basic.pass);
    const userAgent = req.headers.get('user-agent');
    const request: ClientRequest = {
      kind,
      proto: 'rtsp',
      name: target.name,
      ip: this.ip,
      qs: target.qs,
      query,
      ...(target.token !== undefined ? { token: target.token } : {}),
      ...(userAgent ? { userAgent } : {}),
      ...(target.host ? { host: target.host } : {}),
    };
    const decision = await this.deps.sessions.open(request);
    if ((this.phase as Phase) !== 'authorizing') {
      if (decision.allow) decision.session.close('client_closed');
      return undefined;
    }
    if (!decision.allow) {
      this.deny(req, decision, kind === 'publish' && !basic && !target.query.has('password'));
      return undefined;
    }
    this.session = decision.session;
    decision.session.onKill((reason) => this.kill(reason));
    const stream = this.deps.registry.resolve(target.name);
    if (!stream) {
      this.refuse(req, 404);
      return undefined;
    }
    this.stream = stream;
    return stream;
  }

  private deny(req: RtspRequest, d: Denial, mayChallenge: boolean): void {
    this.log.info({ status: d.status, reason: d.reason, stream: this.target?.name }, 'refused');
    if (d.status === 302 && d.location) {
      this.refuse(req, 302, [['Location', d.location]]);
    } else if (d.reason === 'wrong_password' && mayChallenge) {
      // ffmpeg sends the credentials of rtsp://user:pass@host/… only after a challenge (RFC 7617 §2),
      // and repeats the request on this connection, so it stays open.
      this.mode = undefined;
      this.phase = 'idle';
      this.reply(req, 401, [['WWW-Authenticate', 'Basic realm="streamgate"']]);
    } else {
      this.refuse(req, d.status);
    }
  }

  /** Answers with an error and closes the connection after the answer is flushed. */
  private refuse(req: RtspRequest, status: number, headers: HeaderList = []): void {
    this.reply(req, status, headers);
    this.phase = 'closed';
    this.socket.end();
    this.teardown('refused');
  }

  private reply(req: RtspRequest, status: number, headers: HeaderList = [], body?: string): void {
    const list: HeaderList = [
      ['CSeq', req.headers.get('cseq')?.trim()],
      ['Server', SERVER],
      [
        'Session',
        this.mode !== undefined && status < 300
          ? `${this.rtspSession};timeout=${SESSION_TIMEOUT_S}`
          : undefined,
      ],
      ...headers,
    ];
    this.send(writeResponse(status, list, body));
  }

  /** The session manager ended the session: close silently (AUTH-SPEC §5.3). */
  private kill(reason: CloseReason): void {
    this.log.info({ reason, session: this.session?.id }, 'session ended by the server');
    this.close(reason);
  }

  close(reason: CloseReason): void {
    if (this.phase !== 'closed') {
      this.phase = 'closed';
      this.socket.destroy();
    }
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
    if (!this.socket.destroyed && this.socket.writable) this.socket.write(bytes);
  }
}

/** A stream can be played over RTSP once it has an H.264 or AAC track. */
function playable(tracks: Tracks | undefined): tracks is Tracks {
  return tracks?.video?.codec === 'h264' || tracks?.audio?.codec === 'aac';
}

/** Which announced track a record SETUP URL names: its SDP control ends the URL (ffmpeg: `…/streamid=1`). */
function recordTrackFor(uri: string, announced: AnnouncedTracks): TrackKind | undefined {
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
