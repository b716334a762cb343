import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  formatRtpInfo,
  formatTransport,
  parseBasicAuth,
  parseCSeq,
  parseSession,
  parseTransport,
  type TransportSpec,
} from '../../../../protocols/rtsp/wire/headers.js';
import { RtspProtocolError } from '../../../../protocols/rtsp/wire/errors.js';

const transports: { name: string; header: string; expect: TransportSpec[] }[] = [
  {
    name: 'ffmpeg record over TCP',
    header: 'RTP/AVP/TCP;unicast;interleaved=0-1;mode=record',
    expect: [{ lower: 'tcp', unicast: true, interleaved: [0, 1], mode: 'record' }],
  },
  {
    name: 'ffmpeg play over UDP',
    header: 'RTP/AVP/UDP;unicast;client_port=19372-19373',
    expect: [{ lower: 'udp', unicast: true, clientPort: [19372, 19373] }],
  },
  {
    name: 'GStreamer offers several, quoted mode, single port',
    header: 'RTP/AVP;unicast;client_port=5000;mode="PLAY", RTP/AVP/TCP;unicast;interleaved=2-3',
    expect: [
      { lower: 'udp', unicast: true, clientPort: [5000, 5001], mode: 'play' },
      { lower: 'tcp', unicast: true, interleaved: [2, 3] },
    ],
  },
  {
    name: 'unknown profiles are dropped, multicast kept as such',
    header: 'RTP/SAVP;unicast;client_port=1-2,RTP/AVP;multicast;ttl=4',
    expect: [{ lower: 'udp', unicast: false }],
  },
];

for (const c of transports) {
  test(`transport header: ${c.name}`, () => {
    assert.deepEqual(parseTransport(c.header), c.expect);
  });
}

test('transport header: out-of-range ports are a 461', () => {
  assert.throws(
    () => parseTransport('RTP/AVP;unicast;client_port=70000-70001'),
    (e: unknown) => e instanceof RtspProtocolError && e.status === 461,
  );
});

test('transport header: format → parse round trip', () => {
  const spec: TransportSpec = {
    lower: 'udp',
    unicast: true,
    clientPort: [5000, 5001],
    serverPort: [6000, 6001],
  };
  assert.equal(formatTransport(spec), 'RTP/AVP;unicast;client_port=5000-5001;server_port=6000-6001');
  assert.deepEqual(parseTransport(formatTransport(spec)), [spec]);
  const rec: TransportSpec = {
    lower: 'tcp',
    unicast: true,
    interleaved: [2, 3],
    mode: 'record',
    ssrc: 0xabc,
  };
  assert.deepEqual(parseTransport(formatTransport(rec)), [rec]);
});

test('session, cseq, basic auth, rtp-info', () => {
  assert.equal(parseSession('12345678;timeout=60'), '12345678');
  assert.equal(parseSession(' '), undefined);
  assert.equal(parseCSeq(' 42 '), 42);
  assert.equal(parseCSeq('x'), undefined);
  assert.deepEqual(parseBasicAuth(`Basic ${Buffer.from('pub:s3:cret').toString('base64')}`), {
    user: 'pub',
    pass: 's3:cret',
  });
  assert.equal(parseBasicAuth('Digest username="a"'), undefined);
  assert.equal(parseBasicAuth(`Basic ${Buffer.from('nocolon').toString('base64')}`), undefined);
  assert.equal(
    formatRtpInfo([
      { url: 'rtsp://h/a/trackID=0', seq: 5, rtptime: 900 },
      { url: 'rtsp://h/a/trackID=1', seq: 7 },
    ]),
    'url=rtsp://h/a/trackID=0;seq=5;rtptime=900,url=rtsp://h/a/trackID=1;seq=7',
  );
});
