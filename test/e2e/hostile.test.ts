/**
 * Hostile clients against a real streamgate process, while an honest publisher (real ffmpeg,
 * one encoder teed to RTMP live/honest, RTMP paid/show and RTSP live/rtspfed) and two honest
 * viewers (a raw RTMP player and an HTTP MPEG-TS reader of live/honest, on 127.0.0.1) run
 * throughout. Attackers bind other 127.0.0.x source addresses, so per-IP limits land on them.
 *
 * Every attack is one subtest, and every subtest asserts, besides what the attack itself must
 * provoke: the server answers /health afterwards, both honest viewers received media during
 * the attack window (and were not dropped), and the server's RSS (VmRSS, sampled every 200 ms)
 * stayed under the baseline taken after warm-up plus RSS_HEADROOM_MB. A subtest that crashes
 * the server or leaves it bloated gets a fresh server before the next one, so each result
 * stands on its own.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { Agent, request as httpRequest } from 'node:http';
import { createSocket } from 'node:dgram';
import { startStreamgate, type RunningStreamgate } from '../helpers/streamgate.js';
import { stopProcess } from '../helpers/clients.js';
import { skipWithout } from '../helpers/tools.js';
import { encodeMessage } from '../../protocols/rtmp/wire/chunk-writer.js';
import { command, decodeCommand, MessageType, setChunkSize } from '../../protocols/rtmp/wire/messages.js';
import {
  HttpViewer,
  RssWatch,
  RtmpViewer,
  Watched,
  chunk0,
  httpGet,
  rawExchange,
  rssMb,
  rtmpHandshake,
  rtspAsk,
  sleep,
  startEvilBackend,
  statusOf,
  tcpFrom,
  writeAll,
  type EvilBackend,
} from '../helpers/hostile.js';

const skip = skipWithout(['ffmpeg'], ['ffprobe']);

/** The small limits the test config sets, so deadlines fire within a test's patience. */
const HANDSHAKE_TIMEOUT_S = 2;
const REQUEST_HEAD_TIMEOUT_S = 3;
const MAX_CONNECTIONS_PER_IP = 200;
/** Defaults the test relies on (src/core/limits.ts). */
const NEW_SESSIONS_BURST = 100;
const NEW_SESSIONS_PER_SECOND = 20;
/** How far the server's RSS may rise above its warmed-up baseline during any attack. */
const RSS_HEADROOM_MB = 150;
/** Server log lines (level info and above) allowed while 10,000 bad tokens arrive. */
const FLOOD_LOG_LINES = 500;

interface World {
  server: RunningStreamgate;
  pid: number;
  http: number;
  rtmp: number;
  rtsp: number;
  publisher: ChildProcess;
  rtmpViewer: RtmpViewer;
  tsViewer: HttpViewer;
  baselineRss: number;
}

let backend: EvilBackend;
let world: World | undefined;

function config(): string {
  return `
    limits {
      handshake_timeout ${HANDSHAKE_TIMEOUT_S};
      request_head_timeout ${REQUEST_HEAD_TIMEOUT_S};
      max_connections_per_ip ${MAX_CONNECTIONS_PER_IP};
    }
    trusted_proxies 127.0.0.1 127.0.0.8;
    template live { prefix live; input publish://; }
    template paid { prefix paid; input publish://; on_play ${backend.url} timeout=1; }
  `;
}

/** One x264 encoder teed to the three honest streams. */
function startPublisher(rtmp: number, rtsp: number): ChildProcess {
  const outputs = [
    `[f=flv:onfail=ignore]rtmp://127.0.0.1:${rtmp}/live/honest`,
    `[f=flv:onfail=ignore]rtmp://127.0.0.1:${rtmp}/paid/show`,
    `[f=rtsp:rtsp_transport=tcp:onfail=ignore]rtsp://127.0.0.1:${rtsp}/live/rtspfed`,
  ].join('|');
  // prettier-ignore
  return spawn('ffmpeg', [
    '-hide_banner', '-loglevel', 'error', '-re',
    '-f', 'lavfi', '-i', 'testsrc2=size=320x240:rate=25',
    '-f', 'lavfi', '-i', 'sine=frequency=1000:sample_rate=44100',
    '-map', '0:v', '-map', '1:a',
    '-c:v', 'libx264', '-preset', 'ultrafast', '-tune', 'zerolatency', '-g', '25', '-pix_fmt', 'yuv420p',
    '-c:a', 'aac', '-b:a', '64k', '-flags', '+global_header',
    '-f', 'tee', outputs,
  ], { stdio: ['ignore', 'ignore', 'ignore'] });
}

async function waitFor(what: string, ok: () => boolean | Promise<boolean>, ms: number): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await ok())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(200);
  }
}

async function stopWorld(): Promise<void> {
  const w = world;
  world = undefined;
  if (!w) return;
  w.rtmpViewer.stop();
  w.tsViewer.stop();
  await stopProcess(w.publisher);
  await w.server.stop();
}

async function startWorld(): Promise<World> {
  const server = await startStreamgate(config(), {
    listeners: 'http 127.0.0.1:0;\nrtmp 127.0.0.1:0;\nrtsp 127.0.0.1:0;\n',
    env: { LOG_LEVEL: 'info' },
  });
  const http = server.ports['http'] ?? 0;
  const rtmp = server.ports['rtmp'] ?? 0;
  const rtsp = server.ports['rtsp'] ?? 0;
  const publisher = startPublisher(rtmp, rtsp);
  const fed = async (name: string): Promise<boolean> => {
    const r = await httpGet(http, `/api/streams/${name}`).catch(() => undefined);
    return r?.status === 200 && (JSON.parse(r.body.toString()) as { frames_in: number }).frames_in > 25;
  };
  await waitFor(
    'the honest publisher',
    async () => (await fed('live/honest')) && (await fed('paid/show')),
    20_000,
  );
  const rtmpViewer = new RtmpViewer(rtmp, 'live', 'honest');
  const tsViewer = new HttpViewer(http, '/live/honest/mpegts');
  // The HLS egress of live/honest starts on its first request; later tests want a playlist at once.
  await waitFor(
    'an HLS playlist',
    async () => (await httpGet(http, '/live/honest/index.m3u8').catch(() => undefined))?.status === 200,
    20_000,
  );
  await waitFor(
    'the honest viewers',
    () => rtmpViewer.mediaBytes > 50_000 && tsViewer.bytes > 50_000,
    15_000,
  );
  const pid = server.proc.pid ?? 0;
  return { server, pid, http, rtmp, rtsp, publisher, rtmpViewer, tsViewer, baselineRss: rssMb(pid) };
}

/** A running server with its honest clients, fresh if the last subtest broke or bloated it. */
async function ensureWorld(): Promise<World> {
  const w = world;
  const healthy =
    w !== undefined &&
    w.server.proc.exitCode === null &&
    w.server.proc.signalCode === null &&
    w.publisher.exitCode === null &&
    !w.rtmpViewer.closed &&
    !w.tsViewer.closed &&
    rssMb(w.pid) < w.baselineRss + RSS_HEADROOM_MB / 2;
  if (healthy) return w;
  await stopWorld();
  world = await startWorld();
  return world;
}

interface AttackContext {
  w: World;
  /** Aborted when the server's RSS passes the bound: stop attacking, the subtest has failed. */
  signal: AbortSignal;
  /** A failed expectation of the attack itself; all are reported together with the common checks. */
  check(ok: boolean, message: string): void;
}

/**
 * Runs one attack and the checks every attack shares. The honest viewers must gain bytes over
 * a window of at least `minWindowMs` that starts with the attack.
 */
async function underAttack(
  attack: (ctx: AttackContext) => Promise<void>,
  options: { minWindowMs?: number } = {},
): Promise<void> {
  const w = await ensureWorld();
  const failures: string[] = [];
  const check = (ok: boolean, message: string): void => {
    if (!ok) failures.push(message);
  };
  const before = { rtmp: w.rtmpViewer.mediaBytes, ts: w.tsViewer.bytes };
  const started = Date.now();
  const abort = new AbortController();
  const bound = w.baselineRss + RSS_HEADROOM_MB;
  const watch = new RssWatch(w.pid, bound, () => abort.abort());
  try {
    await attack({ w, signal: abort.signal, check });
  } catch (err) {
    failures.push(`attack threw: ${err instanceof Error ? err.stack : String(err)}`);
  }
  const left = (options.minWindowMs ?? 2000) - (Date.now() - started);
  if (left > 0) await sleep(left);
  const maxRss = watch.stop();
  const alive = w.server.proc.exitCode === null && w.server.proc.signalCode === null;
  check(alive, `server process exited (code ${w.server.proc.exitCode}, signal ${w.server.proc.signalCode})`);
  if (alive) {
    const health = await httpGet(w.http, '/health', { ms: 5000 }).catch((e: Error) => e);
    check(
      !(health instanceof Error) && health.status === 200,
      `/health did not answer 200: ${String(health)}`,
    );
  }
  check(
    w.rtmpViewer.mediaBytes > before.rtmp && !w.rtmpViewer.closed,
    `honest RTMP viewer stalled or was dropped (${before.rtmp} → ${w.rtmpViewer.mediaBytes} bytes, closed=${w.rtmpViewer.closed})`,
  );
  check(
    w.tsViewer.bytes > before.ts && !w.tsViewer.closed,
    `honest HTTP-TS viewer stalled or was dropped (${before.ts} → ${w.tsViewer.bytes} bytes, closed=${w.tsViewer.closed})`,
  );
  check(
    maxRss <= bound,
    `server RSS reached ${maxRss.toFixed(0)} MiB, over the bound ${bound.toFixed(0)} MiB (baseline ${w.baselineRss.toFixed(0)} + ${RSS_HEADROOM_MB})`,
  );
  if (failures.length > 0) assert.fail(failures.join('\n'));
}

/** Whether `buf` looks like MPEG-TS (sync bytes 188 apart): a media byte. */
function looksLikeTs(buf: Buffer): boolean {
  return buf.length >= 376 && buf[0] === 0x47 && buf[188] === 0x47;
}

before(async () => {
  if (skip) return;
  backend = await startEvilBackend();
  world = await startWorld();
});

after(async () => {
  if (skip) return;
  await stopWorld();
  await backend.close();
});

test(
  'rtsp: SETUP with client_port=0-1 on an RTSP-fed stream is refused and the server keeps running',
  { skip, timeout: 60_000 },
  () =>
    underAttack(async ({ w, check }) => {
      const socket = await tcpFrom(w.rtsp, '127.0.0.11');
      const c = new Watched(socket, true);
      const url = `rtsp://127.0.0.1:${w.rtsp}/live/rtspfed`;
      const describe = await rtspAsk(c, [`DESCRIBE ${url} RTSP/1.0`, 'CSeq: 1', 'Accept: application/sdp']);
      assert.equal(describe.status, 200, `DESCRIBE of the RTSP-fed stream: ${describe.head}`);
      const controls = [...describe.body.matchAll(/^a=control:(\S+)/gm)]
        .map((m) => m[1] ?? '')
        .filter((v) => v !== '*');
      assert.ok(controls.length > 0, 'the SDP lists tracks');
      // A real receiver for the second track, so a PLAY the server accepted would really send.
      const receiver = createSocket('udp4');
      await new Promise<void>((r) => receiver.bind(0, '127.0.0.11', () => r()));
      const receiverPort = receiver.address().port;
      let session: string | undefined;
      const statuses: number[] = [];
      let cseq = 2;
      for (const [i, control] of controls.entries()) {
        const track = control.startsWith('rtsp://') ? control : `${url}/${control}`;
        const ports = i === 0 ? '0-1' : `${receiverPort}-${receiverPort + 1}`;
        const r = await rtspAsk(c, [
          `SETUP ${track} RTSP/1.0`,
          `CSeq: ${cseq++}`,
          `Transport: RTP/AVP;unicast;client_port=${ports}`,
          ...(session ? [`Session: ${session}`] : []),
        ]);
        statuses.push(r.status);
        session ??= /^Session:\s*([^;\r\n]+)/im.exec(r.head)?.[1];
      }
      if (statuses.some((s) => s === 200) && session) {
        // The server took it: make it send, which is where a send to port 0 fails.
        await rtspAsk(c, [`PLAY ${url} RTSP/1.0`, `CSeq: ${cseq++}`, `Session: ${session}`]);
        await sleep(2000);
      }
      socket.destroy();
      receiver.close();
      check(
        (statuses[0] ?? 0) >= 400 && (statuses[0] ?? 0) < 500,
        `SETUP with client_port=0-1 answered ${statuses[0]} (want a 4xx refusal such as 461)`,
      );
    }),
);

test(
  'rtmp: 63 chunk streams × unfinished 8 MiB messages on 3 connections stay within the memory bound',
  { skip, timeout: 90_000 },
  () =>
    underAttack(
      async ({ w, signal, check }) => {
        const messageBytes = 8 * 1024 * 1024;
        const piece = Buffer.alloc(messageBytes - 1, 0x17);
        const attackers = await Promise.all(
          [21, 22, 23].map(async (host) => {
            const raw = await rtmpHandshake(w.rtmp, `127.0.0.${host}`);
            if (raw) await raw.connect('live');
            return raw;
          }),
        );
        const sent = await Promise.all(
          attackers.map(async (raw) => {
            if (!raw) return 0;
            // One chunk per message, one byte short: every message stays unfinished.
            if (!(await writeAll(raw.socket, setChunkSize(messageBytes - 1)))) return 0;
            let bytes = 0;
            for (let csid = 3; csid < 3 + 63; csid++) {
              if (signal.aborted || raw.watched.isClosed) break;
              const ok = await writeAll(
                raw.socket,
                chunk0(csid, { length: messageBytes, type: MessageType.Video, streamId: 1 }, piece),
              );
              if (!ok) break;
              bytes += piece.length;
            }
            return bytes;
          }),
        );
        const closed = await Promise.all(attackers.map((raw) => raw?.watched.closedWithin(3000) ?? true));
        for (const raw of attackers) raw?.socket.destroy();
        check(
          closed.every(Boolean),
          `the server kept ${closed.filter((c) => !c).length} of 3 attackers open after ` +
            `${sent.map((b) => (b / 2 ** 20).toFixed(0)).join('/')} MiB of unfinished messages each`,
        );
        check(!signal.aborted, 'the attack was stopped early because the server passed the RSS bound');
      },
      { minWindowMs: 3000 },
    ),
);

test(
  'rtsp and http: a request head trickled one byte every 2 s is closed by the head deadline',
  { skip, timeout: 60_000 },
  () =>
    underAttack(
      async ({ w, check }) => {
        const heads = {
          http: `GET /live/honest/index.m3u8 HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ${'a'.repeat(64)}\r\n\r\n`,
          rtsp: `OPTIONS rtsp://127.0.0.1:${w.rtsp}/live/honest RTSP/1.0\r\nCSeq: 1\r\nX-Slow: ${'a'.repeat(64)}\r\n\r\n`,
        };
        const limitMs = (REQUEST_HEAD_TIMEOUT_S + 2.5) * 1000;
        const results = await Promise.all(
          (['http', 'rtsp'] as const).map(async (proto) => {
            const socket = await tcpFrom(proto === 'http' ? w.http : w.rtsp, '127.0.0.12');
            const c = new Watched(socket);
            const text = heads[proto];
            const start = Date.now();
            for (let i = 0; i < text.length && !c.isClosed && Date.now() - start < limitMs + 3000; i++) {
              socket.write(text[i] ?? '');
              await Promise.race([c.closed, sleep(2000)]);
            }
            socket.destroy();
            return { proto, after: (c.closedAt ?? Infinity) - start };
          }),
        );
        for (const r of results) {
          check(
            r.after <= limitMs,
            `${r.proto}: trickled head still open after ${Number.isFinite(r.after) ? r.after : '>' + (limitMs + 3000)} ms (limit ${limitMs} ms)`,
          );
        }
      },
      { minWindowMs: 0 },
    ),
);

test(
  'rtmp: 1000 handshakes that never finish (batches of 125, under the per-IP cap) are closed by the deadline',
  { skip, timeout: 120_000 },
  () =>
    underAttack(async ({ w, check }) => {
      const limitMs = (HANDSHAKE_TIMEOUT_S + 2) * 1000;
      let stuck = 0;
      let tried = 0;
      for (let batch = 0; batch < 8 && stuck === 0; batch++) {
        const host = `127.0.0.${100 + batch}`;
        const sockets = await Promise.all(Array.from({ length: 125 }, () => tcpFrom(w.rtmp, host)));
        const watched = sockets.map((s) => new Watched(s));
        // C0 and a tenth of C1, then silence.
        for (const s of sockets) s.write(Buffer.concat([Buffer.of(3), Buffer.alloc(150)]));
        const closed = await Promise.all(watched.map((c) => c.closedWithin(limitMs)));
        stuck += closed.filter((c) => !c).length;
        tried += sockets.length;
        for (const s of sockets) s.destroy();
      }
      check(stuck === 0, `${stuck} of ${tried} unfinished handshakes were still open after ${limitMs} ms`);
    }),
);

test(
  'rtmp: Set Chunk Size 0x7fffffff, then a trickled 16 MiB (or 8 MiB, at the message limit) message, gets the connection closed',
  { skip, timeout: 60_000 },
  () =>
    underAttack(async ({ w, check }) => {
      // 16 MiB - 1 is the largest length the 24-bit field carries; 8 MiB is exactly
      // rtmp_max_message_bytes, so only the chunk-size limit can stop that one.
      const lengths = { '16 MiB': 0xffffff, '8 MiB': 8 * 1024 * 1024 };
      const results = await Promise.all(
        Object.entries(lengths).map(async ([label, length]) => {
          const raw = await rtmpHandshake(w.rtmp, '127.0.0.13');
          assert.ok(raw, 'handshake');
          await raw.connect('live');
          const start = Date.now();
          raw.socket.write(setChunkSize(0x7fffffff));
          raw.socket.write(chunk0(3, { length, type: MessageType.Video, streamId: 1 }, Buffer.alloc(0)));
          let sent = 0;
          const piece = Buffer.alloc(128 * 1024, 0x42);
          while (sent < length - piece.length && !raw.watched.isClosed && Date.now() - start < 6000) {
            if (!(await writeAll(raw.socket, piece))) break;
            sent += piece.length;
            await sleep(50);
          }
          const closed = await raw.watched.closedWithin(1000);
          raw.socket.destroy();
          return { label, closed, sent, after: (raw.watched.closedAt ?? Infinity) - start };
        }),
      );
      for (const r of results) {
        check(
          r.closed,
          `${r.label}: connection still open after ${(r.sent / 2 ** 20).toFixed(1)} MiB of the trickled message`,
        );
        check(
          r.after <= 3000,
          `${r.label}: closed only ${r.after} ms after announcing chunk size 0x7fffffff`,
        );
      }
    }),
);

test('rtmp: random bytes after a valid handshake close that connection only', { skip, timeout: 60_000 }, () =>
  underAttack(async ({ w, check }) => {
    const limitMs = (HANDSHAKE_TIMEOUT_S + 3) * 1000;
    const raws = await Promise.all(Array.from({ length: 20 }, () => rtmpHandshake(w.rtmp, '127.0.0.14')));
    for (const raw of raws) raw?.socket.write(randomFill(64 * 1024));
    const closed = await Promise.all(raws.map((raw) => raw?.watched.closedWithin(limitMs) ?? false));
    for (const raw of raws) raw?.socket.destroy();
    check(raws.every(Boolean), 'every handshake completed');
    check(closed.every(Boolean), `${closed.filter((c) => !c).length} of 20 garbage connections still open`);
    check(
      raws.every((r) => (r?.mediaBytes ?? 0) === 0),
      'a garbage connection received media',
    );
  }),
);

function randomFill(n: number): Buffer {
  const b = Buffer.alloc(n);
  for (let i = 0; i < n; i += 4) b.writeUInt32LE((Math.random() * 2 ** 32) >>> 0, i);
  return b;
}

/** AMF0 pieces written by hand: bombs must be malformed in ways no encoder produces. */
const amf = {
  string: (s: string): Buffer => {
    const b = Buffer.from(s);
    const h = Buffer.alloc(3);
    h.writeUInt8(0x02, 0);
    h.writeUInt16BE(b.length, 1);
    return Buffer.concat([h, b]);
  },
  number: (n: number): Buffer => {
    const b = Buffer.alloc(9);
    b.writeUInt8(0x00, 0);
    b.writeDoubleBE(n, 1);
    return b;
  },
  key: (k: string): Buffer => {
    const b = Buffer.from(k);
    const h = Buffer.alloc(2);
    h.writeUInt16BE(b.length, 0);
    return Buffer.concat([h, b]);
  },
  longStringHeader: (declared: number): Buffer => {
    const h = Buffer.alloc(5);
    h.writeUInt8(0x0c, 0);
    h.writeUInt32BE(declared, 1);
    return h;
  },
};

test(
  'rtmp: AMF bombs (100,000-deep nesting, a 4 GiB string header, a 4 MiB string, a 4-billion-item array)',
  { skip, timeout: 60_000 },
  () =>
    underAttack(async ({ w, check }) => {
      const head = Buffer.concat([amf.string('connect'), amf.number(1)]);
      const deep = Buffer.concat([
        head,
        Buffer.of(0x03),
        ...Array.from({ length: 100_000 }, () => Buffer.from([0, 1, 0x61, 0x03])),
      ]);
      const lie = Buffer.concat([
        head,
        Buffer.of(0x03),
        amf.key('app'),
        amf.longStringHeader(0xfffffff0),
        Buffer.alloc(64, 0x61),
      ]);
      const bigApp = Buffer.alloc(4 * 1024 * 1024, 0x61);
      const big = Buffer.concat([
        head,
        Buffer.of(0x03),
        amf.key('app'),
        amf.longStringHeader(bigApp.length),
        bigApp,
        Buffer.of(0, 0, 9),
      ]);
      const array = Buffer.concat([head, Buffer.of(0x0a, 0xff, 0xff, 0xff, 0xff), amf.number(1)]);
      const bombs = { deep, lie, big, array };
      const results = await Promise.all(
        Object.entries(bombs).map(async ([name, payload]) => {
          const raw = await rtmpHandshake(w.rtmp, '127.0.0.15');
          if (!raw) return { name, closed: false, answered: false, shook: false };
          raw.socket.write(setChunkSize(65536));
          raw.socket.write(
            encodeMessage(
              { csid: 3, type: MessageType.CommandAmf0, streamId: 0, timestamp: 0, payload },
              65536,
            ),
          );
          const closed = await raw.watched.closedWithin((HANDSHAKE_TIMEOUT_S + 3) * 1000);
          const answered = raw.messages.some((m) => m.type === MessageType.CommandAmf0);
          raw.socket.destroy();
          return { name, closed, answered, shook: true };
        }),
      );
      for (const r of results) {
        check(r.shook, `${r.name}: handshake failed`);
        if (r.name === 'big') {
          check(r.closed || r.answered, `${r.name}: neither answered nor closed`);
        } else {
          check(r.closed, `${r.name}: malformed connect left the connection open`);
        }
      }
    }),
);

test(
  'rtsp: interleaved frames with bogus lengths before any SETUP close that connection',
  { skip, timeout: 60_000 },
  () =>
    underAttack(async ({ w, check }) => {
      const limitMs = (HANDSHAKE_TIMEOUT_S + 3) * 1000;
      // A frame announcing 65535 bytes that never come.
      const short = await tcpFrom(w.rtsp, '127.0.0.16');
      const shortW = new Watched(short);
      short.write(Buffer.concat([Buffer.from([0x24, 0x00, 0xff, 0xff]), Buffer.alloc(10)]));
      // A stream of full 64 KiB frames on a channel nothing was set up for.
      const flood = await tcpFrom(w.rtsp, '127.0.0.16');
      const floodW = new Watched(flood);
      const frame = Buffer.concat([
        Buffer.from([0x24, 0x01, 0xff, 0xff]),
        randomFill(65536).subarray(0, 65535),
      ]);
      const start = Date.now();
      let sent = 0;
      while (!floodW.isClosed && Date.now() - start < 6000 && sent < 300) {
        if (!(await writeAll(flood, frame))) break;
        sent++;
        if (sent % 10 === 0) await sleep(100);
      }
      const floodClosed = await floodW.closedWithin(limitMs);
      const shortClosed = await shortW.closedWithin(Math.max(0, limitMs - (Date.now() - start)));
      short.destroy();
      flood.destroy();
      check(
        shortClosed,
        `a truncated interleaved frame before SETUP left the connection open after ${limitMs} ms`,
      );
      check(floodClosed, `${sent} interleaved 64 KiB frames before SETUP: connection still open`);
    }),
);

/** Opens `n` half-finished request heads (spread over 5 source addresses) and feeds each a header line a second. */
async function slowloris(
  port: number,
  firstLine: string,
  n: number,
): Promise<{ watched: Watched[]; stop: () => void }> {
  const sockets = await Promise.all(
    Array.from({ length: n }, (_, i) => tcpFrom(port, `127.0.0.${200 + (i % 5)}`)),
  );
  const watched = sockets.map((s) => new Watched(s));
  for (const s of sockets) s.write(`${firstLine}\r\nCSeq: 1\r\n`);
  const timer = setInterval(() => {
    for (const s of sockets) if (!s.destroyed) s.write('X-Slow: a\r\n');
  }, 1000);
  return {
    watched,
    stop: () => {
      clearInterval(timer);
      for (const s of sockets) s.destroy();
    },
  };
}

test(
  'http: 500 slowloris sockets are closed by the head deadline while an honest HLS request succeeds',
  { skip, timeout: 60_000 },
  () =>
    underAttack(async ({ w, check }) => {
      const attack = await slowloris(w.http, 'GET /live/honest/index.m3u8 HTTP/1.1\r\nHost: 127.0.0.1', 500);
      try {
        await sleep(1000);
        const honest = await httpGet(w.http, '/live/honest/index.m3u8', { ms: 5000 }).catch((e: Error) => e);
        check(
          !(honest instanceof Error) && honest.status === 200 && honest.body.toString().startsWith('#EXTM3U'),
          `honest HLS request during the attack: ${honest instanceof Error ? honest.message : honest.status}`,
        );
        const limitMs = (REQUEST_HEAD_TIMEOUT_S + 3) * 1000;
        const closed = await Promise.all(attack.watched.map((c) => c.closedWithin(limitMs - 1000)));
        check(
          closed.every(Boolean),
          `${closed.filter((c) => !c).length} of 500 slowloris sockets still open after ${limitMs} ms`,
        );
      } finally {
        attack.stop();
      }
    }),
);

test(
  'rtsp: 500 slowloris sockets are closed by the head deadline while an honest DESCRIBE succeeds',
  { skip, timeout: 60_000 },
  () =>
    underAttack(async ({ w, check }) => {
      const url = `rtsp://127.0.0.1:${w.rtsp}/live/honest`;
      const attack = await slowloris(w.rtsp, `OPTIONS ${url} RTSP/1.0`, 500);
      try {
        await sleep(1000);
        const socket = await tcpFrom(w.rtsp, '127.0.0.1');
        const c = new Watched(socket, true);
        const honest = await rtspAsk(c, [`DESCRIBE ${url} RTSP/1.0`, 'CSeq: 1', 'Accept: application/sdp']);
        socket.destroy();
        check(
          honest.status === 200 && honest.body.includes('m=video'),
          `honest DESCRIBE during the attack answered ${honest.status}`,
        );
        const limitMs = (REQUEST_HEAD_TIMEOUT_S + 3) * 1000;
        const closed = await Promise.all(attack.watched.map((x) => x.closedWithin(limitMs - 1000)));
        check(
          closed.every(Boolean),
          `${closed.filter((x) => !x).length} of 500 slowloris sockets still open after ${limitMs} ms`,
        );
      } finally {
        attack.stop();
      }
    }),
);

test(
  'http: path traversal on every route reveals nothing; bad percent-escapes answer 400',
  { skip, timeout: 60_000 },
  () =>
    underAttack(async ({ w, check }) => {
      const dots = ['..%2f', '%2e%2e%2f', '%2e%2e/', '..%5c', '..%252f', '....//', '..;/'];
      const targets = ['etc/passwd', 'package.json', 'history.db', 'streamgate.conf'];
      const prefixes = [
        '/',
        '/health/',
        '/metrics/',
        '/api/',
        '/api/streams/',
        '/api/sessions/',
        '/api/history/',
        '/admin/',
        '/static/',
        '/live/',
        '/live/honest/',
        '/paid/show/',
        '/paid/show/ks/',
      ];
      const suffixes = ['', '/index.m3u8', '/mpegts', '.ts'];
      const paths: string[] = [];
      for (const p of prefixes) {
        for (const d of dots) {
          for (const t of targets) paths.push(`${p}${d.repeat(6)}${t}`);
        }
        for (const s of suffixes) paths.push(`${p}${'..%2f'.repeat(6)}etc%2fpasswd${s}`);
      }
      paths.push('/../../../../etc/passwd', '/live/honest/index.m3u8/../../../../../etc/passwd');
      paths.push('/live/hon%00est/index.m3u8', '/%00/etc/passwd', '/live/honest/%00.ts');
      const secrets = [/root:x?:0:0/, /"name":\s*"streamgate"/, /SQLite format 3/, /trusted_proxies/];
      let leaks = 0;
      const bad: string[] = [];
      for (let i = 0; i < paths.length; i += 16) {
        await Promise.all(
          paths.slice(i, i + 16).map(async (p) => {
            const r = await rawExchange(
              w.http,
              `GET ${p} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n`,
              {
                localAddress: '127.0.0.17',
                ms: 3000,
              },
            );
            const status = statusOf(r.text);
            const body = r.text.slice(r.text.indexOf('\r\n\r\n') + 4);
            if (secrets.some((s) => s.test(body)) || looksLikeTs(Buffer.from(body, 'latin1'))) {
              leaks++;
              bad.push(`${p} → leaked (${status})`);
            } else if (status < 400 || status >= 500) {
              bad.push(`${p} → ${status}`);
            }
          }),
        );
      }
      check(leaks === 0, `${leaks} traversal requests leaked a file or media`);
      check(
        bad.length === 0,
        `traversal answers that are not a 4xx refusal:\n  ${bad.slice(0, 15).join('\n  ')}`,
      );
      const escapes = [
        '/live/%zz/index.m3u8',
        '/live/honest%/mpegts',
        '/api/streams/%',
        '/api/streams/%E0%A4%A',
        '/api/sessions/%ff%fe',
        '/live/%C0%AE%C0%AE/index.m3u8',
        '/admin/%',
      ];
      const wrong: string[] = [];
      for (const p of escapes) {
        const r = await rawExchange(
          w.http,
          `GET ${p} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n`,
          {
            localAddress: '127.0.0.17',
          },
        );
        if (statusOf(r.text) !== 400) wrong.push(`${p} → ${statusOf(r.text)}`);
      }
      check(wrong.length === 0, `bad escapes not answered 400: ${wrong.join(', ')}`);
    }),
);

test(
  'config: a file:// input outside file_root is refused (one inside it plays)',
  { skip, timeout: 90_000 },
  () =>
    underAttack(async ({ w, check }) => {
      const base = join(w.server.dir, 'files');
      const root = join(base, 'root');
      const outside = join(base, 'outside');
      mkdirSync(root, { recursive: true });
      mkdirSync(outside, { recursive: true });
      // prettier-ignore
      const clip = ['-hide_banner', '-loglevel', 'error', '-f', 'lavfi', '-i', 'testsrc2=size=160x120:rate=25',
        '-t', '2', '-c:v', 'libx264', '-preset', 'ultrafast', '-g', '25', '-f', 'mpegts'];
      for (const dir of [root, outside]) {
        const r = spawnSync('ffmpeg', [...clip, join(dir, 'clip.ts')], { stdio: 'ignore', timeout: 30_000 });
        assert.equal(r.status, 0, 'ffmpeg wrote the clip');
      }
      const body = `
        file_root ${root};
        stream inside { input file://${join(root, 'clip.ts')}; }
        stream evil { input file://${join(outside, 'clip.ts')}; }
        stream evil2 { input file://${root}/../outside/clip.ts; }
        stream evil3 { input file:///etc/passwd; }
      `;
      let other: RunningStreamgate | undefined;
      try {
        other = await startStreamgate(body, { env: { LOG_LEVEL: 'info' } });
      } catch (err) {
        const message = err instanceof Error ? err.message : String(err);
        const forTheRightReason =
          /file_root|outside/i.test(message) && !/unknown directive|not allowed/.test(message);
        check(
          forTheRightReason,
          `the config was refused, but not for a file outside file_root:\n${message.slice(0, 800)}`,
        );
        return;
      }
      try {
        const port = other.ports['http'] ?? 0;
        const read = async (name: string): Promise<number> => {
          const r = await httpGet(port, `/${name}/mpegts`, { ms: 8000, maxBytes: 64 * 1024 }).catch(
            () => undefined,
          );
          return r && r.status === 200 && looksLikeTs(r.body) ? r.body.length : 0;
        };
        await sleep(2000);
        const [inside, evil, evil2] = await Promise.all([read('inside'), read('evil'), read('evil2')]);
        assert.ok(inside > 0, 'control: the clip inside file_root plays, so the reader can see media');
        check(evil === 0, `a file:// input outside file_root (absolute path) served ${evil} media bytes`);
        check(evil2 === 0, `a file:// input escaping file_root with .. served ${evil2} media bytes`);
      } finally {
        await other.stop();
      }
    }),
);

test(
  'http: X-Forwarded-For is believed only from trusted_proxies, rightmost untrusted entry first',
  { skip, timeout: 60_000 },
  () =>
    underAttack(async ({ w, check }) => {
      const cases = [
        { from: '127.0.0.5', xff: '6.6.6.6', want: '127.0.0.5', why: 'untrusted peer: header ignored' },
        {
          from: '127.0.0.5',
          xff: '',
          realIp: '6.6.6.6',
          want: '127.0.0.5',
          why: 'untrusted peer: X-Real-IP ignored',
        },
        {
          from: '127.0.0.1',
          xff: '6.6.6.6, 127.0.0.7',
          want: '127.0.0.7',
          why: 'one trusted proxy appended the client',
        },
        {
          from: '127.0.0.8',
          xff: '6.6.6.6, 9.9.9.9, 127.0.0.1',
          want: '9.9.9.9',
          why: 'two trusted proxies: skip them from the right',
        },
      ];
      for (const [i, c] of cases.entries()) {
        const token = `good-xff-${i}-${Date.now()}`;
        const headers: Record<string, string> = {};
        if (c.xff) headers['X-Forwarded-For'] = c.xff;
        if (c.realIp) headers['X-Real-IP'] = c.realIp;
        const r = await httpGet(w.http, `/paid/show/index.m3u8?token=${token}`, {
          localAddress: c.from,
          headers,
        });
        const seen = backend.calls.find((q) => q.get('token') === token)?.get('ip');
        check(r.status === 200 || r.status === 404, `${c.why}: play answered ${r.status}`);
        check(seen === c.want, `${c.why}: backend saw ip=${seen}, want ${c.want}`);
      }
    }),
);

test(
  'http: 10,000 bad tokens from one address: backend calls and log lines bounded, 429 rate_limited',
  { skip, timeout: 120_000 },
  () =>
    underAttack(async ({ w, check }) => {
      const agent = new Agent({ keepAlive: true, maxSockets: 48 });
      const callsBefore = backend.calls.length;
      const logsBefore = w.server.logs.length;
      const statuses = new Map<number, number>();
      let rateLimitedBody = 0;
      let total = 0;
      const start = Date.now();
      const one = (i: number): Promise<void> =>
        new Promise((resolve) => {
          const req = httpRequest(
            {
              host: '127.0.0.1',
              port: w.http,
              path: `/paid/show/index.m3u8?token=bad-flood-${i}`,
              localAddress: '127.0.0.18',
              agent,
            },
            (res) => {
              let body = '';
              res.on('data', (d: Buffer) => (body += d.toString()));
              res.on('end', () => {
                statuses.set(res.statusCode ?? 0, (statuses.get(res.statusCode ?? 0) ?? 0) + 1);
                if (res.statusCode === 429 && body.includes('rate_limited')) rateLimitedBody++;
                resolve();
              });
              res.on('error', () => resolve());
            },
          );
          req.on('error', () => {
            statuses.set(0, (statuses.get(0) ?? 0) + 1);
            resolve();
          });
          req.end();
        });
      let next = 0;
      await Promise.all(
        Array.from({ length: 48 }, async () => {
          while (next < 10_000) {
            await one(next++);
            total++;
          }
        }),
      );
      const elapsedS = (Date.now() - start) / 1000;
      agent.destroy();
      await sleep(1500); // let any aggregated log line of the flood come out
      const calls = backend.calls
        .slice(callsBefore)
        .filter((q) => q.get('token')?.startsWith('bad-flood-')).length;
      const logLines = w.server.logs.length - logsBefore;
      const allowedCalls = NEW_SESSIONS_BURST + NEW_SESSIONS_PER_SECOND * elapsedS + 10;
      const summary = [...statuses].map(([s, n]) => `${s}×${n}`).join(' ');
      check(total === 10_000, `sent ${total} requests`);
      check(!statuses.has(200), `a bad token got 200 (${summary})`);
      check(
        calls <= allowedCalls,
        `${calls} backend calls in ${elapsedS.toFixed(1)} s (bound ${allowedCalls.toFixed(0)}: burst ${NEW_SESSIONS_BURST} + ${NEW_SESSIONS_PER_SECOND}/s)`,
      );
      check((statuses.get(429) ?? 0) > 0, `no 429 among the answers (${summary})`);
      check(rateLimitedBody === (statuses.get(429) ?? 0), `429 answers without 'rate_limited': ${summary}`);
      check(
        logLines <= FLOOD_LOG_LINES,
        `the flood produced ${logLines} log lines (bound ${FLOOD_LOG_LINES})`,
      );
    }),
);

test(
  'auth backend that hangs, answers 10 MB, trickles, sends garbage headers or hangs up: bounded, fail closed',
  { skip, timeout: 60_000 },
  () =>
    underAttack(async ({ w, check }) => {
      const stamp = Date.now();
      const refused = ['hang', 'huge', 'trickle', 'cut'];
      const results = await Promise.all(
        refused.map(async (mode) => {
          const t0 = Date.now();
          const r = await httpGet(w.http, `/paid/show/mpegts?token=${mode}-${stamp}`, {
            localAddress: '127.0.0.19',
            ms: 10_000,
            maxBytes: 64 * 1024,
          }).catch((e: Error) => e);
          return { mode, r, ms: Date.now() - t0 };
        }),
      );
      for (const { mode, r, ms } of results) {
        if (r instanceof Error) {
          check(false, `${mode}: no answer (${r.message})`);
          continue;
        }
        check(r.status === 403, `${mode}: answered ${r.status}, want 403 (backend unusable → refuse)`);
        check(!looksLikeTs(r.body), `${mode}: media bytes went to a client the backend never allowed`);
        check(ms <= 3500, `${mode}: answered after ${ms} ms (backend timeout 1 s)`);
      }
      // Garbage in an allow: the allow stands, the garbage falls back to defaults (no limit, default duration).
      const garbage = ['maxabc', 'durneg', 'durhuge'].map((mode) => ({
        mode,
        token: `${mode}-${stamp}`,
        viewer: new HttpViewer(w.http, `/paid/show/mpegts?token=${mode}-${stamp}`, '127.0.0.19'),
      }));
      await sleep(4000);
      for (const g of garbage) {
        g.viewer.stop();
        const calls = backend.calls.filter((q) => q.get('token') === g.token).length;
        check(
          g.viewer.status === 200 && g.viewer.bytes > 10_000,
          `${g.mode}: allowed viewer got ${g.viewer.status}, ${g.viewer.bytes} bytes`,
        );
        check(
          calls <= 2,
          `${g.mode}: ${calls} backend calls in 4 s (a garbage X-AuthDuration must not cause a re-check storm)`,
        );
      }
    }),
);

test(
  'a 200,000-character stream name on RTMP publish, HLS play, HTTP-TS publish and RTSP is refused; no stream is created',
  { skip, timeout: 60_000 },
  () =>
    underAttack(async ({ w, check }) => {
      const long = 'x'.repeat(200_000);
      const raw = await rtmpHandshake(w.rtmp, '127.0.0.25');
      assert.ok(raw, 'handshake');
      const connected = await raw.connect('live');
      check(connected === '_result', `connect answered ${connected}`);
      raw.socket.write(command(3, 0, 128, 'createStream', 2, null));
      await sleep(500);
      raw.socket.write(command(8, 1, 128, 'publish', 3, null, long, 'live'));
      await raw.watched.closedWithin(3000);
      const statuses = raw.messages
        .filter((m) => m.type === MessageType.CommandAmf0)
        .map((m) => decodeCommand(m))
        .filter((c) => c.name === 'onStatus')
        .map((c) => (c.args[1] as { code: string }).code);
      raw.socket.destroy();
      check(
        !statuses.includes('NetStream.Publish.Start'),
        `RTMP publish of a 200,000-character name: ${statuses.join(', ')}`,
      );
      const hls = await rawExchange(w.http, `GET /live/${long}/index.m3u8 HTTP/1.1\r\nHost: x\r\n\r\n`, {
        localAddress: '127.0.0.25',
      });
      check(statusOf(hls.text) >= 400 && statusOf(hls.text) < 500, `HLS play answered ${statusOf(hls.text)}`);
      const put = await rawExchange(
        w.http,
        `PUT /live/${long}/mpegts HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n`,
        { localAddress: '127.0.0.25' },
      );
      check(
        statusOf(put.text) >= 400 && statusOf(put.text) < 500,
        `HTTP-TS publish answered ${statusOf(put.text)}`,
      );
      const rtsp = await rawExchange(
        w.rtsp,
        `DESCRIBE rtsp://127.0.0.1:${w.rtsp}/live/${long} RTSP/1.0\r\nCSeq: 1\r\n\r\n`,
        { localAddress: '127.0.0.25' },
      );
      check(
        statusOf(rtsp.text) >= 400 && statusOf(rtsp.text) < 500,
        `RTSP DESCRIBE answered ${statusOf(rtsp.text)}`,
      );
      const streams = await httpGet(w.http, '/api/streams');
      const names = (JSON.parse(streams.body.toString()) as { streams: { name: string }[] }).streams.map(
        (s) => s.name,
      );
      check(
        names.every((n) => n.length < 1000),
        `a stream with a ${Math.max(...names.map((n) => n.length))}-character name exists`,
      );
    }),
);

test(
  'connection caps: one address gets at most max_connections_per_ip on RTMP, RTSP and HTTP; others still connect',
  { skip, timeout: 60_000 },
  () =>
    underAttack(async ({ w, check }) => {
      const extra = 30;
      const listeners = [
        { name: 'rtmp', port: w.rtmp, host: '127.0.0.26' },
        { name: 'rtsp', port: w.rtsp, host: '127.0.0.27' },
        { name: 'http', port: w.http, host: '127.0.0.28' },
      ];
      const opened = await Promise.all(
        listeners.map(async (l) => {
          const sockets = await Promise.all(
            Array.from({ length: MAX_CONNECTIONS_PER_IP + extra }, () => tcpFrom(l.port, l.host)),
          );
          return { ...l, sockets, watched: sockets.map((s) => new Watched(s)) };
        }),
      );
      // Before the handshake deadline: only refusals at accept have closed anything yet.
      await sleep(1000);
      const fresh = await rtmpHandshake(w.rtmp, '127.0.0.29', 3000);
      check(fresh !== undefined, 'an RTMP client from another address could not connect during the flood');
      fresh?.socket.destroy();
      for (const o of opened) {
        const open = o.watched.filter((x) => !x.isClosed).length;
        check(
          open <= MAX_CONNECTIONS_PER_IP,
          `${o.name}: ${open} of ${o.sockets.length} connections from one address still open (cap ${MAX_CONNECTIONS_PER_IP})`,
        );
        for (const s of o.sockets) s.destroy();
      }
    }),
);
