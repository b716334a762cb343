/**
 * An event-driven RTMP client for in-process connection tests, built from our own wire
 * modules: every message the server sends is kept in order, and a test awaits conditions on
 * them (`until`) instead of sleeping. Unlike test/helpers/rtmp-client.ts (a fixed play/publish
 * probe for e2e), it can publish media, send arbitrary bytes and stay open for as long as the
 * test wants.
 */
import { connect, type Socket } from 'node:net';
import { once } from 'node:events';
import type { Amf0Value } from '../../../../src/media/amf0.js';
import { ChunkReader, type RtmpMessage } from '../../../../protocols/rtmp/wire/chunk-reader.js';
import { encodeMessage } from '../../../../protocols/rtmp/wire/chunk-writer.js';
import { HANDSHAKE_PACKET_BYTES } from '../../../../protocols/rtmp/wire/handshake.js';
import { MessageType, command, decodeCommand } from '../../../../protocols/rtmp/wire/messages.js';
import { DEFAULT_LIMITS } from '../../../../src/core/limits.js';
import { chunkReaderLimits } from '../../../../protocols/rtmp/session.js';

/** What the server reads with by default (src/core/limits.ts). */
const READER_LIMITS = chunkReaderLimits(DEFAULT_LIMITS);

export interface Status {
  level: string;
  code: string;
  description: string;
}

/** The chunk size this client sends with; it never announces another. */
const CLIENT_CHUNK_SIZE = 128;
/** The message stream createStream hands out; the server has one per connection. */
const NET_STREAM_ID = 1;

export class RtmpTestClient {
  /** Every message from the server after the handshake, in order. */
  readonly messages: RtmpMessage[] = [];
  closed = false;
  private readonly reader = new ChunkReader(READER_LIMITS);
  private handshake: Buffer | undefined = Buffer.alloc(0);
  private readonly waiters = new Set<() => void>();

  private constructor(private readonly socket: Socket) {
    socket.on('data', (d: Buffer) => this.onData(d));
    socket.on('error', () => undefined);
    socket.on('close', () => {
      this.closed = true;
      this.wake();
    });
  }

  /** Connects, handshakes and sends connect for `app`; resolves once the server accepted it. */
  static async open(port: number, app: string): Promise<RtmpTestClient> {
    const socket = connect(port, '127.0.0.1');
    await once(socket, 'connect');
    const client = new RtmpTestClient(socket);
    socket.write(Buffer.concat([Buffer.of(3), Buffer.alloc(HANDSHAKE_PACKET_BYTES, 0x11)]));
    await client.until(() => client.handshake === undefined, 'handshake');
    client.send(
      command(3, 0, CLIENT_CHUNK_SIZE, 'connect', 1, { app, tcUrl: `rtmp://127.0.0.1:${port}/${app}` }),
    );
    await client.until(() => client.result(1) !== undefined, 'connect _result');
    return client;
  }

  /** The `_result` of transaction `txId`, if it came. */
  result(txId: number): Amf0Value[] | undefined {
    return this.commands().find((c) => c.name === '_result' && c.txId === txId)?.args;
  }

  commands(): { name: string; txId: number; args: Amf0Value[] }[] {
    return this.messages.filter((m) => m.type === MessageType.CommandAmf0).map((m) => decodeCommand(m));
  }

  statuses(): Status[] {
    return this.commands()
      .filter((c) => c.name === 'onStatus')
      .map((c) => c.args[1] as unknown as Status);
  }

  /** Audio and video messages from the server. */
  media(): RtmpMessage[] {
    return this.messages.filter((m) => m.type === MessageType.Audio || m.type === MessageType.Video);
  }

  /** createStream, then play or publish `name` (without waiting for the answer). */
  async start(kind: 'play' | 'publish', name: string): Promise<void> {
    this.send(command(3, 0, CLIENT_CHUNK_SIZE, 'createStream', 2, null));
    await this.until(() => this.result(2) !== undefined, 'createStream _result');
    this.send(
      command(
        8,
        NET_STREAM_ID,
        CLIENT_CHUNK_SIZE,
        kind,
        3,
        null,
        name,
        ...(kind === 'publish' ? ['live'] : []),
      ),
    );
  }

  /** An audio or video message on the client's NetStream; `body` is an FLV tag body. */
  sendMedia(
    type: typeof MessageType.Audio | typeof MessageType.Video,
    timestampMs: number,
    body: Buffer,
  ): void {
    const csid = type === MessageType.Audio ? 4 : 6;
    this.send(
      encodeMessage(
        { csid, type, streamId: NET_STREAM_ID, timestamp: timestampMs, payload: body },
        CLIENT_CHUNK_SIZE,
      ),
    );
  }

  send(bytes: Buffer): void {
    this.socket.write(bytes);
  }

  close(): void {
    this.socket.destroy();
  }

  /** Resolves when `condition` holds, checked after every read from the server and on close. */
  until(condition: () => boolean, what: string, timeoutMs = 5000): Promise<void> {
    if (condition()) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const check = (): void => {
        if (!condition()) return;
        clearTimeout(timer);
        this.waiters.delete(check);
        resolve();
      };
      const timer = setTimeout(() => {
        this.waiters.delete(check);
        reject(new Error(`timed out waiting for ${what}`));
      }, timeoutMs);
      this.waiters.add(check);
    });
  }

  private onData(data: Buffer): void {
    if (this.handshake !== undefined) {
      const all = Buffer.concat([this.handshake, data]);
      const s0s1s2 = 1 + 2 * HANDSHAKE_PACKET_BYTES;
      if (all.length < s0s1s2) {
        this.handshake = all;
        return;
      }
      this.handshake = undefined;
      this.socket.write(all.subarray(1, 1 + HANDSHAKE_PACKET_BYTES)); // C2 echoes S1
      data = all.subarray(s0s1s2);
    }
    this.messages.push(...this.reader.push(data));
    this.wake();
  }

  private wake(): void {
    for (const check of [...this.waiters]) check();
  }
}
