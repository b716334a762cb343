/**
 * The relay between workers (`workers N`): the worker that owns a stream (its publisher landed
 * there, or it runs the stream's pulled input) serves the stream's MediaBus on a loopback port
 * of its own; another worker whose viewers want the stream connects and feeds the frames into
 * its local Stream as if a publisher were there. Each worker thus holds one copy of a stream
 * and muxes it once for its own viewers, whatever the number of workers or viewers.
 *
 * The relay port is this worker's alone (`exclusive`, never shared by the cluster module), on
 * 127.0.0.1, and a subscriber must present the cluster's random secret first: another local
 * process cannot read streams past the session manager through it.
 */
import { createServer, connect, type Server, type Socket } from 'node:net';
import { timingSafeEqual } from 'node:crypto';
import type { Logger } from 'pino';
import type { MediaListener } from '../media/bus.js';
import type { Stream } from '../streams/stream.js';
import type { RelayAddress } from './messages.js';
import {
  encodeFrameHead,
  encodeSubscribe,
  encodeTracks,
  RelayReader,
  SECRET_BYTES,
  type RelayMessage,
} from './relay-wire.js';

/** A subscriber must name its stream this soon after connecting. */
const SUBSCRIBE_TIMEOUT_MS = 5_000;
/** Bigger than any frame a publisher may send (the RTMP message cap is 16 MiB at most by default). */
const MAX_RELAY_MESSAGE = 64 * 1024 * 1024;

export class RelayServer {
  private readonly server: Server;
  private readonly subscribers = new Map<string, Set<Socket>>();

  constructor(
    private readonly deps: {
      secret: Buffer;
      /** The stream if this worker owns it (serves it to the others), else undefined. */
      owned: (name: string) => Stream | undefined;
      log: Logger;
    },
  ) {
    this.server = createServer((socket) => this.onConnection(socket));
  }

  listen(): Promise<RelayAddress> {
    return new Promise((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen({ host: '127.0.0.1', port: 0, exclusive: true }, () => {
        const a = this.server.address();
        if (a === null || typeof a === 'string') reject(new Error('relay listener has no port'));
        else resolve({ host: a.address, port: a.port });
      });
    });
  }

  /** The stream's publisher left this worker: its relays end, and the pullers ask again. */
  endStream(name: string): void {
    for (const s of this.subscribers.get(name) ?? []) s.destroy();
  }

  close(): Promise<void> {
    for (const set of this.subscribers.values()) for (const s of set) s.destroy();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }

  private onConnection(socket: Socket): void {
    socket.setNoDelay(true);
    const reader = new RelayReader(1024);
    const timer = setTimeout(() => socket.destroy(), SUBSCRIBE_TIMEOUT_MS);
    const onData = (chunk: Buffer): void => {
      let msgs: RelayMessage[];
      try {
        msgs = reader.push(chunk);
      } catch {
        socket.destroy();
        return;
      }
      const first = msgs[0];
      if (!first) return;
      clearTimeout(timer);
      socket.off('data', onData);
      if (
        first.type !== 'subscribe' ||
        first.secret.length !== SECRET_BYTES ||
        !timingSafeEqual(first.secret, this.deps.secret)
      ) {
        this.deps.log.warn(
          { peer: socket.remotePort },
          'relay connection without the cluster secret refused',
        );
        socket.destroy();
        return;
      }
      this.serve(socket, first.name);
    };
    socket.on('data', onData);
    socket.on('error', () => undefined);
    socket.on('close', () => clearTimeout(timer));
  }

  private serve(socket: Socket, name: string): void {
    const stream = this.deps.owned(name);
    if (!stream) {
      socket.destroy();
      return;
    }
    let set = this.subscribers.get(name);
    if (!set) this.subscribers.set(name, (set = new Set()));
    set.add(socket);
    const listener: MediaListener = {
      onTracks: (tracks) => {
        socket.write(encodeTracks(tracks));
      },
      onFrame: (frame) => {
        socket.cork();
        socket.write(encodeFrameHead(frame));
        socket.write(frame.data);
        socket.uncork();
      },
      backlog: () => socket.writableLength,
      failed: () => socket.destroy(),
    };
    const unsubscribe = stream.bus.subscribe(listener);
    socket.on('close', () => {
      unsubscribe();
      set.delete(socket);
      if (set.size === 0 && this.subscribers.get(name) === set) this.subscribers.delete(name);
    });
    this.deps.log.debug({ stream: name }, 'relaying stream to another worker');
  }
}

/**
 * Feeds `stream` from the owner's relay until either side ends; `onEnd` runs once, after the
 * stream's publishing slot was given back. Undefined when a client already publishes here.
 */
export function pullRelay(
  stream: Stream,
  owner: RelayAddress,
  secret: Buffer,
  log: Logger,
  onEnd: () => void,
): { stop(): void } | undefined {
  // Released only from a later turn (a socket event, the stream stopping), so `socket` is set by then.
  const publisher = stream.claimPublisher({ onRelease: () => socket.destroy() });
  if (!publisher) return undefined;
  const socket = connect(owner.port, owner.host);
  socket.setNoDelay(true);
  const reader = new RelayReader(MAX_RELAY_MESSAGE);
  socket.on('connect', () => socket.write(encodeSubscribe(secret, stream.name)));
  socket.on('data', (chunk: Buffer) => {
    try {
      for (const m of reader.push(chunk)) {
        if (m.type === 'tracks') publisher.source.tracks(m.tracks);
        else if (m.type === 'frame') publisher.source.frame(m.frame);
      }
    } catch (err) {
      log.error({ stream: stream.name, err: (err as Error).message }, 'relay from the owning worker broke');
      socket.destroy();
    }
  });
  socket.on('error', () => undefined);
  socket.once('close', () => {
    publisher.release();
    onEnd();
  });
  log.debug({ stream: stream.name, owner: owner.port }, 'pulling stream from the owning worker');
  return { stop: () => publisher.release() };
}
