import assert from 'node:assert/strict';
import { test } from 'node:test';
import { RtspProtocolError } from '../../../../protocols/rtsp/wire/errors.js';
import {
  formatTransport,
  parseTransport,
  pickPlayTransport,
  pickRecordTransport,
  type TransportSpec,
} from '../../../../protocols/rtsp/wire/transport.js';

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

const UDP = { rtpPort: 8000, rtcpPort: 8001 };

/** Transport headers as ffmpeg (`-rtsp_transport tcp|udp`), VLC and GStreamer send them on SETUP. */
const FFMPEG_TCP = 'RTP/AVP/TCP;unicast;interleaved=0-1';
const FFMPEG_UDP = 'RTP/AVP/UDP;unicast;client_port=19372-19373';
const VLC_UDP = 'RTP/AVP;unicast;client_port=51234-51235';
const GST_BOTH = 'RTP/AVP;unicast;client_port=5000-5001, RTP/AVP/TCP;unicast;interleaved=2-3';

test('play transport: TCP keeps the client channels, or takes the next free pair', () => {
  assert.deepEqual(pickPlayTransport(parseTransport(FFMPEG_TCP), [], UDP), {
    lower: 'tcp',
    unicast: true,
    interleaved: [0, 1],
  });
  const first: TransportSpec = { lower: 'tcp', unicast: true, interleaved: [0, 1] };
  assert.deepEqual(pickPlayTransport(parseTransport('RTP/AVP/TCP;unicast'), [first], UDP), {
    lower: 'tcp',
    unicast: true,
    interleaved: [2, 3],
  });
});

test('play transport: UDP answers with the server ports, only when the server can reach the client', () => {
  const expect: TransportSpec = {
    lower: 'udp',
    unicast: true,
    clientPort: [19372, 19373],
    serverPort: [8000, 8001],
  };
  assert.deepEqual(pickPlayTransport(parseTransport(FFMPEG_UDP), [], UDP), expect);
  assert.equal(formatTransport(expect), 'RTP/AVP;unicast;client_port=19372-19373;server_port=8000-8001');
  assert.equal(pickPlayTransport(parseTransport(VLC_UDP), [], undefined), undefined, 'no udp: 461');
  assert.equal(pickPlayTransport(parseTransport('RTP/AVP;unicast'), [], UDP), undefined, 'no client ports');
});

test('play transport: the first offer that fits wins; every track shares the first track’s lower transport', () => {
  assert.equal(pickPlayTransport(parseTransport(GST_BOTH), [], UDP)?.lower, 'udp');
  assert.deepEqual(pickPlayTransport(parseTransport(GST_BOTH), [], undefined)?.interleaved, [2, 3]);
  const tcp: TransportSpec = { lower: 'tcp', unicast: true, interleaved: [0, 1] };
  assert.deepEqual(pickPlayTransport(parseTransport(GST_BOTH), [tcp], UDP)?.lower, 'tcp');
  assert.equal(pickPlayTransport(parseTransport(VLC_UDP), [tcp], UDP), undefined);
  assert.equal(
    pickPlayTransport(parseTransport('RTP/AVP;multicast;client_port=5000-5001'), [], UDP),
    undefined,
  );
  assert.equal(
    pickPlayTransport(parseTransport('RTP/SAVP;unicast;client_port=5000-5001'), [], UDP),
    undefined,
  );
});

test('record transport: ffmpeg’s channel pairs are kept; UDP is refused', () => {
  assert.deepEqual(
    pickRecordTransport(parseTransport('RTP/AVP/TCP;unicast;interleaved=2-3;mode=record'), 1),
    {
      lower: 'tcp',
      unicast: true,
      interleaved: [2, 3],
      mode: 'record',
    },
  );
  assert.deepEqual(
    pickRecordTransport(parseTransport('RTP/AVP/TCP;unicast;mode=record'), 1)?.interleaved,
    [2, 3],
  );
  assert.equal(
    pickRecordTransport(parseTransport('RTP/AVP/UDP;unicast;client_port=5000-5001;mode=record'), 0),
    undefined,
  );
});
