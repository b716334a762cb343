/**
 * RtspConn against hostile or broken clients, in process: the core and the RTSP adapter as
 * the server builds them, with the limits block lowered so that deadlines and sizes are hit
 * in a fraction of a second; streams fed by a synthetic publisher or the ffmpeg capture.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import type { Core } from '../../../../src/adapter.js';
import { parseConfig } from '../../../../src/config/parse.js';
import { limitHits, type LimitName } from '../../../../src/core/limits.js';
import { startServer, type RunningServer } from '../../../../src/server.js';
import { TcpListener } from '../../../../src/tcp-listener.js';
import { bindUdpPair, createRtspAdapter } from '../../../../protocols/rtsp/index.js';
import { RtspConn, type UdpSender } from '../../../../protocols/rtsp/rtsp-conn.js';
import { media, TRACKS } from '../hls/synthetic.js';
import { captureLog } from '../../sessions/helpers.js';
import { bindPair, request, RtspTestClient, sessionOf, startPublish } from './client.js';

const CONFIG = `
rtsp 127.0.0.1:0;
history sqlite://:memory:;
template live { prefix live; input publish://; }
limits {
  handshake_timeout 0.5;
  request_head_timeout 0.4;
  request_head_bytes 1024;
  request_body_bytes 2048;
}
`;

let server: RunningServer;
let core: Core;
let port = 0;
let lines: string[] = [];
const unhandled: unknown[] = [];
const onUnhandled = (err: unknown): void => {
  unhandled.push(err);
};

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
          registry: c.registry,
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

const url = (path: string): string => `rtsp://127.0.0.1:${port}/${path}`;
const hits = (limit: LimitName): number => limitHits().get(limit) ?? 0;
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function eventually(condition: () => boolean, what: string, timeoutMs = 3000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await sleep(10);
  }
}

function logged(event: string): Record<string, unknown>[] {
  return lines.map((l) => JSON.parse(l) as Record<string, unknown>).filter((e) => e['event'] === event);
}

/** A publisher of synthetic 25 fps H.264 + AAC straight into a stream's bus. */
function feed(name: string): { push(seconds: number): void; release(): void; frames(): number } {
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
    frames: () => stream.bus.framesIn,
  };
}

/** Sends `text` one byte every `everyMs` until the client is closed or the text is out. */
async function trickle(c: RtspTestClient, text: string, everyMs: number): Promise<void> {
  for (const ch of text) {
    if (c.closed) return;
    c.send(ch);
    await sleep(everyMs);
  }
}

/** DESCRIBE, SETUP of the video track over TCP on `channels`, PLAY. */
async function playTcp(c: RtspTestClient, path: string, first = 1): Promise<void> {
  const base = url(path);
  c.send(request('DESCRIBE', base, first));
  assert.equal((await c.answer(first)).status, 200);
  c.send(
    request('SETUP', `${base}/trackID=0`, first + 1, ['Transport: RTP/AVP/TCP;unicast;interleaved=0-1']),
  );
  const setup = await c.answer(first + 1);
  assert.equal(setup.status, 200);
  c.send(request('PLAY', base, first + 2, [`Session: ${sessionOf(setup)}`]));
  assert.equal((await c.answer(first + 2)).status, 200);
}

// ---- deadlines ----------------------------------------------------------------------

test('rtsp limits: handshake_timeout — a client that sends no complete first request is closed at the deadline', async () => {
  const before = hits('handshake_timeout');
  const silent = await RtspTestClient.open(port);
  const opened = Date.now();
  try {
    await silent.until(() => silent.closed, 'the deadline', 2000);
    const after = Date.now() - opened;
    assert.ok(after >= 400 && after < 1500, `closed after ${after} ms`);
    assert.equal(hits('handshake_timeout'), before + 1);
  } finally {
    silent.close();
  }
});

test('rtsp limits: request_head_timeout — a head trickled a byte at a time is closed, not held open by each byte', async () => {
  const before = hits('request_head_timeout');
  const c = await RtspTestClient.open(port);
  try {
    c.send(request('OPTIONS', url('live/x'), 1));
    assert.equal((await c.answer(1)).status, 200, 'the first request is in time');
    const started = Date.now();
    await trickle(c, request('OPTIONS', url('live/x'), 2), 50);
    await c.until(() => c.closed, 'the head deadline', 2000);
    const after = Date.now() - started;
    assert.ok(after >= 350 && after < 1200, `closed ${after} ms after the head's first byte`);
    assert.equal(c.responses.length, 1, 'the trickled request is never answered');
    assert.equal(hits('request_head_timeout'), before + 1);
    const line = logged('limit_exceeded').find((e) => e['limit'] === 'request_head_timeout');
    assert.match(String(line?.['err']), /request incomplete 0\.4 s after its first byte/);
  } finally {
    c.close();
  }
});

test('rtsp limits: request_head_timeout — a body trickled after its head is closed too', async () => {
  const c = await RtspTestClient.open(port);
  try {
    c.send(request('OPTIONS', url('live/x'), 1));
    await c.answer(1);
    c.send(`SET_PARAMETER ${url('live/x')} RTSP/1.0\r\nCSeq: 2\r\nContent-Length: 100\r\n\r\n`);
    await trickle(c, 'x'.repeat(100), 50);
    await c.until(() => c.closed, 'the deadline', 2000);
    assert.equal(c.responses.length, 1);
  } finally {
    c.close();
  }
});

test('rtsp limits: request_head_timeout runs per request — pauses between requests and quick requests are fine', async () => {
  const c = await RtspTestClient.open(port);
  try {
    for (let i = 1; i <= 2; i++) {
      const text = request('OPTIONS', url('live/x'), i);
      // Each request in two halves 100 ms apart, then a pause longer than the deadline.
      c.send(text.slice(0, 20));
      await sleep(100);
      c.send(text.slice(20));
      assert.equal((await c.answer(i)).status, 200);
      await sleep(500);
    }
    assert.equal(c.closed, false);
  } finally {
    c.close();
  }
});

// ---- sizes ----------------------------------------------------------------------------

test('rtsp limits: request_head_bytes — an oversized head gets 431 and the connection ends', async () => {
  const before = hits('request_head_bytes');
  const c = await RtspTestClient.open(port);
  try {
    c.send(`OPTIONS ${url('live/x')} RTSP/1.0\r\nCSeq: 1\r\nX-Padding: ${'a'.repeat(1100)}\r\n\r\n`);
    await c.until(() => c.closed, 'the close');
    assert.deepEqual(
      c.responses.map((r) => r.status),
      [431],
    );
    assert.equal(hits('request_head_bytes'), before + 1);
  } finally {
    c.close();
  }
});

test('rtsp limits: request_body_bytes — a body announced over it gets 413 and the connection ends', async () => {
  const before = hits('request_body_bytes');
  const c = await RtspTestClient.open(port);
  try {
    c.send(`ANNOUNCE ${url('live/big')} RTSP/1.0\r\nCSeq: 1\r\nContent-Length: 2049\r\n\r\n`);
    await c.until(() => c.closed, 'the close');
    assert.deepEqual(
      c.responses.map((r) => r.status),
      [413],
    );
    assert.equal(hits('request_body_bytes'), before + 1);
    const ok = await RtspTestClient.open(port);
    ok.send(request('SET_PARAMETER', url('live/x'), 1, [], 'y'.repeat(2048)));
    assert.equal((await ok.answer(1)).status, 200, 'a body of exactly the limit is read');
    ok.close();
  } finally {
    c.close();
  }
});

// ---- interleaved data -------------------------------------------------------------------

test('rtsp limits: interleaved data before any SETUP closes that client', async () => {
  const early = await RtspTestClient.open(port);
  const later = await RtspTestClient.open(port);
  try {
    early.send(Buffer.from([0x24, 0, 0, 4, 1, 2, 3, 4]));
    await early.until(() => early.closed, 'the close');
    later.send(request('OPTIONS', url('live/x'), 1));
    later.send(Buffer.from([0x24, 1, 0, 0]));
    await later.until(() => later.closed, 'the close');
    assert.deepEqual(
      later.responses.map((r) => r.status),
      [200],
    );
  } finally {
    early.close();
    later.close();
  }
});

test('rtsp limits: a player’s odd interleaved frames (empty, unknown channel, receiver reports) are dropped', async () => {
  const pub = feed('live/oddframes');
  pub.push(1);
  const c = await RtspTestClient.open(port);
  try {
    await playTcp(c, 'live/oddframes');
    c.send(
      Buffer.from([0x24, 1, 0, 0]),
      Buffer.from([0x24, 200, 0, 3, 9, 9, 9]),
      Buffer.from([0x24, 1, 0, 8, 0x81, 201, 0, 1, 0, 0, 0, 1]),
    );
    c.send(request('GET_PARAMETER', url('live/oddframes'), 4));
    assert.equal((await c.answer(4)).status, 200);
    const seen = c.packets.length;
    pub.push(1);
    await c.until(() => c.packets.length > seen, 'media after the odd frames');
    assert.equal(c.closed, false);
  } finally {
    c.close();
    pub.release();
  }
});

test('rtsp limits: a publisher’s empty and garbage RTP frames are dropped, the publisher stays', async () => {
  const publisher = await RtspTestClient.open(port);
  try {
    const bytes = await startPublish(publisher, 'live/jnk1');
    publisher.send(Buffer.from([0x24, 0, 0, 0]), Buffer.from([0x24, 0, 0, 2, 0xff, 0xff]));
    publisher.send(bytes.media);
    const stream = core.registry.resolve('live/jnk1');
    await eventually(() => (stream?.bus.framesIn ?? 0) >= 50, 'the media after the junk');
    assert.equal(publisher.closed, false);
  } finally {
    publisher.close();
  }
});

// ---- transports and UDP -----------------------------------------------------------------

test('rtsp limits: SETUP with client_port=0-1 is a 461; server, publisher and other viewers carry on', async () => {
  const pub = feed('live/port0');
  pub.push(1);
  const viewer = await RtspTestClient.open(port);
  const bad = await RtspTestClient.open(port);
  try {
    await playTcp(viewer, 'live/port0');
    const base = url('live/port0');
    bad.send(request('DESCRIBE', base, 1));
    assert.equal((await bad.answer(1)).status, 200);
    for (const [i, ports] of ['0-1', '0', '1-2', '65535', '70000-70001'].entries()) {
      bad.send(
        request('SETUP', `${base}/trackID=0`, 2 + i, [`Transport: RTP/AVP;unicast;client_port=${ports}`]),
      );
      assert.equal((await bad.answer(2 + i)).status, 461, ports);
    }
    bad.send(request('SETUP', `${base}/trackID=0`, 7, ['Transport: RTP/AVP;unicast;client_port=zero']));
    assert.equal((await bad.answer(7)).status, 400);

    // The refused player falls back to TCP, as ffmpeg does after a 461.
    bad.send(request('SETUP', `${base}/trackID=0`, 8, ['Transport: RTP/AVP/TCP;unicast;interleaved=0-1']));
    const setup = await bad.answer(8);
    assert.equal(setup.status, 200);
    bad.send(request('PLAY', base, 9, [`Session: ${sessionOf(setup)}`]));
    assert.equal((await bad.answer(9)).status, 200);

    const [v, b] = [viewer.packets.length, bad.packets.length];
    const frames = pub.frames();
    pub.push(1);
    assert.ok(pub.frames() > frames, 'the publisher pushed on');
    await viewer.until(() => viewer.packets.length > v, 'media for the other viewer');
    await bad.until(() => bad.packets.length > b, 'media for the fallen-back viewer');
  } finally {
    viewer.close();
    bad.close();
    pub.release();
  }
});

test('rtsp limits: the UDP sender returns what dgram refuses instead of throwing', async () => {
  const udp = await bindUdpPair('127.0.0.1');
  try {
    const refused = udp.sender.send('rtp', Buffer.from('x'), '127.0.0.1', 0);
    assert.ok(refused instanceof Error, 'port 0 is refused');
    assert.equal(udp.sender.send('rtcp', Buffer.from('x'), '127.0.0.1', 65536) instanceof Error, true);
    assert.equal(udp.sender.send('rtp', Buffer.from('x'), '127.0.0.1', 9), undefined);
  } finally {
    udp.close();
  }
});

/**
 * A listener with the RTSP connection and a UDP sender that refuses one port pair, as if
 * dgram threw for it: what the viewer behind it costs when the sink fails.
 */
async function failingUdpListener(
  refusedPort: number,
): Promise<{ port: number; lines: string[]; stop: () => Promise<void> }> {
  const captured = captureLog();
  const real = await bindUdpPair('127.0.0.1');
  const sender: UdpSender = {
    rtpPort: real.sender.rtpPort,
    rtcpPort: real.sender.rtcpPort,
    reaches: () => true,
    send(channel, packet, ip, p) {
      if (p === refusedPort || p === refusedPort + 1) {
        return new Error('injected: the socket refuses this port');
      }
      return real.sender.send(channel, packet, ip, p);
    },
  };
  const deps = {
    registry: core.registry,
    sessions: core.sessions,
    log: captured.log,
    config: core.config,
    udp: sender,
  };
  const listener = new TcpListener({ host: '127.0.0.1', port: 0 }, (s) => new RtspConn(s, deps), {
    proto: 'rtsp',
    log: captured.log,
    limits: () => core.config().limits,
  });
  await listener.start();
  let stopped = false;
  return {
    port: listener.address()?.port ?? 0,
    lines: captured.lines,
    stop: async () => {
      if (stopped) return;
      stopped = true;
      await listener.stop();
      real.close();
    },
  };
}

test('rtsp limits: a UDP viewer whose datagrams cannot be sent is dropped alone; the RTSP publisher and a good viewer carry on', async () => {
  const { rtp, rtcp } = await bindPair();
  const refusedPort = rtp.address().port;
  const good = await bindPair();
  const alt = await failingUdpListener(refusedPort);
  const altUrl = (path: string): string => `rtsp://127.0.0.1:${alt.port}/${path}`;
  const publisher = await RtspTestClient.open(alt.port);
  const victim = await RtspTestClient.open(alt.port);
  const viewer = await RtspTestClient.open(alt.port);
  const datagrams: Buffer[] = [];
  good.rtp.on('message', (m) => {
    datagrams.push(m);
    viewer.notify();
  });
  try {
    const bytes = await startPublish(publisher, 'live/udp1');
    const half = Math.floor(bytes.media.length / 2);
    publisher.send(bytes.media.subarray(0, half));

    const setUpUdp = async (c: RtspTestClient, ports: string): Promise<void> => {
      const base = altUrl('live/udp1');
      c.send(request('DESCRIBE', base, 1));
      assert.equal((await c.answer(1)).status, 200);
      c.send(request('SETUP', `${base}/trackID=0`, 2, [`Transport: RTP/AVP;unicast;client_port=${ports}`]));
      const setup = await c.answer(2);
      assert.equal(setup.status, 200, 'an even pair is a valid offer');
      c.send(request('PLAY', base, 3, [`Session: ${sessionOf(setup)}`]));
      assert.equal((await c.answer(3)).status, 200);
    };
    await setUpUdp(victim, `${refusedPort}-${refusedPort + 1}`);
    await setUpUdp(viewer, `${good.rtp.address().port}-${good.rtcp.address().port}`);

    publisher.send(bytes.media.subarray(half));
    await victim.until(() => victim.closed, 'the failing viewer to be dropped');
    await viewer.until(() => datagrams.length > 0, 'datagrams for the good viewer');
    const stream = core.registry.resolve('live/udp1');
    await eventually(() => (stream?.bus.framesIn ?? 0) >= 50, 'all the publisher’s frames');
    assert.equal(publisher.closed, false, 'the publisher is not hurt');
    assert.equal(stream?.hasPublisher, true);
    assert.equal(viewer.closed, false);
    const drop = alt.lines
      .map((l) => JSON.parse(l) as Record<string, unknown>)
      .filter((e) => e['event'] === 'udp_send_failed');
    assert.equal(drop.length, 1, 'one line for the dropped viewer');
    assert.match(String(drop[0]?.['err']), /injected/);
    assert.ok([refusedPort, refusedPort + 1].includes(Number(drop[0]?.['port'])));
    await eventually(
      () => logged('session_close').some((e) => e['name'] === 'live/udp1' && e['kind'] === 'play'),
      'the dropped viewer’s session to close',
    );
    const closes = logged('session_close').filter((e) => e['name'] === 'live/udp1');
    assert.deepEqual(
      closes.map((e) => [e['kind'], e['reason']]),
      [['play', 'viewer_fault']],
      'only the failing viewer’s session ends',
    );
  } finally {
    publisher.close();
    victim.close();
    viewer.close();
    for (const s of [rtp, rtcp, good.rtp, good.rtcp]) s.close();
    await alt.stop();
  }
});
