/**
 * RtmpConn in process: the real adapter on a loopback port, the real session manager and
 * stream registry built from a config text, and RtmpTestClient on the other end. Media comes
 * from synthetic H.264/AAC frames pushed into a stream's bus; no ffmpeg.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { parseConfig } from '../../../../src/config/parse.js';
import type { Config } from '../../../../src/config/types.js';
import {
  audioSequenceHeader,
  audioTagBody,
  flvTimestamp,
  videoSequenceHeader,
  videoTagBody,
} from '../../../../src/media/flv.js';
import type { Frame, Tracks } from '../../../../src/media/types.js';
import { createSessionCore, type SessionCore } from '../../../../src/sessions/index.js';
import { StreamRegistry } from '../../../../src/streams/registry.js';
import type { Stream } from '../../../../src/streams/stream.js';
import type { ProtocolAdapter } from '../../../../src/adapter.js';
import { createRtmpAdapter } from '../../../../protocols/rtmp/index.js';
import { RtmpEgress } from '../../../../protocols/rtmp/egress.js';
import { encodeMessage } from '../../../../protocols/rtmp/wire/chunk-writer.js';
import { MessageType } from '../../../../protocols/rtmp/wire/messages.js';
import { connect } from 'node:net';
import { once } from 'node:events';
import { limitHits, type LimitName, type Limits } from '../../../../src/core/limits.js';
import { setChunkSize } from '../../../../protocols/rtmp/wire/messages.js';
import { startBackend, type TestBackend } from '../../../helpers/backend.js';
import { captureLog } from '../../sessions/helpers.js';
import { TRACKS, media } from '../hls/synthetic.js';
import { RtmpTestClient } from './client.js';

let backend: TestBackend;
let config: Config;
let registry: StreamRegistry;
let sessionCore: SessionCore;
let adapter: ProtocolAdapter;
let port: number;
let lines: string[];

before(async () => {
  // The HTTP backend answers after 300 ms: long enough for a client to leave while it decides.
  backend = await startBackend(() => ({ status: 200, delayMs: 300 }));
  const parsed = parseConfig(
    `history sqlite://:memory:;
     auth_backend gate { deny token bad; allow default; }
     template live { prefix live; input publish://; on_play auth://gate; on_publish auth://gate; }
     template slow { prefix slow; input publish://; on_play ${backend.url}; }`,
    'rtmp-conn.test.conf',
  );
  if ('errors' in parsed) throw new Error(JSON.stringify(parsed.errors));
  config = parsed.config;
  const captured = captureLog();
  lines = captured.lines;
  const log = captured.log;
  registry = new StreamRegistry(config, { log, ffmpeg: 'ffmpeg' });
  sessionCore = await createSessionCore({ config, log, policy: (name) => registry.configFor(name) });
  adapter = createRtmpAdapter(
    { host: '127.0.0.1', port: 0 },
    { registry, sessions: sessionCore.manager, log, config: () => config },
  );
  registry.start();
  await adapter.start();
  port = adapter.address()?.port ?? 0;
});

after(async () => {
  await adapter.stop();
  sessionCore.closeAll('server_shutdown');
  await registry.stop();
  sessionCore.close();
  await backend.close();
});

/** A stream with a publisher that has sent one second (one GOP) of synthetic media. */
function fedStream(name: string): { stream: Stream; push: (frames: Frame[]) => void } {
  const stream = registry.resolve(name);
  const publisher = stream?.claimPublisher();
  assert.ok(stream && publisher);
  const push = (frames: Frame[]): void => frames.forEach((f) => publisher.source.frame(f));
  publisher.source.tracks(TRACKS);
  push(media(1));
  return { stream, push };
}

/** The next second of synthetic media, starting with a keyframe. */
const nextSecond = (second: number): Frame[] => media(1, { startDts: second * 90000 });

/** Publishes `tracks` and `frames` as FLV tag bodies, the way an encoder does. */
function sendFlv(client: RtmpTestClient, tracks: Tracks, frames: Frame[]): void {
  assert.ok(tracks.video && tracks.audio);
  client.sendMedia(MessageType.Video, 0, videoSequenceHeader(tracks.video));
  client.sendMedia(MessageType.Audio, 0, audioSequenceHeader(tracks.audio));
  for (const f of frames) {
    const body = f.kind === 'video' ? videoTagBody(f) : audioTagBody(f, tracks.audio);
    client.sendMedia(f.kind === 'video' ? MessageType.Video : MessageType.Audio, flvTimestamp(f.dts), body);
  }
}

function events(event: string): Record<string, unknown>[] {
  return lines
    .map((l) => JSON.parse(l) as Record<string, unknown>)
    .filter((e) => e['event'] === event || e['msg'] === event);
}

async function eventually(condition: () => boolean, what: string, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

const codes = (client: RtmpTestClient): string[][] => client.statuses().map((s) => [s.level, s.code]);
const rtmpSessions = (name: string) => sessionCore.manager.list({ name, proto: 'rtmp' });

test('rtmp conn: an allowed play gets Play.Start, then the codec headers, the GOP and live frames', async () => {
  const { push } = fedStream('live/play');
  const client = await RtmpTestClient.open(port, 'live');
  await client.start('play', 'play');
  await client.until(() => client.media().length >= 3, 'first media');
  assert.deepEqual(codes(client), [
    ['status', 'NetStream.Play.Reset'],
    ['status', 'NetStream.Play.Start'],
  ]);
  const start = client.messages.findIndex((m) => m.type === MessageType.CommandAmf0 && m.streamId === 1);
  const firstMedia = client.messages.findIndex(
    (m) => m.type === MessageType.DataAmf0 || m.type === MessageType.Video,
  );
  assert.ok(start >= 0 && start < firstMedia, 'the statuses come before any media byte');
  const [sequenceHeader, firstFrame] = client.media().filter((m) => m.type === MessageType.Video);
  assert.equal(sequenceHeader?.payload.subarray(0, 2).toString('hex'), '1700', 'AVC sequence header first');
  assert.equal(firstFrame?.payload.subarray(0, 2).toString('hex'), '1701', 'then the GOP from its keyframe');

  const [session] = rtmpSessions('live/play');
  assert.equal(session?.kind, 'play');
  assert.equal(session?.ip, '127.0.0.1');
  await eventually(() => (session?.bytes ?? 0) > 0, 'bytes counted');

  const seen = client.media().length;
  push(nextSecond(1));
  await client.until(() => client.media().length >= seen + 25, 'live frames');
  client.close();
  await eventually(() => rtmpSessions('live/play').length === 0, 'session closed');
  assert.equal(events('session_close').at(-1)?.['reason'], 'client_closed');
});

test('rtmp conn: a denied play gets Play.Failed, not one media byte, and the server closes', async () => {
  fedStream('live/denied');
  const client = await RtmpTestClient.open(port, 'live');
  await client.start('play', 'denied?token=bad');
  await client.until(() => client.closed, 'close by the server');
  assert.deepEqual(codes(client), [['error', 'NetStream.Play.Failed']]);
  assert.deepEqual(
    client.messages.filter((m) => m.streamId === 1 && m.type !== MessageType.CommandAmf0),
    [],
    'no metadata, audio or video',
  );
  assert.deepEqual(rtmpSessions('live/denied'), []);
});

test('rtmp conn: a denied publish gets Publish.BadName and nothing reaches the stream', async () => {
  const stream = registry.resolve('live/guarded');
  assert.ok(stream);
  const reached: unknown[] = [];
  const unsubscribe = stream.bus.subscribe({
    onTracks: (t) => reached.push(t),
    onFrame: (f) => reached.push(f),
    backlog: () => 0,
  });
  const client = await RtmpTestClient.open(port, 'live');
  await client.start('publish', 'guarded?token=bad');
  // An encoder that does not wait for the answer: its media is on the wire before the refusal.
  sendFlv(client, TRACKS, media(1));
  await client.until(() => client.closed, 'close by the server');
  unsubscribe();
  assert.deepEqual(codes(client), [['error', 'NetStream.Publish.BadName']]);
  assert.deepEqual(reached, []);
  assert.equal(stream.bus.framesIn, 0);
  assert.equal(stream.hasPublisher, false);
});

test('rtmp conn: an allowed publish reaches a player through the stream; a second publisher is refused', async () => {
  const publisher = await RtmpTestClient.open(port, 'live');
  await publisher.start('publish', 'onair');
  await publisher.until(() => publisher.statuses().length > 0, 'Publish.Start');
  assert.deepEqual(codes(publisher), [['status', 'NetStream.Publish.Start']]);
  const stream = registry.resolve('live/onair');
  assert.equal(stream?.hasPublisher, true);

  const player = await RtmpTestClient.open(port, 'live');
  await player.start('play', 'onair');
  await player.until(() => player.statuses().length === 2, 'Play.Start');
  sendFlv(publisher, TRACKS, media(1));
  await player.until(() => player.media().filter((m) => m.type === MessageType.Video).length >= 20, 'video');
  assert.ok((stream?.bus.framesIn ?? 0) >= 25);
  assert.ok((rtmpSessions('live/onair').find((s) => s.kind === 'publish')?.bytes ?? 0) > 0);

  const second = await RtmpTestClient.open(port, 'live');
  await second.start('publish', 'onair');
  await second.until(() => second.closed, 'refusal');
  assert.deepEqual(second.statuses(), [
    { level: 'error', code: 'NetStream.Publish.BadName', description: 'stream is already being published' },
  ]);
  assert.equal(events('session_close').at(-1)?.['reason'], 'refused');

  publisher.close();
  await eventually(() => stream?.hasPublisher === false, 'publisher slot released');
  player.close();
});

test('rtmp conn: a kick through the session manager closes a playing socket', async () => {
  const { stream } = fedStream('live/kicked');
  const client = await RtmpTestClient.open(port, 'live');
  await client.start('play', 'kicked');
  await client.until(() => client.media().length > 0, 'media');
  const [session] = rtmpSessions('live/kicked');
  assert.ok(session);
  assert.equal(sessionCore.manager.kick(session.id), true);
  await client.until(() => client.closed, 'close after the kick');
  assert.deepEqual(codes(client), [
    ['status', 'NetStream.Play.Reset'],
    ['status', 'NetStream.Play.Start'],
  ]);
  assert.equal(stream.bus.egress('rtmp', (bus) => new RtmpEgress(bus)).viewers, 0, 'unsubscribed');
  assert.ok(events('session ended by the server').some((e) => e['reason'] === 'kicked'));
});

test('rtmp conn: a malformed command closes that client only', async () => {
  const { push } = fedStream('live/shared');
  const viewer = await RtmpTestClient.open(port, 'live');
  await viewer.start('play', 'shared');
  await viewer.until(() => viewer.media().length > 0, 'media');

  const broken = await RtmpTestClient.open(port, 'live');
  broken.send(
    encodeMessage(
      {
        csid: 3,
        type: MessageType.CommandAmf0,
        streamId: 0,
        timestamp: 0,
        payload: Buffer.from('02ffff', 'hex'),
      },
      128,
    ),
  );
  await broken.until(() => broken.closed, 'close of the broken client');
  assert.ok(events('protocol_error').length > 0, 'logged as a protocol error');

  const seen = viewer.media().length;
  push(nextSecond(1));
  await viewer.until(() => viewer.media().length >= seen + 25, 'the other client still plays');
  assert.equal(viewer.closed, false);
  assert.equal(rtmpSessions('live/shared').length, 1);
  viewer.close();
});

test('rtmp conn: a client that leaves while the manager decides has the late grant closed at once', async () => {
  const client = await RtmpTestClient.open(port, 'slow');
  await client.start('play', 'cam1?token=late');
  await eventually(() => backend.callsFor('late').length === 1, 'the backend asked');
  client.close();
  await eventually(
    () => events('session_close').some((e) => e['name'] === 'slow/cam1'),
    'the late session closed',
  );
  const closed = events('session_close').find((e) => e['name'] === 'slow/cam1');
  assert.equal(closed?.['reason'], 'client_closed');
  assert.deepEqual(rtmpSessions('slow/cam1'), []);
  const stream = registry.resolve('slow/cam1');
  assert.equal(stream?.bus.egress('rtmp', (bus) => new RtmpEgress(bus)).viewers, 0, 'never subscribed');
});

test('rtmp conn: a session manager that throws refuses with "internal error" and the adapter carries on', async () => {
  const { log } = captureLog();
  let asked = 0;
  const failing = createRtmpAdapter(
    { host: '127.0.0.1', port: 0 },
    {
      registry,
      sessions: {
        open: () => {
          asked++;
          return Promise.reject(new Error('store unreachable'));
        },
        list: () => [],
      },
      log,
      config: () => config,
    },
  );
  await failing.start();
  try {
    const failingPort = failing.address()?.port ?? 0;
    for (const kind of ['play', 'publish'] as const) {
      const client = await RtmpTestClient.open(failingPort, 'live');
      await client.start(kind, 'cam1');
      await client.until(() => client.closed, 'close by the server');
      assert.deepEqual(
        client.statuses().map((s) => s.description),
        ['internal error'],
      );
    }
    assert.equal(asked, 2);
  } finally {
    await failing.stop();
  }
});

// ---- limits ---------------------------------------------------------------------------

/** The real adapter on another port, with some limits lowered so that tests hit them quickly. */
async function limitedAdapter(over: Partial<Limits>): Promise<{ port: number; stop: () => Promise<void> }> {
  const limited: Config = { ...config, limits: { ...config.limits, ...over } };
  const a = createRtmpAdapter(
    { host: '127.0.0.1', port: 0 },
    { registry, sessions: sessionCore.manager, log: captureLog().log, config: () => limited },
  );
  await a.start();
  return { port: a.address()?.port ?? 0, stop: () => a.stop() };
}

const hits = (limit: LimitName): number => limitHits().get(limit) ?? 0;

test('rtmp conn: handshake_timeout is a deadline from accept — a client trickling its handshake is closed', async () => {
  const server = await limitedAdapter({ handshake_timeout: 0.4 });
  const before = hits('handshake_timeout');
  const socket = connect(server.port, '127.0.0.1');
  socket.on('error', () => undefined);
  try {
    await once(socket, 'connect');
    const opened = Date.now();
    let closedAt = 0;
    socket.on('close', () => (closedAt = Date.now()));
    // C0 and then one byte of C1 every 50 ms: never silent, never done.
    socket.write(Buffer.of(3));
    for (let i = 0; i < 30 && closedAt === 0; i++) {
      await new Promise((r) => setTimeout(r, 50));
      if (!socket.destroyed) socket.write(Buffer.of(0x11));
    }
    await eventually(() => closedAt > 0, 'the server to close the trickling client');
    const after = closedAt - opened;
    assert.ok(after >= 300 && after < 1200, `closed after ${after} ms`);
    assert.equal(hits('handshake_timeout'), before + 1);
  } finally {
    socket.destroy();
    await server.stop();
  }
});

test('rtmp conn: handshake_timeout ends at play — a player that got there in time is not closed after it', async () => {
  const server = await limitedAdapter({ handshake_timeout: 0.4 });
  const { push } = fedStream('live/intime');
  const client = await RtmpTestClient.open(server.port, 'live');
  try {
    await client.start('play', 'intime');
    await client.until(() => client.statuses().length === 2, 'Play.Start');
    await new Promise((r) => setTimeout(r, 700));
    assert.equal(client.closed, false);
    const seen = client.media().length;
    push(nextSecond(1));
    await client.until(() => client.media().length > seen, 'live frames after the deadline');
  } finally {
    client.close();
    await server.stop();
  }
});

test('rtmp conn: handshake_timeout — a client that connects but never plays is closed at the deadline', async () => {
  const server = await limitedAdapter({ handshake_timeout: 0.4 });
  const client = await RtmpTestClient.open(server.port, 'live');
  try {
    await client.until(() => client.closed, 'close at the deadline', 2000);
  } finally {
    client.close();
    await server.stop();
  }
});

test('rtmp conn: rtmp_max_chunk_size — a Set Chunk Size over it closes that client, counted and logged', async () => {
  const server = await limitedAdapter({ rtmp_max_chunk_size: 64 * 1024 });
  const before = hits('rtmp_max_chunk_size');
  const ok = await RtmpTestClient.open(server.port, 'live');
  const bad = await RtmpTestClient.open(server.port, 'live');
  try {
    ok.send(setChunkSize(64 * 1024));
    bad.send(setChunkSize(64 * 1024 + 1));
    await bad.until(() => bad.closed, 'the server to close the client');
    assert.equal(hits('rtmp_max_chunk_size'), before + 1);
    await ok.start('publish', 'chunky');
    await ok.until(() => ok.statuses().length > 0, 'Publish.Start for the honest client');
    assert.equal(ok.closed, false);
  } finally {
    ok.close();
    bad.close();
    await server.stop();
  }
});

test('rtmp conn: rtmp_max_message_bytes — a publisher announcing more is closed and its session ends as limit_exceeded', async () => {
  const server = await limitedAdapter({ rtmp_max_message_bytes: 256 * 1024 });
  const before = hits('rtmp_max_message_bytes');
  const publisher = await RtmpTestClient.open(server.port, 'live');
  try {
    await publisher.start('publish', 'bigframe');
    await publisher.until(() => publisher.statuses().length > 0, 'Publish.Start');
    const header = Buffer.alloc(12);
    header[0] = 6; // fmt 0, csid 6
    header.writeUIntBE(256 * 1024 + 1, 4, 3);
    header[7] = MessageType.Video;
    header.writeUInt32LE(1, 8);
    publisher.send(header);
    await publisher.until(() => publisher.closed, 'the server to close the publisher');
    assert.equal(hits('rtmp_max_message_bytes'), before + 1);
    await eventually(
      () => events('session_close').some((e) => e['name'] === 'live/bigframe'),
      'the publish session closed',
    );
    const closed = events('session_close').find((e) => e['name'] === 'live/bigframe');
    assert.equal(closed?.['reason'], 'limit_exceeded');
    assert.equal(registry.resolve('live/bigframe')?.hasPublisher, false, 'the slot is free again');
  } finally {
    publisher.close();
    await server.stop();
  }
});

test('rtmp conn: a limit hit is logged once with its name and what the client did', async () => {
  const captured = captureLog();
  const limited: Config = { ...config, limits: { ...config.limits, rtmp_max_chunk_streams: 4 } };
  const a = createRtmpAdapter(
    { host: '127.0.0.1', port: 0 },
    { registry, sessions: sessionCore.manager, log: captured.log, config: () => limited },
  );
  await a.start();
  const client = await RtmpTestClient.open(a.address()?.port ?? 0, 'live');
  try {
    for (let csid = 10; csid < 20; csid++) {
      client.send(
        encodeMessage(
          { csid, type: MessageType.Audio, streamId: 1, timestamp: 0, payload: Buffer.alloc(1) },
          128,
        ),
      );
    }
    await client.until(() => client.closed, 'the server to close the client');
    const logged = captured.lines
      .map((l) => JSON.parse(l) as Record<string, unknown>)
      .filter((e) => e['event'] === 'limit_exceeded');
    assert.equal(logged.length, 1);
    assert.equal(logged[0]?.['limit'], 'rtmp_max_chunk_streams');
    assert.match(String(logged[0]?.['err']), /chunk stream \d+ is one more than the 4 allowed/);
  } finally {
    client.close();
    await a.stop();
  }
});
