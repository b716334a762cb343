/**
 * RTSP wire layer (protocols/rtsp/wire): the message reader, writer → reader, SDP and the
 * Transport and other header values. The one allowed exception is RtspProtocolError
 * (wire/errors.ts); the connection answers or closes with it.
 */
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { buildAudioSpecificConfig, SAMPLE_RATES } from '../../src/media/aac.js';
import { buildAvcC, parseAvcC } from '../../src/media/h264.js';
import type { Tracks } from '../../src/media/types.js';
import { AacDepacketizer } from '../../protocols/rtsp/wire/aac-rtp.js';
import { RtspProtocolError } from '../../protocols/rtsp/wire/errors.js';
import { parseBasicAuth, parseCSeq, parseSession } from '../../protocols/rtsp/wire/headers.js';
import {
  type RtspItem,
  interleavedHeader,
  reasonPhrase,
  writeRequest,
  writeResponse,
} from '../../protocols/rtsp/wire/message.js';
import { announcedTracks, parseSdp, writeSdp } from '../../protocols/rtsp/wire/sdp.js';
import {
  type TransportSpec,
  formatTransport,
  parseTransport,
  pickPlayTransport,
  pickRecordTransport,
} from '../../protocols/rtsp/wire/transport.js';
import {
  type Chunking,
  assertBounded,
  chunkingArb,
  defineTarget,
  expectNoThrow,
  expectOnly,
  fixture,
  mutated,
  mutatedText,
  pieces,
  prefixOf,
  rawBytes,
  spliced,
  textArb,
  tokenSoup,
  withinBudget,
} from './support.js';
import { newRtspReader, RTSP_MAX_BUFFERED } from './readers.js';

const CAPTURE = fixture('test/fixtures/rtsp/ffmpeg-publish-tcp.bin');
const ANNOUNCE_SDP = fixture('test/fixtures/rtsp/ffmpeg-announce.sdp').toString('utf8');

// ---------------------------------------------------------------------------------------------
// Messages

const METHODS = [
  'OPTIONS',
  'DESCRIBE',
  'ANNOUNCE',
  'SETUP',
  'PLAY',
  'RECORD',
  'PAUSE',
  'TEARDOWN',
  'GET_PARAMETER',
];
const methodArb = fc.oneof(
  { weight: 4, arbitrary: fc.constantFrom(...METHODS) },
  { weight: 1, arbitrary: fc.stringMatching(/^[A-Za-z_]{1,15}$/) },
);
const uriArb = fc.oneof(
  fc.constantFrom('*', 'rtsp://127.0.0.1:8554/live/cam1', 'rtsp://h/live/cam1?token=abc/streamid=0'),
  fc.stringMatching(/^[!-~]{1,80}$/),
);
const headerNameArb = fc
  .oneof(
    fc.constantFrom('CSeq', 'Session', 'Transport', 'User-Agent', 'Range', 'Authorization', 'Content-Type'),
    fc.stringMatching(/^[A-Za-z0-9-]{1,20}$/),
  )
  .filter((n) => n.toLowerCase() !== 'content-length');
const headerValueArb = fc.stringMatching(/^[ -~]{0,60}$/);
const headersArb = fc.array(fc.tuple(headerNameArb, headerValueArb), { maxLength: 8 });

type Written =
  | { kind: 'request'; method: string; uri: string; headers: [string, string][]; body: Buffer }
  | { kind: 'response'; status: number; headers: [string, string][]; body: Buffer }
  | { kind: 'interleaved'; channel: number; payload: Buffer };

const writtenArb: fc.Arbitrary<Written> = fc.oneof(
  fc.record({
    kind: fc.constant('request' as const),
    method: methodArb,
    uri: uriArb,
    headers: headersArb,
    body: fc.oneof(fc.constant(Buffer.alloc(0)), rawBytes(600), fc.constant(Buffer.from(ANNOUNCE_SDP))),
  }),
  fc.record({
    kind: fc.constant('response' as const),
    status: fc.oneof(fc.constantFrom(200, 401, 404, 461), fc.integer({ min: 100, max: 999 })),
    headers: headersArb,
    body: fc.oneof(fc.constant(Buffer.alloc(0)), rawBytes(300)),
  }),
  fc.record({
    kind: fc.constant('interleaved' as const),
    channel: fc.integer({ min: 0, max: 255 }),
    payload: rawBytes(1500),
  }),
);

function write(w: Written): Buffer {
  if (w.kind === 'request') return writeRequest(w.method, w.uri, w.headers, w.body);
  if (w.kind === 'response') return writeResponse(w.status, w.headers, w.body);
  return Buffer.concat([interleavedHeader(w.channel, w.payload.length), w.payload]);
}

/** What the reader should make of a header list: lower-cased names, trimmed values, repeats joined. */
function expectedHeaders(headers: readonly [string, string][], bodyLength: number): Map<string, string> {
  const out = new Map<string, string>();
  for (const [name, value] of headers) {
    const key = name.toLowerCase();
    const prev = out.get(key);
    out.set(key, prev === undefined ? value.trim() : `${prev}, ${value.trim()}`);
  }
  if (bodyLength > 0) out.set('content-length', String(bodyLength));
  return out;
}

function assertItem(item: RtspItem | undefined, w: Written): void {
  assert.ok(item, `missing ${w.kind}`);
  assert.equal(item.kind, w.kind);
  if (item.kind === 'interleaved' && w.kind === 'interleaved') {
    assert.equal(item.channel, w.channel);
    assert.ok(item.payload.equals(w.payload), 'interleaved payload');
  } else if (item.kind === 'request' && w.kind === 'request') {
    assert.equal(item.request.method, w.method.toUpperCase());
    assert.equal(item.request.uri, w.uri);
    assert.deepStrictEqual(item.request.headers, expectedHeaders(w.headers, w.body.length));
    assert.ok(item.request.body.equals(w.body), 'request body');
  } else if (item.kind === 'response' && w.kind === 'response') {
    assert.equal(item.response.status, w.status);
    assert.equal(item.response.reason, reasonPhrase(w.status));
    assert.deepStrictEqual(item.response.headers, expectedHeaders(w.headers, w.body.length));
    assert.ok(item.response.body.equals(w.body), 'response body');
  }
}

function readAll(chunks: readonly Buffer[]): { items: RtspItem[]; refused: boolean } {
  const reader = newRtspReader();
  const items: RtspItem[] = [];
  const done = expectOnly([RtspProtocolError], () => {
    for (const c of chunks) {
      items.push(...reader.push(c));
      assert.ok(reader.buffered <= RTSP_MAX_BUFFERED, `reader holds ${reader.buffered} bytes`);
    }
    return true;
  });
  return { items, refused: done === undefined };
}

function itemBytes(items: readonly RtspItem[]): number {
  return items.reduce(
    (n, it) =>
      n +
      (it.kind === 'interleaved'
        ? it.payload.length
        : it.kind === 'request'
          ? it.request.body.length
          : it.response.body.length),
    0,
  );
}

function sameItems(a: readonly RtspItem[], b: readonly RtspItem[]): void {
  assert.equal(a.length, b.length, 'item count');
  a.forEach((x, i) => {
    const y = b[i] as RtspItem;
    assert.equal(x.kind, y.kind);
    if (x.kind === 'interleaved' && y.kind === 'interleaved') {
      assert.equal(x.channel, y.channel);
      assert.ok(x.payload.equals(y.payload));
    } else {
      assert.deepStrictEqual(x, y);
    }
  });
}

function checkReader(bytes: Buffer, chunking: Chunking): void {
  const chunked = withinBudget(bytes.length, () => readAll(pieces(bytes, chunking)));
  assertBounded('payload and body bytes', itemBytes(chunked.items), bytes.length, 1, 0);
  const whole = readAll([bytes]);
  assert.equal(chunked.refused, whole.refused, 'refusal depends on how the bytes were cut');
  if (!whole.refused) sameItems(chunked.items, whole.items);
}

// ---------------------------------------------------------------------------------------------
// SDP

const SDP_LINES = [
  'v=0',
  'o=- 0 0 IN IP4 127.0.0.1',
  's=x',
  'c=IN IP4 0.0.0.0',
  't=0 0',
  'm=video 0 RTP/AVP 96',
  'm=audio 0 RTP/AVP 97',
  'm=video 0 RTP/AVP',
  'm=audio 0 RTP/AVP 97 98 300 -1',
  'a=rtpmap:96 H264/90000',
  'a=rtpmap:97 MPEG4-GENERIC/44100/2',
  'a=rtpmap:97 mpeg4-generic/0/0',
  'a=rtpmap:96 H264/99999999999999999999',
  'a=fmtp:96 packetization-mode=1;sprop-parameter-sets=Z0LADdoFB+wEQAAAAwBAAAAMo8UKqA==,aM4PyA==',
  'a=fmtp:96 sprop-parameter-sets=Z0LADdo=,aM4PyA==,,=,!!',
  // More SPS than the 5-bit count of an avcC holds.
  `a=fmtp:96 sprop-parameter-sets=${'Z0LADdo=,'.repeat(33)}aM4PyA==`,
  'a=fmtp:97 mode=AAC-hbr;sizelength=13;indexlength=3;indexdeltalength=3;config=1190',
  'a=fmtp:97 sizelength=16;indexlength=-13;indexdeltalength=1e9;config=12',
  'a=fmtp:97 sizelength=0.5;config=f8',
  'a=control:streamid=0',
  'a=control:*',
  'a=control',
  'a=recvonly',
];

function checkSdp(text: string): void {
  withinBudget(text.length, () =>
    expectOnly([RtspProtocolError], () => {
      const desc = parseSdp(text);
      assert.ok(desc.media.length <= 16, `${desc.media.length} media sections`);
      const announced = announcedTracks(desc);
      const config = announced.tracks.video?.config;
      if (config && announced.video?.codec === 'h264') {
        // avcCFromSprop builds a record only from SPS and PPS both present: both must read back.
        const cfg = parseAvcC(config);
        assert.ok(
          cfg && cfg.sps.length > 0 && cfg.pps.length > 0,
          'announcedTracks built an avcC without its SPS or PPS',
        );
      }
      // What ANNOUNCE accepts, the record path must be able to set up.
      const audio = announced.audio;
      if (audio?.format === 'mpeg4-generic') expectNoThrow(() => new AacDepacketizer(audio));
    }),
  );
}

const nalArb = (type: number, maxLength: number): fc.Arbitrary<Buffer> =>
  rawBytes(maxLength).map((b) => Buffer.concat([Buffer.of(0x60 | type), b]));

/** Tracks as our own muxers produce them, so the SDP must carry them unchanged. */
const sdpTracksArb: fc.Arbitrary<Tracks> = fc
  .record({
    video: fc.option(
      fc.record({
        sps: fc.array(
          fc.oneof(nalArb(7, 40), fc.constant(Buffer.from('Z0LADdoFB+wEQAAAAwBAAAAMo8UKqA==', 'base64'))),
          {
            minLength: 1,
            maxLength: 3,
          },
        ),
        pps: fc.array(nalArb(8, 10), { minLength: 1, maxLength: 3 }),
      }),
    ),
    audio: fc.option(
      fc.record({
        objectType: fc.oneof(
          fc.constantFrom(1, 2, 3, 4, 30),
          fc.integer({ min: 6, max: 28 }),
          fc.integer({ min: 32, max: 95 }),
        ),
        rate: fc.oneof(
          fc.integer({ min: 0, max: 12 }).map((i) => ({ index: i, rate: SAMPLE_RATES[i] as number })),
          fc.integer({ min: 1, max: 0xffffff }).map((rate) => ({ index: 15, rate })),
        ),
        channels: fc.constantFrom(1, 2, 3, 4, 5, 6, 8),
      }),
    ),
  })
  .map(({ video, audio }) => {
    const tracks: Tracks = {};
    if (video) tracks.video = { kind: 'video', codec: 'h264', config: buildAvcC(video.sps, video.pps) };
    if (audio) {
      const config = buildAudioSpecificConfig({
        objectType: audio.objectType,
        sampleRateIndex: audio.rate.index,
        sampleRate: audio.rate.rate,
        channels: audio.channels,
      });
      tracks.audio = {
        kind: 'audio',
        codec: 'aac',
        config,
        sampleRate: audio.rate.rate,
        channels: audio.channels,
      };
    }
    return tracks;
  });

const sdpTextArb = fc.oneof(
  { weight: 3, arbitrary: mutatedText(fc.constant(ANNOUNCE_SDP)) },
  { weight: 3, arbitrary: mutatedText(sdpTracksArb.map((t) => writeSdp(t))) },
  { weight: 3, arbitrary: tokenSoup(SDP_LINES, ['\r\n', '\n', '\r\n\r\n', ' ', ';']) },
  {
    weight: 1,
    arbitrary: fc
      .tuple(tokenSoup(SDP_LINES, ['\r\n']), textArb('v=0amc:; /\r\n0123456789HMPEG4-GENERIC', 200))
      .map(([a, b]) => `v=0\r\n${a}${b}`),
  },
  { weight: 1, arbitrary: textArb('v=0\r\nam:=;/ 96', 300) },
);

// ---------------------------------------------------------------------------------------------
// Header values

const TRANSPORT_PARTS = [
  'RTP/AVP',
  'RTP/AVP/TCP',
  'RTP/AVP/UDP',
  'RTP/SAVP',
  'unicast',
  'multicast',
  'interleaved=0-1',
  'interleaved=254-255',
  'interleaved=255',
  'interleaved=99999999999999999999',
  'interleaved=',
  'client_port=5000-5001',
  'client_port=65535',
  'server_port=1-2',
  'mode=record',
  'mode="RECORD"',
  'mode=receive',
  'ssrc=DEADBEEF',
  'ssrc=123456789',
  'ttl=127',
  'destination=1.2.3.4',
];

const transportSpecArb: fc.Arbitrary<TransportSpec> = fc
  .record({
    lower: fc.constantFrom('tcp' as const, 'udp' as const),
    unicast: fc.boolean(),
    // Only what parseTransport accepts round-trips: consecutive channels, even RTP ports with RTCP next.
    interleaved: fc.option(fc.integer({ min: 0, max: 254 }).map((c) => [c, c + 1] as const)),
    clientPort: fc.option(fc.integer({ min: 1, max: 32767 }).map((p) => [2 * p, 2 * p + 1] as const)),
    serverPort: fc.option(fc.integer({ min: 1, max: 32767 }).map((p) => [2 * p, 2 * p + 1] as const)),
    mode: fc.option(fc.constant('record' as const)),
    ssrc: fc.option(fc.nat({ max: 0xffffffff })),
  })
  .map((r) => {
    const t: {
      -readonly [K in keyof TransportSpec]: TransportSpec[K];
    } = { lower: r.lower, unicast: r.unicast };
    if (r.interleaved) t.interleaved = r.interleaved;
    if (r.clientPort) t.clientPort = r.clientPort;
    if (r.serverPort) t.serverPort = r.serverPort;
    if (r.mode) t.mode = r.mode;
    if (r.ssrc !== null) t.ssrc = r.ssrc;
    return t;
  });

function checkHeaderValue(value: string): void {
  withinBudget(value.length, () => {
    const offers = expectOnly([RtspProtocolError], () => parseTransport(value));
    if (offers) {
      expectNoThrow(() => {
        const play = pickPlayTransport(offers, offers.slice(0, 1), { rtpPort: 6000, rtcpPort: 6001 });
        const record = pickRecordTransport(offers, []);
        for (const t of [play, record]) if (t) parseTransport(formatTransport(t));
      });
    }
    expectNoThrow(() => [parseSession(value), parseCSeq(value), parseBasicAuth(value)]);
  });
}

export const rtspTargets = [
  defineTarget({
    name: 'rtsp-reader',
    property:
      'RtspReader: any bytes in any slicing → only RtspProtocolError, same items as one push, holds ≤ head+body limit, bounded CPU',
    arbitrary: fc.record({
      bytes: (() => {
        const valid = fc.oneof(
          prefixOf(CAPTURE, 30_000),
          fc.array(writtenArb, { minLength: 1, maxLength: 6 }).map((ws) => Buffer.concat(ws.map(write))),
        );
        return fc.oneof(
          { weight: 1, arbitrary: rawBytes(600) },
          { weight: 2, arbitrary: valid },
          { weight: 6, arbitrary: mutated(valid) },
          { weight: 2, arbitrary: spliced(valid, valid) },
        );
      })(),
      chunking: chunkingArb,
    }),
    check: ({ bytes, chunking }) => checkReader(bytes, chunking),
    unitRuns: 150,
    replay: (file) => checkReader(file, { every: 5 }),
  }),
  defineTarget({
    name: 'rtsp-message-roundtrip',
    property:
      'writeRequest/writeResponse/interleavedHeader → RtspReader in any slicing gives every message back',
    arbitrary: fc.record({
      written: fc.array(writtenArb, { minLength: 1, maxLength: 6 }),
      chunking: chunkingArb,
    }),
    check: ({ written, chunking }) => {
      const bytes = Buffer.concat(written.map(write));
      const { items, refused } = readAll(pieces(bytes, chunking));
      assert.ok(!refused, 'the reader refused what the writers wrote');
      assert.equal(items.length, written.length, 'item count');
      written.forEach((w, i) => assertItem(items[i], w));
    },
  }),
  defineTarget({
    name: 'sdp-parse',
    property:
      'parseSdp + announcedTracks: any text → only RtspProtocolError; a built avcC parses; accepted AAC fmtp sets up a depacketizer',
    arbitrary: sdpTextArb,
    check: checkSdp,
    replay: (file) => checkSdp(file.toString('utf8')),
  }),
  defineTarget({
    name: 'sdp-roundtrip',
    property:
      'writeSdp(tracks) → parseSdp → announcedTracks gives the H.264/AAC tracks, payload types and controls back',
    arbitrary: fc.record({
      tracks: sdpTracksArb.filter((t) => t.video !== undefined || t.audio !== undefined),
      origin: fc.constantFrom('127.0.0.1', '::1', '10.0.0.7'),
      sessionId: fc.nat(),
    }),
    check: ({ tracks, origin, sessionId }) => {
      const announced = announcedTracks(parseSdp(writeSdp(tracks, { origin, sessionId })));
      assert.deepStrictEqual(announced.tracks, tracks);
      assert.deepStrictEqual(announced.ignored, []);
      assert.deepStrictEqual(announced.unsupported, []);
      if (tracks.video) {
        assert.deepStrictEqual(announced.video, {
          payloadType: 96,
          clockRate: 90000,
          control: 'trackID=0',
          codec: 'h264',
        });
      }
      if (tracks.audio) {
        assert.deepStrictEqual(announced.audio, {
          payloadType: 97,
          clockRate: tracks.audio.sampleRate,
          control: 'trackID=1',
          format: 'mpeg4-generic',
          sizeLength: 13,
          indexLength: 3,
          indexDeltaLength: 3,
        });
      }
    },
  }),
  defineTarget({
    name: 'rtsp-headers',
    property:
      'parseTransport: any text → only RtspProtocolError (461), formatTransport → parseTransport round-trips; Session/CSeq/Basic never throw',
    arbitrary: fc.oneof(
      { weight: 3, arbitrary: tokenSoup(TRANSPORT_PARTS, [';', ',', ' ;', ';;']) },
      {
        weight: 2,
        arbitrary: mutatedText(fc.constant('RTP/AVP/TCP;unicast;interleaved=0-1;mode=record'), 'latin1'),
      },
      { weight: 1, arbitrary: textArb('RTP/AVPTCUD;,=-0123456789 "', 120) },
      { weight: 1, arbitrary: textArb('Basic dXNlcjpwYXNz=:; ', 80) },
      { weight: 2, arbitrary: transportSpecArb.map((t) => formatTransport(t)) },
    ),
    check: (value) => {
      checkHeaderValue(value);
    },
  }),
  defineTarget({
    name: 'rtsp-transport-roundtrip',
    property: 'parseTransport(formatTransport(t)) = [t] for every unicast/multicast TCP/UDP spec',
    arbitrary: transportSpecArb,
    check: (t) => {
      assert.deepStrictEqual(parseTransport(formatTransport(t)), [t]);
    },
  }),
];
