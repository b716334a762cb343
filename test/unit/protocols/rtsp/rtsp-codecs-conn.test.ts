/**
 * RtspConn in process with the codecs and transports issue 10 added: a GStreamer publish
 * (H.264 + MP4A-LATM) replayed over RTSP RECORD on UDP, datagrams from another address
 * dropped, an ANNOUNCE of a codec RTSP cannot carry refused naming it, and an H.265 + AAC
 * stream played (the SDP offers both tracks and packets flow).
 */
import assert from 'node:assert/strict';
import { createSocket, type Socket as UdpSocket } from 'node:dgram';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { after, before, test } from 'node:test';
import type { Core } from '../../../../src/adapter.js';
import { parseConfig } from '../../../../src/config/parse.js';
import { DEFAULT_LIMITS } from '../../../../src/core/limits.js';
import { startServer, type RunningServer } from '../../../../src/server.js';
import { readerLimits } from '../../../../protocols/rtsp/control.js';
import { createRtspAdapter } from '../../../../protocols/rtsp/index.js';
import { RtspReader } from '../../../../protocols/rtsp/wire/message.js';
import { parseRtp } from '../../../../protocols/rtsp/wire/rtp.js';
import { captureLog } from '../../sessions/helpers.js';
import { bindPair, request, RtspTestClient, sessionOf } from './client.js';

const CONFIG = `
rtsp 127.0.0.1:0;
history sqlite://:memory:;
template live { prefix live; input publish://; }
`;

let server: RunningServer;
let core: Core;
let port = 0;

before(async () => {
  const parsed = parseConfig(CONFIG, 'test.conf');
  if ('errors' in parsed) throw new Error(JSON.stringify(parsed.errors));
  server = await startServer(parsed.config, {
    log: captureLog().log,
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
});

const url = (path: string): string => `rtsp://127.0.0.1:${port}/${path}`;
const fixture = (name: string): Buffer =>
  readFileSync(new URL(`../../../fixtures/rtsp/${name}`, import.meta.url));

/** The ANNOUNCE body and the interleaved packets of a captured TCP publish. */
function captured(name: string): { sdp: string; packets: { channel: number; payload: Buffer }[] } {
  const items = new RtspReader(readerLimits(DEFAULT_LIMITS)).push(fixture(name));
  let sdp = '';
  const packets: { channel: number; payload: Buffer }[] = [];
  for (const i of items) {
    if (i.kind === 'request' && i.request.method === 'ANNOUNCE') sdp = i.request.body.toString();
    if (i.kind === 'interleaved') packets.push({ channel: i.channel, payload: i.payload });
  }
  return { sdp, packets };
}

async function send(s: UdpSocket, packet: Buffer, port: number): Promise<void> {
  await new Promise<void>((resolve, reject) =>
    s.send(packet, port, '127.0.0.1', (e) => (e ? reject(e) : resolve())),
  );
}

test('rtsp conn: GStreamer’s H.264 + MP4A-LATM publish over UDP RECORD reaches the bus; a stranger’s datagrams do not', async () => {
  const { sdp, packets } = captured('gst-h264-latm-tcp.bin');
  const c = await RtspTestClient.open(port);
  // GStreamer's layout: audio is stream=1 (announced first), video stream=0.
  const audioPorts = await bindPair();
  const videoPorts = await bindPair();
  const stranger = createSocket('udp4');
  stranger.bind(0, '127.0.0.2');
  await once(stranger, 'listening');
  try {
    const base = url('live/gstudp');
    c.send(request('ANNOUNCE', base, 1, ['Content-Type: application/sdp'], sdp));
    const announced = await c.answer(1);
    assert.equal(announced.status, 200);
    const session = sessionOf(announced);
    const setup = async (
      control: string,
      ports: { rtp: UdpSocket },
      cseq: number,
    ): Promise<[number, number]> => {
      const p = ports.rtp.address().port;
      c.send(
        request('SETUP', `${base}/${control}`, cseq, [
          `Transport: RTP/AVP;unicast;client_port=${p}-${p + 1};mode=record`,
          `Session: ${session}`,
        ]),
      );
      const a = await c.answer(cseq);
      assert.equal(a.status, 200);
      const m = /server_port=(\d+)-(\d+)/.exec(a.headers.get('transport') ?? '');
      assert.ok(m, a.headers.get('transport'));
      return [Number(m[1]), Number(m[2])];
    };
    const audioServer = await setup('stream=1', audioPorts, 2);
    const videoServer = await setup('stream=0', videoPorts, 3);
    assert.notEqual(audioServer[0], videoServer[0], 'a port pair per track');
    c.send(request('RECORD', base, 4, [`Session: ${session}`, 'Range: npt=0.000-']));
    assert.equal((await c.answer(4)).status, 200);
    const stream = core.registry.resolve('live/gstudp');
    assert.ok(stream);
    // A stranger on another address sends the publisher's own packets first: all dropped.
    for (const p of packets.slice(0, 20)) {
      const to = p.channel < 2 ? audioServer : videoServer;
      await send(stranger, p.payload, p.channel % 2 ? to[1] : to[0]);
    }
    await new Promise((r) => setTimeout(r, 100));
    assert.equal(stream.bus.framesIn, 0, 'nothing from another address reaches the stream');
    for (const p of packets) {
      const from = p.channel < 2 ? audioPorts : videoPorts;
      const to = p.channel < 2 ? audioServer : videoServer;
      await send(p.channel % 2 ? from.rtcp : from.rtp, p.payload, p.channel % 2 ? to[1] : to[0]);
    }
    await c.until(() => stream.bus.framesIn >= 25 + 40, 'the publish on the bus');
    assert.equal(stream.bus.tracks?.video?.codec, 'h264');
    assert.equal(stream.bus.tracks?.audio?.codec, 'aac');
    assert.equal(stream.bus.tracks?.audio?.sampleRate, 44100);
    // Receiver reports come to the publisher's RTCP port from the server's (every 5 s).
    const [rr, rinfo] = (await once(videoPorts.rtcp, 'message', { signal: AbortSignal.timeout(10_000) })) as [
      Buffer,
      { port: number },
    ];
    assert.equal(rinfo.port, videoServer[1]);
    assert.equal(rr[1], 201, 'a receiver report');
    const rtpSsrc = packets.find((p) => p.channel === 2)?.payload.readUInt32BE(8);
    assert.equal(rr.readUInt32BE(8), rtpSsrc, 'about the publisher’s video SSRC');
    c.send(request('TEARDOWN', base, 5, [`Session: ${session}`]));
    await c.until(() => c.closed, 'TEARDOWN closes the connection');
    assert.equal(stream.hasPublisher, false);
    // The server ports are freed on teardown (which runs when the server sees its socket
    // close, a moment after the client does): the port can be bound again.
    let freed = false;
    for (let i = 0; i < 50 && !freed; i++) {
      const probe = createSocket('udp4');
      freed = await new Promise<boolean>((resolve) => {
        probe.once('error', () => resolve(false));
        probe.bind(videoServer[0], '127.0.0.1', () => resolve(true));
      });
      probe.close();
      if (!freed) await new Promise((r) => setTimeout(r, 20));
    }
    assert.ok(freed, 'the server rtp port is free after TEARDOWN');
  } finally {
    c.close();
    for (const s of [audioPorts.rtp, audioPorts.rtcp, videoPorts.rtp, videoPorts.rtcp, stranger]) s.close();
  }
});

test('rtsp conn: an ANNOUNCE with VP8 is refused with 415 naming it, and nothing is published', async () => {
  const c = await RtspTestClient.open(port);
  try {
    const sdp = [
      'v=0',
      'o=- 0 0 IN IP4 127.0.0.1',
      's=x',
      't=0 0',
      'm=video 0 RTP/AVP 96',
      'a=rtpmap:96 VP8/90000',
      'a=control:streamid=0',
      'm=audio 0 RTP/AVP 97',
      'a=rtpmap:97 opus/48000/2',
      'a=control:streamid=1',
      '',
    ].join('\r\n');
    c.send(request('ANNOUNCE', url('live/vp8'), 1, ['Content-Type: application/sdp'], sdp));
    const a = await c.answer(1);
    assert.equal(a.status, 415);
    assert.match(a.reason, /video\/VP8/);
    assert.match(a.body.toString(), /cannot carry video\/VP8; supported: video H264, H265/);
    await c.until(() => c.closed, 'the refused publisher is closed');
    assert.equal(core.registry.resolve('live/vp8')?.hasPublisher ?? false, false);
  } finally {
    c.close();
  }
});

test('rtsp conn: an H.265 + AAC stream is described with both tracks and played over TCP', async () => {
  // Publish ffmpeg's H.265 + AAC capture over TCP, then play it.
  const { sdp, packets } = captured('ffmpeg-h265-aac-tcp.bin');
  const pub = await RtspTestClient.open(port);
  const viewer = await RtspTestClient.open(port);
  try {
    const base = url('live/hevc');
    pub.send(request('ANNOUNCE', base, 1, ['Content-Type: application/sdp'], sdp));
    const session = sessionOf(await pub.answer(1));
    pub.send(
      request('SETUP', `${base}/streamid=0`, 2, [
        'Transport: RTP/AVP/TCP;unicast;interleaved=0-1;mode=record',
        `Session: ${session}`,
      ]),
    );
    pub.send(
      request('SETUP', `${base}/streamid=1`, 3, [
        'Transport: RTP/AVP/TCP;unicast;interleaved=2-3;mode=record',
        `Session: ${session}`,
      ]),
    );
    pub.send(request('RECORD', base, 4, [`Session: ${session}`]));
    assert.equal((await pub.answer(4)).status, 200);
    const interleave = (ch: number, b: Buffer): Buffer =>
      Buffer.concat([Buffer.from([0x24, ch, b.length >> 8, b.length & 0xff]), b]);
    // Half the capture first, so the viewer joins at the cached keyframe, then the rest.
    const half = Math.floor(packets.length / 2);
    pub.send(Buffer.concat(packets.slice(0, half).map((p) => interleave(p.channel, p.payload))));
    viewer.send(request('DESCRIBE', base, 1));
    const described = await viewer.answer(1);
    assert.equal(described.status, 200);
    const body = described.body.toString();
    assert.match(body, /m=video 0 RTP\/AVP 96\r\na=rtpmap:96 H265\/90000\r\na=fmtp:96 sprop-vps=/);
    assert.match(body, /m=audio 0 RTP\/AVP 97\r\na=rtpmap:97 MPEG4-GENERIC\/44100\/1/);
    viewer.send(request('SETUP', `${base}/trackID=0`, 2, ['Transport: RTP/AVP/TCP;unicast;interleaved=0-1']));
    const vs = sessionOf(await viewer.answer(2));
    viewer.send(
      request('SETUP', `${base}/trackID=1`, 3, [
        'Transport: RTP/AVP/TCP;unicast;interleaved=2-3',
        `Session: ${vs}`,
      ]),
    );
    assert.equal((await viewer.answer(3)).status, 200);
    viewer.send(request('PLAY', base, 4, [`Session: ${vs}`]));
    assert.equal((await viewer.answer(4)).status, 200);
    pub.send(Buffer.concat(packets.slice(half).map((p) => interleave(p.channel, p.payload))));
    await viewer.until(
      () => viewer.packets.some((p) => p.channel === 0) && viewer.packets.some((p) => p.channel === 2),
      'video and audio packets',
    );
    const firstVideo = viewer.packets.find((p) => p.channel === 0);
    assert.equal(parseRtp(firstVideo?.payload ?? Buffer.alloc(0)).payloadType, 96);
  } finally {
    pub.close();
    viewer.close();
  }
});

test('rtsp conn: a DESCRIBE of a stream whose only codec RTSP cannot carry gets 415 naming it, at once', async () => {
  const stream = core.registry.resolve('live/vp9only');
  assert.ok(stream);
  const publisher = stream.claimPublisher();
  assert.ok(publisher);
  publisher.source.tracks({ video: { kind: 'video', codec: 'vp9', config: Buffer.alloc(0) } });
  publisher.source.frame({ kind: 'video', dts: 0, pts: 0, keyframe: true, data: Buffer.alloc(8) });
  const c = await RtspTestClient.open(port);
  try {
    const started = Date.now();
    c.send(request('DESCRIBE', url('live/vp9only'), 1));
    const a = await c.answer(1);
    assert.equal(a.status, 415);
    assert.match(a.reason, /VP9 video cannot be carried over RTSP; it plays over RTMP/);
    assert.ok(Date.now() - started < 2000, 'not after the tracks wait');
    await c.until(() => c.closed, 'the refused player is closed');
  } finally {
    c.close();
    publisher.release();
  }
});
