/**
 * The relay between workers: its wire format (round trip, malformed input), and an owner and
 * a puller in one process over loopback: the puller's viewers get the tracks, the cached GOP
 * and live frames; the publisher leaving ends the relay; without the secret nothing flows.
 */
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { once } from 'node:events';
import { randomBytes } from 'node:crypto';
import { test } from 'node:test';
import { parseConfig } from '../../../src/config/parse.js';
import type { Frame, Tracks } from '../../../src/media/types.js';
import { StreamRegistry } from '../../../src/streams/registry.js';
import type { Stream } from '../../../src/streams/stream.js';
import { pullRelay, RelayServer } from '../../../src/cluster/relay.js';
import {
  encodeFrameHead,
  encodeSubscribe,
  encodeTracks,
  RelayReader,
  RelayWireError,
} from '../../../src/cluster/relay-wire.js';
import { captureLog } from '../sessions/helpers.js';

const tracks: Tracks = {
  video: { kind: 'video', codec: 'h264', config: Buffer.from([1, 0x64, 0, 0x1f]), width: 320, height: 240 },
  audio: { kind: 'audio', codec: 'aac', config: Buffer.from([0x12, 0x10]), sampleRate: 44100, channels: 2 },
};
const frame = (kind: 'video' | 'audio', dts: number, keyframe: boolean, size = 8): Frame => ({
  kind,
  dts,
  pts: dts + (kind === 'video' ? 3000 : 0),
  keyframe,
  data: Buffer.alloc(size, dts % 251),
});
const wireOf = (f: Frame): Buffer => Buffer.concat([encodeFrameHead(f), f.data]);

test('relay wire: messages round-trip whatever the chunking', () => {
  const secret = randomBytes(32);
  const big = frame('video', 2 ** 33 + 7, true, 70_000); // past 32 bits of 90 kHz time
  const bytes = Buffer.concat([
    encodeSubscribe(secret, 'live/cam1'),
    encodeTracks(tracks),
    wireOf(big),
    wireOf(frame('audio', 10, true)),
  ]);
  for (const step of [1, 7, 4096, bytes.length]) {
    const r = new RelayReader(1 << 20);
    const out = [];
    for (let i = 0; i < bytes.length; i += step) out.push(...r.push(bytes.subarray(i, i + step)));
    assert.equal(out.length, 4, `chunks of ${step}`);
    assert.deepEqual(out[0], { type: 'subscribe', secret, name: 'live/cam1' });
    assert.deepEqual(out[1], { type: 'tracks', tracks });
    assert.deepEqual(out[2], { type: 'frame', frame: big });
    assert.deepEqual(out[3], { type: 'frame', frame: frame('audio', 10, true) });
  }
  assert.deepEqual(new RelayReader(100).push(encodeTracks({})), [{ type: 'tracks', tracks: {} }]);
});

test('relay wire: oversized, empty, short and unknown messages are errors', () => {
  const bad = (b: Buffer, max = 1000): void =>
    assert.throws(() => new RelayReader(max).push(b), RelayWireError);
  bad(wireOf(frame('video', 0, true, 2000)));
  bad(Buffer.from([0, 0, 0, 0]));
  bad(Buffer.from([0, 0, 0, 2, 3, 0]));
  bad(Buffer.from([0, 0, 0, 1, 9]));
  bad(Buffer.from([0, 0, 0, 3, 1, 1, 2]));
  const badKind = wireOf(frame('video', 0, true));
  badKind[5] = 7;
  bad(badKind);
});

function registry(): StreamRegistry {
  const r = parseConfig('template live { prefix live; input publish://; }', 't.conf');
  if ('errors' in r) throw new Error('config');
  return new StreamRegistry(r.config, { log: captureLog().log, ffmpeg: 'ffmpeg' });
}

function recorder(stream: Stream): { frames: Frame[]; tracks: Tracks[] } {
  const got = { frames: [] as Frame[], tracks: [] as Tracks[] };
  stream.bus.subscribe({
    onTracks: (t) => got.tracks.push(t),
    onFrame: (f) => got.frames.push(f),
    backlog: () => 0,
  });
  return got;
}

async function until(cond: () => boolean, ms = 3000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 5));
  }
}

test('relay: a puller gets tracks, the GOP from the last keyframe and live frames; the owner leaving ends it', async () => {
  const secret = randomBytes(32);
  const owner = registry();
  const puller = registry();
  const log = captureLog().log;
  const source = owner.resolve('live/a') as Stream;
  const server = new RelayServer({
    secret,
    log,
    owned: (name) => owner.list().find((s) => s.name === name && s.hasLocalPublisher),
  });
  const addr = await server.listen();
  const pub = source.claimPublisher();
  assert.ok(pub);
  pub.source.tracks(tracks);
  pub.source.frame(frame('video', 0, true));
  pub.source.frame(frame('video', 3600, false));
  pub.source.frame(frame('video', 7200, true));
  pub.source.frame(frame('audio', 7300, true));

  const target = puller.resolve('live/a') as Stream;
  const got = recorder(target);
  let ended = 0;
  const pull = pullRelay(target, addr, secret, log, () => ended++);
  assert.ok(pull);
  assert.equal(target.hasPublisher, true, 'the relay holds the publishing slot');
  assert.equal(target.hasLocalPublisher, false, 'but is not a local publisher');
  assert.equal(target.claimPublisher(), undefined, 'a client cannot publish over a relay');
  await until(() => got.frames.length >= 2);
  pub.source.frame(frame('video', 10800, false, 100_000));
  await until(() => got.frames.length >= 3);
  assert.deepEqual(got.tracks, [tracks]);
  assert.deepEqual(
    got.frames.map((f) => [f.kind, f.dts, f.keyframe, f.data.length]),
    [
      ['video', 7200, true, 8],
      ['audio', 7300, true, 8],
      ['video', 10800, false, 100_000],
    ],
    "the GOP from the last keyframe, then live, on the owner's clock",
  );
  assert.deepEqual(got.frames[2]?.data, Buffer.alloc(100_000, 10800 % 251));

  pub.release();
  server.endStream('live/a');
  await until(() => ended === 1);
  assert.equal(target.hasPublisher, false, 'the slot is free for the next owner or a local publisher');
  assert.ok(target.claimPublisher());
  await server.close();
  await Promise.all([owner.stop(), puller.stop()]);
});

test('relay: the puller stopping its stream closes the relay; an unowned name is refused', async () => {
  const secret = randomBytes(32);
  const owner = registry();
  const puller = registry();
  const log = captureLog().log;
  const source = owner.resolve('live/a') as Stream;
  const pub = source.claimPublisher();
  assert.ok(pub);
  const server = new RelayServer({
    secret,
    log,
    owned: (name) => owner.list().find((s) => s.name === name && s.hasLocalPublisher),
  });
  const addr = await server.listen();
  let ended = 0;
  const target = puller.resolve('live/a') as Stream;
  assert.ok(pullRelay(target, addr, secret, log, () => ended++));
  await puller.stop();
  await until(() => ended === 1);

  const other = registry().resolve('live/b') as Stream;
  assert.ok(pullRelay(other, addr, secret, log, () => ended++));
  await until(() => ended === 2);
  assert.equal(other.hasPublisher, false);
  await server.close();
  await owner.stop();
});

test('relay: a connection without the cluster secret gets no byte', async () => {
  const secret = randomBytes(32);
  const owner = registry();
  const source = owner.resolve('live/a') as Stream;
  const pub = source.claimPublisher();
  assert.ok(pub);
  pub.source.tracks(tracks);
  pub.source.frame(frame('video', 0, true));
  const { log, lines } = captureLog();
  const server = new RelayServer({ secret, log, owned: () => source });
  const addr = await server.listen();
  const sock = connect(addr.port, addr.host);
  await once(sock, 'connect');
  let received = 0;
  sock.on('data', (d: Buffer) => (received += d.length));
  sock.write(encodeSubscribe(randomBytes(32), 'live/a'));
  await once(sock, 'close');
  assert.equal(received, 0);
  assert.ok(lines.some((l) => l.includes('without the cluster secret')));
  // Garbage instead of a subscribe message: closed too.
  const junk = connect(addr.port, addr.host);
  await once(junk, 'connect');
  junk.write(Buffer.from('GET / HTTP/1.1\r\n\r\n'));
  await once(junk, 'close');
  await server.close();
  await owner.stop();
});
