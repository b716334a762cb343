/**
 * The RTMP fan-out bench's publisher and latency viewers, run as a child process so that
 * their clocks are not held up by the hundreds of byte-counting viewers in the bench process.
 *
 * It publishes an FLV file's tags in real time (as `ffmpeg -re -c copy` does: one write per
 * tag, paced by the tag timestamps, the file looped) and notes when each video tag was written.
 * Two viewers, one that joins before the bench's viewers and one after them (last in the
 * server's fan-out order), reassemble the chunk stream and note when each video message
 * completed. A video payload is recognised by its last bytes (entropy-coded slice data, the
 * same on every server since none re-encodes), so the delay needs no marker in the media.
 *
 * Usage: node --import tsx bench/rtmp-probe.ts PORT APP NAME MEDIA.flv
 * stdin "late\n" opens the late viewer, "mark\n" starts collecting, "report\n" prints one JSON
 * line {publishedBytesPerSecond, early:{p50,p99,n}, late:{…}} and exits.
 */
import { readFileSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { randomBytes } from 'node:crypto';
import { createInterface } from 'node:readline';
import { ChunkReader } from '../protocols/rtmp/wire/chunk-reader.js';
import { encodeMessage } from '../protocols/rtmp/wire/chunk-writer.js';
import { command, setChunkSize } from '../protocols/rtmp/wire/messages.js';
import { encodeAmf0 } from '../src/media/amf0.js';
import { FlvReader, type FlvTag } from '../src/media/flv.js';

const [portArg, app = 'live', name = 'bench', media = ''] = process.argv.slice(2);
const port = Number(portArg);
const PUBLISH_CHUNK_SIZE = 4096;
const TAIL = 16;

const tags: FlvTag[] = new FlvReader().push(readFileSync(media)).filter((t) => t.type !== 18);
const lastTs = tags.at(-1)?.timestamp ?? 0;
const loopMs = lastTs + 33;
const payloadBytes = tags.reduce((a, t) => a + t.data.length, 0);
const sentAt = new Map<string, number>();
let collecting = false;

function tail(payload: Buffer): string {
  return payload.toString('latin1', payload.length - TAIL);
}

/** Plain (version 3, zero-time) handshake; resolves with whatever the server sent after S2. */
function handshake(socket: Socket): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    let got = Buffer.alloc(0);
    socket.once('error', reject);
    socket.on('connect', () =>
      socket.write(Buffer.concat([Buffer.from([3]), Buffer.alloc(8), randomBytes(1528)])),
    );
    const onData = (d: Buffer): void => {
      got = Buffer.concat([got, d]);
      if (got.length < 3073) return;
      socket.off('data', onData);
      socket.write(got.subarray(1, 1537));
      resolve(got.subarray(3073));
    };
    socket.on('data', onData);
  });
}

const readerLimits = {
  maxChunkSize: 0x7fffffff,
  maxMessageBytes: 16 * 1024 * 1024,
  maxBufferedBytes: 64 * 1024 * 1024,
  maxChunkStreams: 64,
};

async function publish(): Promise<void> {
  const socket = connect(port, '127.0.0.1');
  socket.setNoDelay(true);
  const rest = await handshake(socket);
  const reader = new ChunkReader(readerLimits);
  let started!: () => void;
  const publishing = new Promise<void>((r) => (started = r));
  const onData = (d: Buffer): void => {
    for (const m of reader.push(d)) {
      if (m.type === 20 && m.payload.includes('NetStream.Publish.Start')) started();
    }
  };
  onData(rest);
  socket.on('data', onData);
  const tcUrl = `rtmp://127.0.0.1:${port}/${app}`;
  socket.write(command(3, 0, 128, 'connect', 1, { app, type: 'nonprivate', tcUrl }));
  socket.write(setChunkSize(PUBLISH_CHUNK_SIZE));
  socket.write(command(3, 0, PUBLISH_CHUNK_SIZE, 'createStream', 2, null));
  socket.write(command(4, 1, PUBLISH_CHUNK_SIZE, 'publish', 3, null, name, 'live'));
  await publishing;
  socket.write(
    encodeMessage(
      {
        csid: 4,
        type: 18,
        streamId: 1,
        timestamp: 0,
        payload: encodeAmf0('@setDataFrame', 'onMetaData', { width: 1280, height: 720, framerate: 30 }),
      },
      PUBLISH_CHUNK_SIZE,
    ),
  );
  const t0 = performance.now();
  let index = 0;
  let loop = 0;
  const pump = (): void => {
    for (;;) {
      const tag = tags[index];
      if (!tag) return;
      const ts = loop * loopMs + tag.timestamp;
      const due = t0 + ts;
      const now = performance.now();
      if (due > now) {
        setTimeout(pump, due - now);
        return;
      }
      const csid = tag.type === 9 ? 6 : 5;
      // After the first loop the sequence headers are not sent again (ffmpeg's -stream_loop does not either).
      const isConfig = tag.data[1] === 0;
      if (loop === 0 || !isConfig) {
        const bytes = encodeMessage(
          { csid, type: tag.type, streamId: 1, timestamp: ts, payload: tag.data },
          PUBLISH_CHUNK_SIZE,
        );
        if (tag.type === 9 && !isConfig) sentAt.set(tail(tag.data), performance.now());
        socket.write(bytes);
      }
      index++;
      if (index === tags.length) {
        index = 0;
        loop++;
      }
    }
  };
  pump();
}

function watch(): number[] {
  const delays: number[] = [];
  const socket = connect(port, '127.0.0.1');
  const reader = new ChunkReader(readerLimits);
  const onMessages = (d: Buffer): void => {
    const at = performance.now();
    for (const m of reader.push(d)) {
      if (m.type !== 9 || m.payload.length <= TAIL || !collecting) continue;
      const sent = sentAt.get(tail(m.payload));
      if (sent !== undefined) delays.push(at - sent);
    }
  };
  void handshake(socket).then((rest) => {
    socket.on('data', onMessages);
    const tcUrl = `rtmp://127.0.0.1:${port}/${app}`;
    socket.write(command(3, 0, 128, 'connect', 1, { app, tcUrl }));
    socket.write(command(3, 0, 128, 'createStream', 2, null));
    socket.write(command(8, 1, 128, 'play', 3, null, name));
    onMessages(rest);
  });
  socket.on('error', () => undefined);
  return delays;
}

function summary(delays: number[]): { p50: number; p99: number; n: number } {
  const s = [...delays].sort((a, b) => a - b);
  const at = (q: number): number => s[Math.min(s.length - 1, Math.floor(q * s.length))] ?? NaN;
  return { p50: Number(at(0.5).toFixed(2)), p99: Number(at(0.99).toFixed(2)), n: s.length };
}

await publish();
const early = watch();
let late: number[] = [];
process.stdout.write('publishing\n');
for await (const line of createInterface({ input: process.stdin })) {
  if (line === 'late') late = watch();
  else if (line === 'mark') collecting = true;
  else if (line === 'report') {
    process.stdout.write(
      `${JSON.stringify({
        publishedBytesPerSecond: (payloadBytes / loopMs) * 1000,
        early: summary(early),
        late: summary(late),
      })}\n`,
    );
    process.exit(0);
  }
}
