import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { RtpItem } from '../../../../protocols/rtsp/egress.js';
import { playable, PlayState, type Delivery } from '../../../../protocols/rtsp/play.js';
import { RtspProtocolError } from '../../../../protocols/rtsp/wire/errors.js';
import { formatTransport } from '../../../../protocols/rtsp/wire/transport.js';
import { AUDIO_ONLY, TRACKS } from '../hls/synthetic.js';

const BASE = 'rtsp://127.0.0.1:8554/live/cam1?token=abc';
const UDP = { rtpPort: 8000, rtcpPort: 8001 };
// Transport headers as ffmpeg sends them for `-rtsp_transport tcp` and `udp`.
const TCP_V = 'RTP/AVP/TCP;unicast;interleaved=0-1';
const TCP_A = 'RTP/AVP/TCP;unicast;interleaved=2-3';
const UDP_V = 'RTP/AVP/UDP;unicast;client_port=19372-19373';
const UDP_A = 'RTP/AVP/UDP;unicast;client_port=19374-19375';

const SR_V = Buffer.from('80c80006000000aa', 'hex');
const SR_A = Buffer.from('80c80006000000bb', 'hex');

function item(track: 'video' | 'audio', sequence: number, key = false): RtpItem {
  return {
    track,
    packets: [Buffer.from([0x80, 96, sequence >> 8, sequence & 0xff]), Buffer.from([0x80, 0xe0])],
    start: key,
    rtpTime: sequence * 100,
    sequence,
    payload: 1000 + sequence,
    ...(key ? { reports: { video: SR_V, audio: SR_A } } : {}),
  };
}

/** A PlayState with video and audio set up over `transports`. */
function setUp(transports: [string, string], udp = UDP): PlayState {
  const play = new PlayState(TRACKS);
  assert.equal(play.setup('trackID=0', transports[0], udp).status, 200);
  assert.equal(play.setup('trackID=1', transports[1], udp).status, 200);
  return play;
}

test('playable: an H.264 or AAC track', () => {
  assert.equal(playable(undefined), false);
  assert.equal(playable({}), false);
  assert.equal(playable(TRACKS), true);
  assert.equal(playable(AUDIO_ONLY), true);
});

test('describe: the SDP of the tracks, with Content-Base keeping the query', () => {
  const { headers, sdp } = new PlayState(TRACKS).describe(BASE, '127.0.0.1');
  assert.deepEqual(headers, [
    ['Content-Type', 'application/sdp'],
    ['Content-Base', `${BASE}/`],
  ]);
  assert.match(sdp, /^v=0\r\no=- 0 0 IN IP4 127\.0\.0\.1\r\n/);
  assert.match(sdp, /m=video 0 RTP\/AVP 96\r\n[^]*a=control:trackID=0\r\n/);
  assert.match(
    sdp,
    /m=audio 0 RTP\/AVP 97\r\na=rtpmap:97 MPEG4-GENERIC\/44100\/2\r\n[^]*a=control:trackID=1\r\n/,
  );
});

test('setup: each track by its control, or the next one at the aggregate URL; 404 for others', () => {
  const play = new PlayState(TRACKS);
  const a = play.setup(undefined, 'RTP/AVP/TCP;unicast', undefined);
  assert.equal(a.status === 200 && formatTransport(a.transport), 'RTP/AVP/TCP;unicast;interleaved=0-1');
  const b = play.setup(undefined, 'RTP/AVP/TCP;unicast', undefined);
  assert.equal(b.status === 200 && formatTransport(b.transport), 'RTP/AVP/TCP;unicast;interleaved=2-3');
  assert.equal(play.setup(undefined, 'RTP/AVP/TCP;unicast', undefined).status, 404, 'nothing left');
  assert.equal(play.setup('trackID=5', TCP_V, undefined).status, 404);
  assert.equal(new PlayState(AUDIO_ONLY).setup('trackID=0', TCP_V, undefined).status, 404, 'no video here');
  assert.equal(new PlayState(AUDIO_ONLY).setup('streamid=1', TCP_A, undefined).status, 200);
});

test('setup: 461 when no offer fits; a malformed Transport throws its 400', () => {
  const play = new PlayState(TRACKS);
  assert.equal(play.setup('trackID=0', UDP_V, undefined).status, 461, 'udp cannot reach this client');
  assert.equal(play.setup('trackID=0', 'RTP/AVP;multicast', UDP).status, 461);
  assert.equal(play.setup('trackID=0', 'RTP/AVP;unicast;client_port=70000-70001', UDP).status, 461);
  assert.equal(play.setup('trackID=0', 'RTP/AVP;unicast;client_port=0-1', UDP).status, 461);
  assert.throws(
    () => play.setup('trackID=0', 'RTP/AVP;unicast;client_port=x-y', UDP),
    (e: unknown) => e instanceof RtspProtocolError && e.status === 400,
  );
  assert.equal(play.ready, false);
  assert.equal(play.setup('trackID=0', TCP_V, UDP).status, 200);
  assert.equal(play.setup('trackID=1', UDP_A, UDP).status, 461, 'tracks share the first one’s transport');
  assert.equal(play.setup('trackID=1', TCP_V, UDP).status, 461, 'the video track’s channels are taken');
  assert.equal(play.ready, true);
});

test('play: items replayed on subscribe are held, and RTP-Info names where each track starts', () => {
  const play = setUp([TCP_V, TCP_A]);
  assert.equal(play.offer(item('video', 1, true)), undefined, 'not subscribed: nothing goes out');
  play.subscribing();
  assert.equal(play.setup('trackID=1', TCP_A, UDP).status, 455);
  for (const i of [item('video', 100, true), item('audio', 7), item('video', 101)]) {
    assert.equal(play.offer(i), undefined);
  }
  const started = play.start(BASE, () => assert.fail('the held items give the numbering'));
  assert.equal(
    started.rtpInfo,
    `url=${BASE}/trackID=0;seq=100;rtptime=10000,url=${BASE}/trackID=1;seq=7;rtptime=700`,
  );
  assert.equal(started.udp, false);
  assert.deepEqual(
    started.backlog.map((d) => [d.to, d.packets.length, d.reports.length]),
    [
      [{ via: 'tcp', channel: 0 }, 2, 2],
      [{ via: 'tcp', channel: 2 }, 2, 0],
      [{ via: 'tcp', channel: 0 }, 2, 0],
    ],
  );
  assert.equal(play.playing, true);
  assert.equal(play.setup('trackID=1', TCP_A, UDP).status, 455, 'no tracks added to a running PLAY');
});

test('play: without cached items RTP-Info comes from the next sequence numbers, or is left out', () => {
  const next = { video: 4242, audio: undefined } as const;
  const play = setUp([TCP_V, TCP_A]);
  play.subscribing();
  assert.equal(play.start(BASE, (k) => next[k]).rtpInfo, `url=${BASE}/trackID=0;seq=4242`);
  const empty = setUp([TCP_V, TCP_A]);
  empty.subscribing();
  assert.equal(empty.start(BASE, () => undefined).rtpInfo, undefined);
});

test('delivery over TCP: the shared packets on the track’s RTP channel, sender reports on each RTCP channel', () => {
  const play = setUp([TCP_V, TCP_A]);
  play.subscribing();
  play.start(BASE, () => 1);
  const key = item('video', 5, true);
  const d = play.offer(key);
  assert.deepEqual(d, {
    reports: [
      { to: { via: 'tcp', channel: 1 }, packet: SR_V },
      { to: { via: 'tcp', channel: 3 }, packet: SR_A },
    ],
    to: { via: 'tcp', channel: 0 },
    packets: key.packets,
    bytes: 1005,
  } satisfies Delivery);
  assert.equal(d?.packets, key.packets, 'the same Buffers every viewer gets');
  assert.deepEqual(play.offer(item('audio', 6))?.to, { via: 'tcp', channel: 2 });
});

test('delivery over UDP: to the client ports; only tracks that were set up', () => {
  const play = new PlayState(TRACKS);
  assert.equal(play.setup('trackID=0', UDP_V, UDP).status, 200);
  play.subscribing();
  assert.equal(play.start(BASE, () => 1).udp, true);
  const d = play.offer(item('video', 9, true));
  assert.deepEqual(d?.to, { via: 'udp', channel: 'rtp', port: 19372 });
  assert.deepEqual(d?.reports, [{ to: { via: 'udp', channel: 'rtcp', port: 19373 }, packet: SR_V }]);
  assert.equal(play.offer(item('audio', 10)), undefined, 'audio was not set up');
});
