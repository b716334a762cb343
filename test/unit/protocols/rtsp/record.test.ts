import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import type { Frame, Tracks } from '../../../../src/media/types.js';
import { RecordState, recordTrackFor } from '../../../../protocols/rtsp/record.js';
import { RtspProtocolError } from '../../../../protocols/rtsp/wire/errors.js';
import { RtspReader, type RtspRequest } from '../../../../protocols/rtsp/wire/message.js';
import { announcedTracks, parseSdp } from '../../../../protocols/rtsp/wire/sdp.js';
import { formatTransport } from '../../../../protocols/rtsp/wire/transport.js';
import { DEFAULT_LIMITS } from '../../../../src/core/limits.js';
import { readerLimits } from '../../../../protocols/rtsp/control.js';

/** What the server reads with by default (src/core/limits.ts). */
const READER_LIMITS = readerLimits(DEFAULT_LIMITS);

const fixtures = new URL('../../../fixtures/rtsp/', import.meta.url);
const capture = readFileSync(new URL('ffmpeg-publish-tcp.bin', fixtures));
const announced = announcedTracks(parseSdp(readFileSync(new URL('ffmpeg-announce.sdp', fixtures), 'utf8')));
const SETUP_VIDEO = 'rtsp://127.0.0.1:18554/live/cam1?token=abc/streamid=0';
const SETUP_AUDIO = 'rtsp://127.0.0.1:18554/live/cam1?token=abc/streamid=1';
const TCP_RECORD = 'RTP/AVP/TCP;unicast;interleaved=0-1;mode=record';

test('record: ffmpeg’s SETUPs, RECORD and 2 s of interleaved media become tracks and 50 pictures', () => {
  const items = new RtspReader(READER_LIMITS).push(capture);
  let record: RecordState | undefined;
  const answers: string[] = [];
  const tracks: Tracks[] = [];
  const frames: Frame[] = [];
  let bytes = 0;
  for (const i of items) {
    if (i.kind === 'request') {
      const r: RtspRequest = i.request;
      if (r.method === 'ANNOUNCE') record = new RecordState(announcedTracks(parseSdp(r.body.toString())));
      if (r.method === 'SETUP' && record) {
        const a = record.setup(r.uri, r.headers.get('transport') ?? '');
        answers.push(a.status === 200 ? formatTransport(a.transport) : String(a.status));
      }
      if (r.method === 'RECORD') assert.equal(record?.record(), true);
    } else if (i.kind === 'interleaved' && record) {
      const got = record.receive(i.channel, i.payload);
      assert.equal(got.kind, 'media');
      if (got.kind !== 'media') continue;
      bytes += got.bytes;
      if (got.tracks) tracks.push(got.tracks);
      frames.push(...got.frames);
    }
  }
  assert.deepEqual(answers, [
    'RTP/AVP/TCP;unicast;interleaved=0-1;mode=record',
    'RTP/AVP/TCP;unicast;interleaved=2-3;mode=record',
  ]);
  assert.equal(record?.started, true);
  assert.equal(tracks.length, 1);
  assert.equal(tracks[0]?.video?.width, 320);
  assert.equal(frames.filter((f) => f.kind === 'video').length, 50);
  assert.ok(frames.some((f) => f.kind === 'audio'));
  assert.ok(bytes > 150_000, `counted ${bytes} bytes`);
});

test('record: nothing is taken before RECORD, nor on a channel no SETUP assigned', () => {
  const record = new RecordState(announced);
  assert.equal(record.record(), false, 'RECORD before any SETUP: 455');
  assert.equal(record.setup(SETUP_VIDEO, TCP_RECORD).status, 200);
  assert.deepEqual(record.receive(0, Buffer.alloc(20, 0x80)), { kind: 'ignored' });
  assert.equal(record.record(), true);
  assert.equal(record.record(), false, 'a second RECORD: 455');
  assert.deepEqual(record.receive(2, Buffer.alloc(20, 0x80)), { kind: 'ignored' }, 'audio was not set up');
  assert.equal(record.setup(SETUP_AUDIO, 'RTP/AVP/TCP;unicast;interleaved=2-3;mode=record').status, 455);
});

test('record: SETUP answers 404 for an unknown track, 461 for UDP or unusable channels, and throws 400 for a malformed header', () => {
  const record = new RecordState(announced);
  assert.equal(record.setup('rtsp://127.0.0.1:18554/live/cam1/streamid=7', TCP_RECORD).status, 404);
  const udpOffer = 'RTP/AVP/UDP;unicast;client_port=5000-5001;mode=record';
  assert.equal(record.setup(SETUP_VIDEO, udpOffer).status, 461, 'no server port pair: 461');
  assert.equal(record.setup(SETUP_VIDEO, 'RTP/AVP/TCP;unicast;interleaved=300-301').status, 461);
  assert.throws(
    () => record.setup(SETUP_VIDEO, 'RTP/AVP/TCP;unicast;interleaved=0-'),
    (e: unknown) => e instanceof RtspProtocolError && e.status === 400,
  );
  assert.equal(record.setup(SETUP_VIDEO, TCP_RECORD).status, 200);
  assert.equal(record.setup(SETUP_AUDIO, TCP_RECORD).status, 461, 'channels 0-1 are the video track’s');
  assert.equal(record.setup(SETUP_VIDEO, TCP_RECORD).status, 200, 'a track may be set up again');
  assert.deepEqual(record.setup(SETUP_AUDIO, 'RTP/AVP/TCP;unicast;mode=record'), {
    status: 200,
    kind: 'audio',
    transport: { lower: 'tcp', unicast: true, interleaved: [2, 3], mode: 'record' },
  });
  assert.equal(
    record.setup(SETUP_AUDIO, udpOffer, { rtpPort: 6000, rtcpPort: 6001 }).status,
    461,
    'every track of a publisher shares its lower transport',
  );
  const udp = new RecordState(announced);
  assert.deepEqual(udp.setup(SETUP_VIDEO, udpOffer, { rtpPort: 6000, rtcpPort: 6001 }), {
    status: 200,
    kind: 'video',
    transport: {
      lower: 'udp',
      unicast: true,
      clientPort: [5000, 5001],
      serverPort: [6000, 6001],
      mode: 'record',
    },
  });
});

test('record: a malformed packet is dropped and counted; only the first few are worth a log line', () => {
  const record = new RecordState(announced);
  record.setup(SETUP_VIDEO, TCP_RECORD);
  record.record();
  const bad = Buffer.from([0x00, 0x60, 0, 1]); // RTP version 0, and short
  const logged = Array.from({ length: 7 }, () => record.receive(0, bad)).map((r) =>
    r.kind === 'malformed' ? r.log : undefined,
  );
  assert.deepEqual(logged, [true, true, true, true, true, false, false]);
  const r = record.receive(0, bad);
  assert.equal(r.kind === 'malformed' && r.bytes, 4, 'its bytes still count for the session');
});

test('recordTrackFor: the SDP control ends the URL; a single track may use the aggregate URL', () => {
  assert.equal(recordTrackFor(SETUP_VIDEO, announced), 'video');
  assert.equal(recordTrackFor(`${SETUP_AUDIO}/`, announced), 'audio');
  assert.equal(recordTrackFor('rtsp://h/live/cam1', announced), undefined);
  const audioOnly = announcedTracks(
    parseSdp(
      [
        'v=0',
        'o=- 0 0 IN IP4 127.0.0.1',
        's=No Name',
        't=0 0',
        'm=audio 0 RTP/AVP 97',
        'a=rtpmap:97 MPEG4-GENERIC/44100/1',
        'a=fmtp:97 profile-level-id=1;mode=AAC-hbr;sizelength=13;indexlength=3;indexdeltalength=3; config=120856E500',
        '',
      ].join('\r\n'),
    ),
  );
  assert.equal(recordTrackFor('rtsp://h/live/cam1', audioOnly), 'audio');
});
