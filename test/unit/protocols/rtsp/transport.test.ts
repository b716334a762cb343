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

const UDP = { rtpPort: 8000, rtcpPort: 8001 };

/**
 * What a client may offer, and what becomes of it: served (the parsed ports or channels),
 * left out (the SETUP is answered 461 when nothing is left) or malformed (400).
 * ffmpeg, GStreamer and VLC (live555) bind an even RTP port with RTCP on the next one and
 * offer both; RFC 2326 also allows a single port, which is RTP (RTCP on the next).
 */
const validation: { offer: string; expect: readonly [number, number] | 'left out' | 400 }[] = [
  { offer: 'client_port=19372-19373', expect: [19372, 19373] },
  { offer: 'client_port=5000', expect: [5000, 5001] },
  { offer: 'client_port=5001', expect: [5001, 5002] },
  { offer: 'client_port=65534-65535', expect: [65534, 65535] },
  { offer: 'client_port=2-3', expect: [2, 3] },
  { offer: 'client_port=0-1', expect: 'left out' },
  { offer: 'client_port=0', expect: 'left out' },
  { offer: 'client_port=1-2', expect: 'left out' },
  { offer: 'client_port=5001-5002', expect: 'left out' },
  { offer: 'client_port=5000-5002', expect: 'left out' },
  { offer: 'client_port=5000-4999', expect: 'left out' },
  { offer: 'client_port=5000-5000', expect: 'left out' },
  { offer: 'client_port=65535', expect: 'left out' },
  { offer: 'client_port=65536-65537', expect: 'left out' },
  { offer: 'client_port=70000-70001', expect: 'left out' },
  { offer: 'client_port=99999999999999999999-1', expect: 'left out' },
  { offer: 'client_port=abc', expect: 400 },
  { offer: 'client_port=', expect: 400 },
  { offer: 'client_port', expect: 400 },
  { offer: 'client_port=-5000', expect: 400 },
  { offer: 'client_port=5000-5001-5002', expect: 400 },
  { offer: 'client_port=5000-', expect: 400 },
  { offer: 'client_port=0x1388', expect: 400 },
  { offer: 'interleaved=0-1', expect: [0, 1] },
  { offer: 'interleaved=2-3', expect: [2, 3] },
  { offer: 'interleaved=1-2', expect: [1, 2] },
  { offer: 'interleaved=4', expect: [4, 5] },
  { offer: 'interleaved=254-255', expect: [254, 255] },
  { offer: 'interleaved=255', expect: 'left out' },
  { offer: 'interleaved=256-257', expect: 'left out' },
  { offer: 'interleaved=0-2', expect: 'left out' },
  { offer: 'interleaved=1-0', expect: 'left out' },
  { offer: 'interleaved=x', expect: 400 },
  { offer: 'interleaved=0-1-2', expect: 400 },
];

for (const c of validation) {
  const udp = c.offer.startsWith('client_port');
  const header = `${udp ? 'RTP/AVP' : 'RTP/AVP/TCP'};unicast;${c.offer}`;
  const expect = c.expect;
  test(`transport validation: ${c.offer} → ${Array.isArray(expect) ? 'served' : String(expect)}`, () => {
    if (expect === 400) {
      assert.throws(
        () => parseTransport(header),
        (e: unknown) => e instanceof RtspProtocolError && e.status === 400,
      );
      return;
    }
    const offers = parseTransport(header);
    if (expect === 'left out') {
      assert.deepEqual(offers, []);
      assert.equal(pickPlayTransport(offers, [], UDP), undefined, 'the SETUP is answered 461');
      return;
    }
    assert.deepEqual(offers, [
      udp
        ? { lower: 'udp', unicast: true, clientPort: expect }
        : { lower: 'tcp', unicast: true, interleaved: expect },
    ]);
  });
}

test('transport validation: an offer left out does not spoil the next one', () => {
  const offers = parseTransport('RTP/AVP;unicast;client_port=0-1, RTP/AVP/TCP;unicast;interleaved=0-1');
  assert.deepEqual(offers, [{ lower: 'tcp', unicast: true, interleaved: [0, 1] }]);
  assert.deepEqual(pickPlayTransport(offers, [], UDP)?.lower, 'tcp');
});

test('transport validation: a second track may not take the first one’s channels', () => {
  const video: TransportSpec = { lower: 'tcp', unicast: true, interleaved: [0, 1] };
  assert.equal(
    pickPlayTransport(parseTransport('RTP/AVP/TCP;unicast;interleaved=0-1'), [video], UDP),
    undefined,
  );
  assert.equal(
    pickPlayTransport(parseTransport('RTP/AVP/TCP;unicast;interleaved=1-2'), [video], UDP),
    undefined,
  );
  assert.deepEqual(
    pickPlayTransport(parseTransport('RTP/AVP/TCP;unicast;interleaved=2-3'), [video], UDP)?.interleaved,
    [2, 3],
  );
  const last: TransportSpec = { lower: 'tcp', unicast: true, interleaved: [254, 255] };
  assert.equal(
    pickPlayTransport(parseTransport('RTP/AVP/TCP;unicast'), [last], UDP),
    undefined,
    'no pair left after 254-255',
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

const VIDEO_0_1: TransportSpec = { lower: 'tcp', unicast: true, interleaved: [0, 1], mode: 'record' };

test('record transport: ffmpeg’s channel pairs are kept; UDP is refused', () => {
  assert.deepEqual(
    pickRecordTransport(parseTransport('RTP/AVP/TCP;unicast;interleaved=2-3;mode=record'), [VIDEO_0_1]),
    {
      lower: 'tcp',
      unicast: true,
      interleaved: [2, 3],
      mode: 'record',
    },
  );
  assert.deepEqual(
    pickRecordTransport(parseTransport('RTP/AVP/TCP;unicast;mode=record'), [VIDEO_0_1])?.interleaved,
    [2, 3],
  );
  assert.equal(
    pickRecordTransport(parseTransport('RTP/AVP/UDP;unicast;client_port=5000-5001;mode=record'), []),
    undefined,
  );
});
