/**
 * RtspConn in process, without ffmpeg: the core and the RTSP adapter as the server builds
 * them, listening on 127.0.0.1 port 0; streams fed with synthetic frames or the captured
 * bytes of an ffmpeg publisher; raw TCP clients that read every answer and interleaved
 * packet with the wire reader.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import type { Core } from '../../../../src/adapter.js';
import { parseConfig } from '../../../../src/config/parse.js';
import { startServer, type RunningServer } from '../../../../src/server.js';
import { Sessions } from '../../../../src/sessions/manager.js';
import type { StreamRegistry } from '../../../../src/streams/registry.js';
import type { Stream } from '../../../../src/streams/stream.js';
import { createRtspAdapter } from '../../../../protocols/rtsp/index.js';
import { parseRtp } from '../../../../protocols/rtsp/wire/rtp.js';
import { RtspReader, type RtspResponse } from '../../../../protocols/rtsp/wire/message.js';
import { media, TRACKS } from '../hls/synthetic.js';
import { captureLog } from '../../sessions/helpers.js';
import { bindPair, request, RtspTestClient, sessionOf, startPublish } from './client.js';
import { DEFAULT_LIMITS } from '../../../../src/core/limits.js';
import { readerLimits } from '../../../../protocols/rtsp/control.js';

/** What the server reads with by default (src/core/limits.ts). */
const READER_LIMITS = readerLimits(DEFAULT_LIMITS);

const CONFIG = `
rtsp 127.0.0.1:0;
history sqlite://:memory:;
auth_backend gate { allow token good; }
template live { prefix live; input publish://; }
stream paid/cam { input publish://; on_play auth://gate; }
`;

let server: RunningServer;
let core: Core;
let port = 0;
let lines: string[] = [];
const unhandled: unknown[] = [];
const onUnhandled = (err: unknown): void => {
  unhandled.push(err);
};

/** The registry the adapter sees: the real one, but for names that stand in for a bug in a handler. */
function faultyRegistry(real: StreamRegistry): StreamRegistry {
  const registry = Object.create(real) as StreamRegistry;
  registry.resolve = (name) => {
    if (name === 'live/boom') throw new TypeError('injected bug in a request handler');
    const stream = real.resolve(name);
    if (name !== 'live/bad1' || !stream) return stream;
    // A publisher whose frames make the stream throw: a bug while handling interleaved packets.
    const faulty = Object.create(stream) as Stream;
    faulty.claimPublisher = () => {
      const p = stream.claimPublisher();
      if (!p) return undefined;
      const source = Object.create(p.source) as typeof p.source;
      source.frame = () => {
        throw new TypeError('injected bug in a packet handler');
      };
      return { source, release: () => p.release() };
    };
    return faulty;
  };
  return registry;
}

before(async () => {
  process.on('unhandledRejection', onUnhandled);
  const parsed = parseConfig(CONFIG, 'test.conf');
  if ('errors' in parsed) throw new Error(JSON.stringify(parsed.errors));
  const captured = captureLog();
  lines = captured.lines;
  server = await startServer(parsed.config, {
    log: captured.log,
    adapters: [
      (c) => {
        const listen = c.config().rtsp;
        assert.ok(listen);
        return createRtspAdapter(listen, {
          registry: faultyRegistry(c.registry),
          sessions: c.sessions,
          log: c.log,
          config: c.config,
        });
      },
    ],
  });
  core = server.core;
  port = server.addresses()['rtsp']?.port ?? 0;
});

after(async () => {
  await server.stop();
  process.off('unhandledRejection', onUnhandled);
  assert.deepEqual(unhandled, [], 'no unhandled rejection');
});

/** A publisher of synthetic 25 fps H.264 + AAC straight into a stream's bus. */
function feed(name: string): { push(seconds: number): void; release(): void } {
  const stream = core.registry.resolve(name);
  assert.ok(stream, name);
  const publisher = stream.claimPublisher();
  assert.ok(publisher);
  publisher.source.tracks(TRACKS);
  let seconds = 0;
  return {
    push(n) {
      const frames = media(n, { startDts: seconds * 90000, firstIndex: seconds * 25 });
      for (const f of frames) publisher.source.frame(f);
      seconds += n;
    },
    release: () => publisher.release(),
  };
}

const url = (path: string): string => `rtsp://127.0.0.1:${port}/${path}`;

/** DESCRIBE, SETUP of both tracks over TCP and PLAY, one answer at a time as ffmpeg does. */
async function play(c: RtspTestClient, path: string): Promise<RtspResponse> {
  const base = url(path);
  c.send(request('DESCRIBE', base, 1, ['Accept: application/sdp']));
  const described = await c.answer(1);
  assert.equal(described.status, 200, `DESCRIBE ${path}`);
  c.send(request('SETUP', `${base}/trackID=0`, 2, ['Transport: RTP/AVP/TCP;unicast;interleaved=0-1']));
  const setup = await c.answer(2);
  assert.equal(setup.status, 200);
  const session = sessionOf(setup);
  c.send(
    request('SETUP', `${base}/trackID=1`, 3, [
      'Transport: RTP/AVP/TCP;unicast;interleaved=2-3',
      `Session: ${session}`,
    ]),
  );
  assert.equal((await c.answer(3)).status, 200);
  c.send(request('PLAY', `${base}/`, 4, ['Range: npt=0.000-', `Session: ${session}`]));
  const played = await c.answer(4);
  assert.equal(played.status, 200);
  return played;
}

test('rtsp conn: an allowed play gets the SDP, then RTP interleaved after the PLAY answer, numbered as RTP-Info says', async () => {
  const pub = feed('paid/cam');
  pub.push(1);
  const c = await RtspTestClient.open(port);
  try {
    const played = await play(c, 'paid/cam?token=good');
    const described = c.responses[0];
    assert.equal(described?.headers.get('content-base'), `${url('paid/cam?token=good')}/`);
    assert.match(described?.body.toString() ?? '', /m=video 0 RTP\/AVP 96[^]*m=audio 0 RTP\/AVP 97/);
    await c.until(() => c.packets.some((p) => p.channel === 0), 'the first video packet');
    const playAt = c.items.findIndex((i) => i.kind === 'response' && i.response === played);
    const firstMedia = c.items.findIndex((i) => i.kind === 'interleaved');
    assert.ok(playAt < firstMedia, 'no media byte before the PLAY answer');
    const rtpInfo = played.headers.get('rtp-info') ?? '';
    const seq = Number(/trackID=0;seq=(\d+)/.exec(rtpInfo)?.[1]);
    const first = c.packets.find((p) => p.channel === 0);
    assert.ok(first);
    assert.equal(parseRtp(first.payload).sequence, seq);
    assert.equal(c.packets[0]?.channel, 1, 'the keyframe’s sender report comes first');
    assert.equal(core.sessions.list({ name: 'paid/cam' }).length, 1);
  } finally {
    c.close();
    pub.release();
  }
});

test('rtsp conn: DESCRIBE, SETUP, SETUP and PLAY pipelined in one write are answered in order, then media flows', async () => {
  const pub = feed('live/pipelined');
  pub.push(1);
  const c = await RtspTestClient.open(port);
  try {
    const base = url('live/pipelined');
    c.send(
      request('DESCRIBE', base, 1) +
        request('SETUP', `${base}/trackID=0`, 2, ['Transport: RTP/AVP/TCP;unicast;interleaved=0-1']) +
        request('SETUP', `${base}/trackID=1`, 3, ['Transport: RTP/AVP/TCP;unicast;interleaved=2-3']) +
        request('PLAY', base, 4),
    );
    await c.answer(4);
    assert.deepEqual(
      c.responses.map((r) => [r.headers.get('cseq'), r.status]),
      [
        ['1', 200],
        ['2', 200],
        ['3', 200],
        ['4', 200],
      ],
    );
    await c.until(() => c.packets.some((p) => p.channel === 2), 'audio packets');
  } finally {
    c.close();
    pub.release();
  }
});

test('rtsp conn: a denied DESCRIBE gets 403, and the SETUP and PLAY pipelined behind it never a byte', async () => {
  const pub = feed('paid/cam');
  pub.push(1);
  const c = await RtspTestClient.open(port);
  try {
    const base = url('paid/cam?token=bad');
    c.send(
      request('DESCRIBE', base, 1, ['Accept: application/sdp']) +
        request('SETUP', `${base}/trackID=0`, 2, ['Transport: RTP/AVP/TCP;unicast;interleaved=0-1']) +
        request('PLAY', base, 3),
    );
    await c.until(() => c.closed, 'the server to close the connection');
    pub.push(1); // live media while the client would be listening
    assert.deepEqual(
      c.responses.map((r) => [r.status, r.headers.get('cseq')]),
      [[403, '1']],
    );
    assert.equal(c.packets.length, 0, 'not one RTP byte');
    assert.equal(core.sessions.list({ name: 'paid/cam' }).length, 0);
  } finally {
    c.close();
    pub.release();
  }
});

test('rtsp conn: a session the manager ends (kick) closes the playing client', async () => {
  const pub = feed('live/kick');
  pub.push(1);
  const c = await RtspTestClient.open(port);
  try {
    await play(c, 'live/kick');
    await c.until(() => c.packets.length > 0, 'media');
    const [session] = core.sessions.list({ name: 'live/kick' });
    assert.ok(session);
    const manager = core.sessions;
    assert.ok(manager instanceof Sessions);
    assert.equal(manager.kick(session.id), true);
    await c.until(() => c.closed, 'the server to close the connection');
    assert.equal(session.closed, true);
    assert.equal(core.sessions.list({ name: 'live/kick' }).length, 0);
  } finally {
    c.close();
    pub.release();
  }
});

test('rtsp conn: a handler that throws closes that client only; a player and a newcomer are still served', async () => {
  const pub = feed('live/cam1');
  pub.push(1);
  const viewer = await RtspTestClient.open(port);
  const victim = await RtspTestClient.open(port);
  try {
    await play(viewer, 'live/cam1');
    victim.send(request('DESCRIBE', url('live/boom'), 1));
    await victim.until(() => victim.closed, 'the faulty connection to close');
    assert.equal(victim.responses.length, 0);
    assert.ok(
      lines.some(
        (l) => l.includes('"event":"protocol_error"') && l.includes('injected bug in a request handler'),
      ),
      'the fault is logged as a protocol_error',
    );
    assert.equal(core.sessions.list({ name: 'live/boom' }).length, 0, 'its session is closed');

    const before = viewer.packets.length;
    pub.push(1);
    await viewer.until(() => viewer.packets.length > before, 'more media for the other player');
    const newcomer = await RtspTestClient.open(port);
    newcomer.send(request('OPTIONS', url('live/cam1'), 1));
    assert.equal((await newcomer.answer(1)).status, 200);
    newcomer.close();
  } finally {
    viewer.close();
    victim.close();
    pub.release();
  }
});

test('rtsp conn: a protocol error in a request keeps its status answer and the connection', async () => {
  const pub = feed('live/errors');
  pub.push(1);
  const c = await RtspTestClient.open(port);
  try {
    c.send(request('DESCRIBE', url('live/errors'), 1));
    assert.equal((await c.answer(1)).status, 200);
    c.send(
      request('SETUP', `${url('live/errors')}/trackID=0`, 2, [
        'Transport: RTP/AVP;unicast;client_port=70000-70001',
      ]),
    );
    assert.equal((await c.answer(2)).status, 461);
    c.send('OPTIONS * RTSP/1.0\r\nUser-Agent: no-cseq\r\n\r\n');
    const noCseq = await c.answer(3);
    assert.equal(noCseq.status, 400);
    assert.equal(noCseq.headers.get('cseq'), undefined);
    c.send(request('PLAY', url('live/errors'), 4, ['Session: 0000000000000000']));
    assert.equal((await c.answer(4)).status, 454);
    c.send(request('OPTIONS', url('live/errors'), 5));
    assert.equal((await c.answer(5)).status, 200);
    assert.equal(c.closed, false);

    const publisher = await RtspTestClient.open(port);
    publisher.send(request('ANNOUNCE', url('live/notsdp'), 1, ['Content-Type: application/sdp'], 'hello'));
    assert.equal((await publisher.answer(1)).status, 400);
    publisher.send(request('OPTIONS', url('live/notsdp'), 2));
    assert.equal((await publisher.answer(2)).status, 200);
    publisher.close();
  } finally {
    c.close();
    pub.release();
  }
});

test('rtsp conn: UDP play sends RTP to the client ports', async () => {
  const pub = feed('live/udp');
  pub.push(1);
  const c = await RtspTestClient.open(port);
  const { rtp, rtcp } = await bindPair();
  try {
    const got: Buffer[] = [];
    rtp.on('message', (m) => {
      got.push(m);
      c.notify();
    });
    const ports = `${rtp.address().port}-${rtcp.address().port}`;
    const base = url('live/udp');
    c.send(request('DESCRIBE', base, 1));
    assert.equal((await c.answer(1)).status, 200);
    c.send(request('SETUP', `${base}/trackID=0`, 2, [`Transport: RTP/AVP;unicast;client_port=${ports}`]));
    const setup = await c.answer(2);
    assert.equal(setup.status, 200);
    assert.match(
      setup.headers.get('transport') ?? '',
      new RegExp(`^RTP/AVP;unicast;client_port=${ports};server_port=\\d+-\\d+$`),
    );
    c.send(request('PLAY', base, 3, [`Session: ${sessionOf(setup)}`]));
    assert.equal((await c.answer(3)).status, 200);
    await c.until(() => got.length > 0, 'an RTP datagram');
    assert.equal(parseRtp(got[0] ?? Buffer.alloc(0)).payloadType, 96);
    assert.equal(c.packets.length, 0, 'nothing interleaved');
  } finally {
    c.close();
    rtp.close();
    rtcp.close();
    pub.release();
  }
});

test('rtsp conn: an ffmpeg publisher’s bytes reach a player that was waiting for the tracks', async () => {
  const publisher = await RtspTestClient.open(port);
  const viewer = await RtspTestClient.open(port);
  try {
    const bytes = await startPublish(publisher, 'live/pub1');
    viewer.send(request('DESCRIBE', url('live/pub1'), 1));
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(viewer.responses.length, 0, 'DESCRIBE waits: no tracks yet');
    publisher.send(bytes.media);
    const described = await viewer.answer(1);
    assert.equal(described.status, 200);
    assert.match(described.body.toString(), /sprop-parameter-sets=/);
    const stream = core.registry.resolve('live/pub1');
    await viewer.until(() => (stream?.bus.framesIn ?? 0) >= 50, 'the publisher’s frames on the bus');
    assert.equal(
      core.sessions.list({ name: 'live/pub1' }).find((s) => s.kind === 'publish')?.bytes,
      bytes.media.length - 4 * countInterleaved(bytes.media),
    );
    publisher.send(bytes.teardown);
    await publisher.until(() => publisher.closed, 'TEARDOWN to close the publisher');
    assert.equal(publisher.responses.at(-1)?.status, 200);
    assert.equal(stream?.hasPublisher, false);
  } finally {
    publisher.close();
    viewer.close();
  }
});

function countInterleaved(b: Buffer): number {
  return new RtspReader(READER_LIMITS).push(b).filter((i) => i.kind === 'interleaved').length;
}

test('rtsp conn: a bug while taking a publisher’s packets closes that publisher, not the server', async () => {
  const publisher = await RtspTestClient.open(port);
  try {
    const bytes = await startPublish(publisher, 'live/bad1');
    publisher.send(bytes.media);
    await publisher.until(() => publisher.closed, 'the faulty publisher to be closed');
    assert.ok(
      lines.some(
        (l) => l.includes('"event":"protocol_error"') && l.includes('injected bug in a packet handler'),
      ),
    );
    assert.equal(core.registry.resolve('live/bad1')?.hasPublisher, false, 'its slot is released');
    const next = await RtspTestClient.open(port);
    next.send(request('OPTIONS', url('live/x'), 1));
    assert.equal((await next.answer(1)).status, 200);
    next.close();
  } finally {
    publisher.close();
  }
});
