import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { buildAudioSpecificConfig } from '../../../../src/media/aac.js';
import { buildAvcC, parseAvcC } from '../../../../src/media/h264.js';
import type { Tracks } from '../../../../src/media/types.js';
import { RtspProtocolError } from '../../../../protocols/rtsp/wire/errors.js';
import { announcedTracks, avcCFromSprop, parseSdp, writeSdp } from '../../../../protocols/rtsp/wire/sdp.js';

const ffmpegSdp = readFileSync(
  new URL('../../../fixtures/rtsp/ffmpeg-announce.sdp', import.meta.url),
  'utf8',
);

test('sdp: the ANNOUNCE ffmpeg 5.1 sends maps to H.264 + AAC tracks', () => {
  const a = announcedTracks(parseSdp(ffmpegSdp));
  assert.deepEqual(a.video, { payloadType: 96, clockRate: 90000, control: 'streamid=0', codec: 'h264' });
  assert.deepEqual(a.audio, {
    payloadType: 97,
    clockRate: 44100,
    control: 'streamid=1',
    format: 'mpeg4-generic',
    sizeLength: 13,
    indexLength: 3,
    indexDeltaLength: 3,
  });
  const cfg = parseAvcC(a.tracks.video?.config ?? Buffer.alloc(0));
  assert.equal(cfg?.sps[0]?.toString('base64'), 'Z0LADdoFB+wEQAAAAwBAAAAMo8UKqA==');
  assert.equal(cfg?.pps[0]?.toString('base64'), 'aM4PyA==');
  assert.deepEqual(
    { ...a.tracks.audio, config: a.tracks.audio?.config.toString('hex') },
    { kind: 'audio', codec: 'aac', config: '120856e500', sampleRate: 44100, channels: 1 },
  );
  assert.deepEqual(a.ignored, []);
  assert.deepEqual(a.unsupported, []);
});

test('sdp: write → read round trip keeps the codec parameters', () => {
  const sps = Buffer.from('6764001facd9405005bb011000000300100000030320f18319', 'hex');
  const pps = Buffer.from('68ebe3cb22c0', 'hex');
  const tracks: Tracks = {
    video: { kind: 'video', codec: 'h264', config: buildAvcC([sps], [pps]) },
    audio: {
      kind: 'audio',
      codec: 'aac',
      config: buildAudioSpecificConfig({ objectType: 2, sampleRate: 48000, channels: 2 }),
      sampleRate: 48000,
      channels: 2,
    },
  };
  const text = writeSdp(tracks, { origin: '10.0.0.1', sessionId: 5 });
  assert.match(text, /^v=0\r\no=- 5 0 IN IP4 10\.0\.0\.1\r\n/);
  assert.match(text, /a=rtpmap:96 H264\/90000\r\n/);
  assert.match(text, /a=fmtp:96 packetization-mode=1;sprop-parameter-sets=[^;]+;profile-level-id=64001F\r\n/);
  assert.match(text, /a=rtpmap:97 MPEG4-GENERIC\/48000\/2\r\n/);
  assert.match(text, /config=1190\r\n/);
  assert.match(text, /a=control:trackID=0\r\n[\s\S]*a=control:trackID=1\r\n/);
  const back = announcedTracks(parseSdp(text));
  assert.deepEqual(back.tracks.video?.config, tracks.video?.config);
  assert.deepEqual(back.tracks.audio, tracks.audio);
  assert.equal(back.video?.control, 'trackID=0');
});

test('sdp: codecs we cannot carry are listed by name; no media at all is a 415; not SDP is a 400', () => {
  const vp8 =
    'v=0\r\nm=video 0 RTP/AVP 96\r\na=rtpmap:96 VP8/90000\r\nm=audio 0 RTP/AVP 97\r\na=rtpmap:97 opus/48000/2\r\n';
  const a = announcedTracks(parseSdp(vp8));
  assert.deepEqual(a.unsupported, ['video/VP8']);
  assert.equal(a.audio?.format, 'opus');
  const twoVideos = `${ffmpegSdp}m=video 0 RTP/AVP 98\r\na=rtpmap:98 H264/90000\r\n`;
  assert.deepEqual(announcedTracks(parseSdp(twoVideos)).unsupported, ['video/H264 (a second video track)']);
  const don = 'v=0\r\nm=video 0 RTP/AVP 96\r\na=rtpmap:96 H265/90000\r\na=fmtp:96 sprop-max-don-diff=2\r\n';
  assert.match(announcedTracks(parseSdp(don)).unsupported[0] ?? '', /^video\/H265 \(sprop-max-don-diff/);
  assert.throws(
    () => announcedTracks(parseSdp('v=0\r\ns=nothing\r\n')),
    (e: unknown) => e instanceof RtspProtocolError && e.status === 415,
  );
  assert.throws(
    () => parseSdp('hello'),
    (e: unknown) => e instanceof RtspProtocolError && e.status === 400,
  );
  const mixed = `${ffmpegSdp}m=application 0 RTP/AVP 98\r\na=rtpmap:98 t140/1000\r\n`;
  assert.deepEqual(announcedTracks(parseSdp(mixed)).ignored, ['application/T140']);
  assert.deepEqual(announcedTracks(parseSdp(mixed)).unsupported, []);
});

test('sdp: sprop-parameter-sets without a PPS gives no config (wait for in-band)', () => {
  assert.equal(avcCFromSprop('Z0LADdoFB+wEQAAAAwBAAAAMo8UKqA=='), undefined);
  assert.equal(avcCFromSprop(undefined), undefined);
});
