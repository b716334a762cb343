/**
 * ClientConn: what every persistent-connection client (RTMP, RTSP) shares, so that each
 * protocol's connection class is only its state machine's I/O shell.
 *
 * It owns the socket wiring, the one error policy (an exception while handling this client's
 * bytes, or in any callback routed through `guard`, closes this client with a logged
 * `protocol_error`; never the process, never another client), the limits every connection
 * shares (the handshake deadline, how a limit hit is counted, logged and closed), the
 * connection's timers, the question "is the answer from the session manager still wanted?",
 * and teardown: released resources and timers, then the session closed with its reason,
 * exactly once.
 */
import type { Socket } from 'node:net';
import type { Logger } from 'pino';
import { countLimitHit, type LimitName } from './core/limits.js';
import type { Proto } from './core/proto.js';
import type { CloseReason } from './core/reasons.js';
import { normalizeIp } from './net.js';
import type { ClientRequest, Decision, Session, SessionManager } from './sessions/types.js';

export interface ClientConnOptions {
  proto: Proto;
  log: Logger;
  sessions: SessionManager;
  /** Inactivity limit before the first request is done (the socket's idle timeout); 0 = none. */
  idleTimeoutMs: number;
  /**
   * Time from accept until `handshakeDone()` (`handshake_timeout`); 0 = none. A deadline, not an
   * inactivity limit: a client that trickles a byte now and then still runs out of it.
   */
  handshakeTimeoutMs: number;
}

export abstract class ClientConn {
  readonly ip: string;
  protected readonly log: Logger;
  /** The granted session, once the session manager said yes. */
  protected session: Session | undefined;
  private readonly sessions: SessionManager;
  private readonly releases: (() => void)[] = [];
  private readonly timers = new Set<NodeJS.Timeout>();
  private handshakeDeadline: (() => void) | undefined;
  private closedFlag = false;
  /** Bumped when an answer in flight must be dropped: a newer question was asked, or the client went away. */
  private ticket = 0;

  constructor(
    protected readonly socket: Socket,
    options: ClientConnOptions,
  ) {
    this.ip = normalizeIp(socket.remoteAddress ?? '');
    this.log = options.log.child({ proto: options.proto, ip: this.ip, port: socket.remotePort });
    this.sessions = options.sessions;
    socket.setNoDelay(true);
    socket.setTimeout(options.idleTimeoutMs);
    socket.on('timeout', () => this.close('timeout'));
    socket.on('data', (d: Buffer) => {
      if (!this.closedFlag) this.guard(() => this.onBytes(d));
    });
    socket.on('error', (err) => this.log.debug({ err: err.message }, 'socket error'));
    socket.on('close', () => this.close('client_closed'));
    const handshakeMs = options.handshakeTimeoutMs;
    if (handshakeMs > 0) {
      this.handshakeDeadline = this.after(handshakeMs, () =>
        this.limitExceeded('handshake_timeout', `no handshake within ${handshakeMs / 1000} s`, 'timeout'),
      );
    }
  }

  /** Bytes from the client; may throw, which closes this connection (see `guard`). */
  protected abstract onBytes(data: Buffer): void;

  get closed(): boolean {
    return this.closedFlag;
  }

  /** Runs `fn` under the connection's error policy. */
  protected guard(fn: () => void): void {
    try {
      fn();
    } catch (err) {
      this.fault(err);
    }
  }

  /** The client got through its handshake in time: the `handshake_timeout` deadline is off. */
  protected handshakeDone(): void {
    this.handshakeDeadline?.();
    this.handshakeDeadline = undefined;
  }

  /**
   * Runs `fn` under the error policy after `ms`, unless the returned cancel was called or the
   * connection ended first (teardown clears every timer).
   */
  protected after(ms: number, fn: () => void): () => void {
    const timer = setTimeout(() => {
      this.timers.delete(timer);
      if (!this.closedFlag) this.guard(fn);
    }, ms);
    this.timers.add(timer);
    return () => {
      clearTimeout(timer);
      this.timers.delete(timer);
    };
  }

  /**
   * The client went over `limit`: count the hit, log what it did (`detail`) and end this
   * connection, at once or, with `finish`, after an answer already written is flushed.
   */
  protected limitExceeded(
    limit: LimitName,
    detail: string,
    reason: CloseReason = 'limit_exceeded',
    end: 'close' | 'finish' = 'close',
  ): void {
    if (this.closedFlag) return;
    countLimitHit(limit);
    this.log.warn({ event: 'limit_exceeded', limit, err: detail }, 'limit exceeded; closing connection');
    if (end === 'finish') this.finish(reason);
    else this.close(reason);
  }

  /** An unexpected exception in this client's handling: log it and drop this client only. */
  protected fault(err: unknown): void {
    if (this.closedFlag) return;
    const message = err instanceof Error ? err.message : String(err);
    this.log.warn({ event: 'protocol_error', err: message }, 'protocol error; closing connection');
    this.close('protocol_error');
  }

  /**
   * Asks the session manager. Returns the decision only while it is still wanted: when the
   * client closed or asked again in the meantime, a granted session is closed at once and
   * undefined comes back. On allow, `session` is set and a kill by the manager
   * (ban, kick, re-check denied) closes this connection.
   */
  protected async authorize(req: ClientRequest): Promise<Decision | undefined> {
    const ticket = ++this.ticket;
    let decision: Decision;
    try {
      decision = await this.sessions.open(req);
    } catch (err) {
      this.guard(() => this.onAuthorizeError(err, req));
      return undefined;
    }
    if (this.closedFlag || ticket !== this.ticket) {
      if (decision.allow) decision.session.close('client_closed');
      return undefined;
    }
    if (decision.allow) {
      const session = decision.session;
      this.session = session;
      session.onKill((reason) => {
        this.log.info({ reason, session: session.id }, 'session ended by the server');
        this.close(reason);
      });
    }
    return decision;
  }

  /**
   * The session manager threw instead of deciding. By default that is a fault like any other;
   * a protocol that can tell the client "internal error" overrides this. It runs under `guard`,
   * also when the answer is no longer wanted (check `closed`).
   */
  protected onAuthorizeError(err: unknown, _req: ClientRequest): void {
    this.fault(err);
  }

  /** Registers what teardown releases (a bus subscription, a publisher slot), newest first. */
  protected onTeardown(release: () => void): void {
    if (this.closedFlag) {
      release();
      return;
    }
    this.releases.push(release);
  }

  /** Ends the connection at once (the client went away, a kill, a fault). Idempotent. */
  close(reason: CloseReason): void {
    if (!this.closedFlag) {
      this.closedFlag = true;
      this.socket.destroy();
    }
    this.teardown(reason);
  }

  /** Ends the connection after what was written so far is flushed (a refusal the client should read). */
  protected finish(reason: CloseReason): void {
    if (!this.closedFlag) {
      this.closedFlag = true;
      this.socket.end();
    }
    this.teardown(reason);
  }

  protected write(bytes: Buffer): void {
    if (!this.socket.destroyed && this.socket.writable) this.socket.write(bytes);
  }

  private teardown(reason: CloseReason): void {
    this.ticket++;
    for (const timer of this.timers) clearTimeout(timer);
    this.timers.clear();
    for (const release of this.releases.splice(0).reverse()) {
      try {
        release();
      } catch (err) {
        this.log.warn({ err: err instanceof Error ? err.message : String(err) }, 'teardown step failed');
      }
    }
    const session = this.session;
    if (session && !session.closed) session.close(reason);
  }
}
