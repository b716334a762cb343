/**
 * RtmpConn: one RTMP client socket, the I/O shell of an RtmpSessionMachine. It feeds the
 * machine the client's bytes and performs what comes back: writes, the session manager's
 * question, claiming a stream to publish into or subscribing a player to one. Socket wiring,
 * the error policy and teardown are ClientConn's.
 */
import type { Socket } from 'node:net';
import type { Logger } from 'pino';
import { ClientConn } from '../../src/client-conn.js';
import type { Config } from '../../src/config/types.js';
import { limitMs } from '../../src/core/limits.js';
import type { SessionKind } from '../../src/core/proto.js';
import type { ClientRequest, SessionManager } from '../../src/sessions/types.js';
import type { StreamRegistry } from '../../src/streams/registry.js';
import type { Publisher } from '../../src/streams/stream.js';
import { RtmpEgress } from './egress.js';
import { RtmpSessionMachine, type RtmpAction } from './session.js';
import { adobeApps } from './credentials.js';

export interface RtmpDeps {
  registry: StreamRegistry;
  sessions: SessionManager;
  log: Logger;
  /** The running config; its limits are read when a client is accepted. */
  config: () => Config;
}

export class RtmpConn extends ClientConn {
  private readonly machine: RtmpSessionMachine;
  private readonly registry: StreamRegistry;
  private publisher: Publisher | undefined;

  constructor(socket: Socket, deps: RtmpDeps) {
    const limits = deps.config().limits;
    super(socket, {
      proto: 'rtmp',
      log: deps.log,
      sessions: deps.sessions,
      // Until the play or publish command the handshake deadline bounds the client; from then
      // on the machine sets what fits (none for a player, PUBLISH_IDLE_MS for a publisher).
      idleTimeoutMs: 0,
      handshakeTimeoutMs: limitMs(limits, 'handshake_timeout'),
    });
    this.registry = deps.registry;
    const config = deps.config();
    const adobe = adobeApps([...config.templates, ...config.streams]);
    this.machine = new RtmpSessionMachine({ ip: this.ip, limits, adobeRequired: (app) => adobe.has(app) });
  }

  protected onBytes(data: Buffer): void {
    this.perform(this.machine.receive(data));
  }

  protected override onAuthorizeError(err: unknown, req: ClientRequest): void {
    this.log.error(
      { err: err instanceof Error ? err.message : String(err), stream: req.name },
      'session manager failed',
    );
    this.perform(this.machine.decisionFailed());
  }

  private perform(actions: RtmpAction[]): void {
    for (const action of actions) {
      if (this.closed) return;
      switch (action.type) {
        case 'write':
          this.write(action.bytes);
          break;
        case 'idle':
          this.socket.setTimeout(action.ms);
          break;
        case 'ready':
          this.handshakeDone();
          break;
        case 'authorize':
          void this.ask(action.request);
          break;
        case 'start':
          if (action.kind === 'publish') this.startPublish(action.name);
          else this.startPlay(action.name);
          break;
        case 'media':
          this.onMedia(action);
          break;
        case 'refuse':
          this.refused(action.kind, action.code, action.description);
          break;
        case 'close':
          this.close(action.reason);
          break;
        case 'limit':
          this.limitExceeded(action.limit, action.detail);
          break;
        case 'notice':
          this.log.warn({ session: this.session?.id }, action.message);
          break;
      }
    }
  }

  private async ask(request: ClientRequest): Promise<void> {
    const decision = await this.authorize(request);
    if (decision) this.guard(() => this.perform(this.machine.decided(decision)));
  }

  private startPublish(name: string): void {
    const stream = this.registry.resolve(name);
    const publisher = stream?.claimPublisher();
    if (!stream || !publisher) {
      this.perform(this.machine.startFailed(stream ? 'stream_busy' : 'stream_not_found'));
      return;
    }
    this.publisher = publisher;
    this.onTeardown(() => publisher.release());
    this.perform(this.machine.started({ segmentSeconds: stream.config.segmentDuration }));
    this.log.info({ stream: name, session: this.session?.id }, 'publishing');
  }

  private startPlay(name: string): void {
    const stream = this.registry.resolve(name);
    if (!stream) {
      this.perform(this.machine.startFailed('stream_not_found'));
      return;
    }
    const refusal = this.machine.codecRefusal(stream.bus.tracks);
    if (refusal) return this.perform(refusal);
    this.perform(this.machine.started());
    const egress = stream.bus.egress('rtmp', (bus) => new RtmpEgress(bus));
    const session = this.session;
    const unsubscribe = egress.subscribe({
      // The egress already batched a turn's messages into one Buffer: one write, no cork.
      deliver: (item) => {
        this.socket.write(item.bytes);
        session?.addBytes(item.bytes.length);
      },
      backlog: () => this.socket.writableLength,
      // The egress dropped this player (stopped reading, or a write threw) and has logged why.
      close: (reason) => this.close(reason),
    });
    this.onTeardown(unsubscribe);
  }

  private onMedia(media: Extract<RtmpAction, { type: 'media' }>): void {
    const publisher = this.publisher;
    if (!publisher) throw new Error('publisher media before the stream was claimed');
    this.session?.addBytes(media.payloadBytes);
    if (media.tracks) publisher.source.tracks(media.tracks);
    if (media.frame) publisher.source.frame(media.frame);
  }

  /** The machine refused the play or publish; its onStatus error is written (SPEC §9). */
  private refused(kind: SessionKind, code: string, description: string): void {
    this.log.info({ kind, code, description }, 'refused');
    // finish() flushes the status before the FIN, so the client can show why.
    this.finish('refused');
  }
}
