/**
 * A minimal RTMP player built from our own wire modules, for tests that must see the
 * exact messages a server sends (status codes, and whether any media byte arrived).
 */
import { connect } from 'node:net';
import { randomBytes } from 'node:crypto';
import { ChunkReader, type RtmpMessage } from '../../protocols/rtmp/wire/chunk-reader.js';
import { command, decodeCommand, MessageType } from '../../protocols/rtmp/wire/messages.js';
import { DEFAULT_LIMITS } from '../../src/core/limits.js';
import { chunkReaderLimits } from '../../protocols/rtmp/session.js';

/** What the server reads with by default (src/core/limits.ts). */
const READER_LIMITS = chunkReaderLimits(DEFAULT_LIMITS);

export interface RtmpProbeResult {
  statuses: { level: string; code: string; description: string }[];
  mediaMessages: number;
  mediaBytes: number;
  closedByServer: boolean;
  /** With `collect`: every audio/video message (type 8/9), in order. */
  media: { type: number; timestamp: number; payload: Buffer }[];
}

/** Connects, plays (or publishes with no media) `name` on `app`, and records what comes back for `ms`. */
export function rtmpProbe(
  port: number,
  app: string,
  name: string,
  options: { kind?: 'play' | 'publish'; ms?: number; collect?: boolean } = {},
): Promise<RtmpProbeResult> {
  const kind = options.kind ?? 'play';
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1');
    const result: RtmpProbeResult = {
      statuses: [],
      mediaMessages: 0,
      mediaBytes: 0,
      closedByServer: false,
      media: [],
    };
    const reader = new ChunkReader(READER_LIMITS);
    let handshake = Buffer.alloc(0);
    let shaken = false;
    const c1 = Buffer.concat([Buffer.alloc(8), randomBytes(1528)]);
    const finish = (): void => {
      clearTimeout(timer);
      socket.destroy();
      resolve(result);
    };
    const timer = setTimeout(finish, options.ms ?? 3000);
    socket.on('error', reject);
    socket.on('end', () => {
      result.closedByServer = true;
      finish();
    });
    socket.on('close', () => {
      result.closedByServer = true;
      finish();
    });
    socket.on('connect', () => socket.write(Buffer.concat([Buffer.from([3]), c1])));
    const onMessage = (m: RtmpMessage): void => {
      if (m.type === MessageType.Audio || m.type === MessageType.Video) {
        result.mediaMessages++;
        result.mediaBytes += m.payload.length;
        if (options.collect) result.media.push({ type: m.type, timestamp: m.timestamp, payload: m.payload });
      } else if (m.type === MessageType.CommandAmf0) {
        const c = decodeCommand(m);
        if (c.name === '_result' && c.txId === 1) {
          socket.write(command(3, 0, 128, 'createStream', 2, null));
        } else if (c.name === '_result' && c.txId === 2) {
          socket.write(command(8, 1, 128, kind, 3, null, name, ...(kind === 'publish' ? ['live'] : [])));
        } else if (c.name === 'onStatus') {
          const info = c.args[1] as { level: string; code: string; description: string };
          result.statuses.push({ level: info.level, code: info.code, description: info.description });
        }
      }
    };
    socket.on('data', (data: Buffer) => {
      if (!shaken) {
        handshake = Buffer.concat([handshake, data]);
        if (handshake.length < 3073) return;
        shaken = true;
        socket.write(handshake.subarray(1, 1537)); // C2 = S1
        socket.write(
          command(3, 0, 128, 'connect', 1, {
            app,
            tcUrl: `rtmp://127.0.0.1:${port}/${app}`,
            flashVer: 'LNX 9,0,124,2',
          }),
        );
        data = handshake.subarray(3073);
        if (data.length === 0) return;
      }
      for (const m of reader.push(data)) onMessage(m);
    });
  });
}
