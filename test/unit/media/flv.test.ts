import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { decodeAmf0 } from '../../../src/media/amf0.js';
import {
  FLV_HEADER,
  FlvError,
  FlvReader,
  FlvToFrames,
  audioSequenceHeader,
  audioTagBody,
  encodeFlvTag,
  flvTimestamp,
  onMetaData,
  videoSequenceHeader,
  videoTagBody,
} from '../../../src/media/flv.js';
import type { FlvTag } from '../../../src/media/flv.js';
import type { AudioTrack, Frame, VideoTrack } from '../../../src/media/types.js';

function hex(text: string): Buffer {
  return Buffer.from(text.replace(/\s+/g, ''), 'hex');
}

/** Small seeded PRNG (mulberry32) so failures reproduce. */
function prng(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function pushInSlices(reader: FlvReader, bytes: Buffer, nextSize: () => number): FlvTag[] {
  const tags: FlvTag[] = [];
  for (let pos = 0; pos < bytes.length;) {
    const end = Math.min(bytes.length, pos + nextSize());
    tags.push(...reader.push(bytes.subarray(pos, end)));
    pos = end;
  }
  return tags;
}

const fixture = readFileSync(new URL('../../fixtures/flv/h264-aac-1s.flv', import.meta.url));

/** avcC records from ffmpeg/libx264: 1080p High (cropped from 1088) and 1278x718 High 4:2:2. */
const AVCC_1080P = hex(
  '01640028ffe1001b67640028acd940780227e5c044000003000400000300c83c60c65801000668ebe3cb22c0fdf8f800',
);
const AVCC_422_ODD = hex(
  '017a001fffe1001f677a001fbcd9405005beafff0669066b1000000300100000030320f183196001000668ebe3cb22c0fef8f800',
);

const h264Track: VideoTrack = { kind: 'video', codec: 'h264', config: AVCC_1080P, width: 1920, height: 1080 };
const aacTrack: AudioTrack = {
  kind: 'audio',
  codec: 'aac',
  config: hex('1210'),
  sampleRate: 44100,
  channels: 2,
};

test('flv reader: ffmpeg 1 s file parses into metadata, sequence headers and 60 media tags', () => {
  const tags = new FlvReader().push(fixture);
  assert.equal(tags[0]?.type, 18);
  assert.equal(decodeAmf0(tags[0]?.data ?? Buffer.alloc(0))[0], 'onMetaData');
  assert.equal(tags.filter((t) => t.type === 9).length, 17, '15 frames + sequence header + end of sequence');
  assert.equal(tags.filter((t) => t.type === 8).length, 46, '45 frames + sequence header');
  const timestamps = tags.filter((t) => t.type === 9).map((t) => t.timestamp);
  assert.deepEqual(
    timestamps,
    [...timestamps].sort((a, b) => a - b),
  );
});

test('flv reader: random slices and single bytes give the same tags as one push', () => {
  const expected = new FlvReader().push(fixture);
  const random = prng(1234);
  for (let round = 0; round < 10; round++) {
    assert.deepEqual(
      pushInSlices(new FlvReader(), fixture, () => 1 + Math.floor(random() * 5000)),
      expected,
    );
  }
  assert.deepEqual(
    pushInSlices(new FlvReader(), fixture, () => 1),
    expected,
  );
});

test('flv reader + FlvToFrames: the fixture yields 160x120 H.264, 44.1 kHz mono AAC and keyframe-first video', () => {
  const demux = new FlvToFrames();
  const frames: Frame[] = [];
  let trackChanges = 0;
  for (const tag of new FlvReader().push(fixture)) {
    const result =
      tag.type === 9
        ? demux.video(tag.timestamp, tag.data)
        : tag.type === 8
          ? demux.audio(tag.timestamp, tag.data)
          : {};
    if (result.tracks) trackChanges++;
    if (result.frame) frames.push(result.frame);
  }
  const { video, audio } = demux.currentTracks();
  assert.equal(trackChanges, 2);
  assert.deepEqual([video?.codec, video?.width, video?.height], ['h264', 160, 120]);
  assert.deepEqual([audio?.codec, audio?.sampleRate, audio?.channels], ['aac', 44100, 1]);
  const videoFrames = frames.filter((f) => f.kind === 'video');
  assert.equal(videoFrames.length, 15);
  assert.equal(videoFrames[0]?.keyframe, true);
  assert.equal(videoFrames.filter((f) => f.keyframe).length, 1);
  assert.equal(frames.filter((f) => f.kind === 'audio').length, 45);
  // AVCC: the first NAL unit's 4-byte length fits inside the frame.
  const first = videoFrames[0]?.data ?? Buffer.alloc(0);
  assert.ok(first.readUInt32BE(0) + 4 <= first.length);
});

test('flv writer: FLV_HEADER + encodeFlvTag round-trips through FlvReader, extended timestamp included', () => {
  const tags: FlvTag[] = [
    { type: 18, timestamp: 0, data: onMetaData({ video: h264Track }) },
    { type: 9, timestamp: 40, data: hex('1701000000aabb') },
    { type: 8, timestamp: 0x12345678, data: hex('af01cc') },
  ];
  const bytes = Buffer.concat([FLV_HEADER, ...tags.map((t) => encodeFlvTag(t.type, t.timestamp, t.data))]);
  assert.deepEqual(new FlvReader().push(bytes), tags);
  const tag = encodeFlvTag(8, 0x12345678, hex('af01cc'));
  assert.equal(tag.subarray(4, 8).toString('hex'), '34567812', '24-bit timestamp then its upper byte');
});

const readerErrors: { name: string; bytes: Buffer; maxTagBytes?: number }[] = [
  { name: 'bad signature', bytes: hex('464c5801050000000900000000') },
  { name: 'bad version', bytes: hex('464c5602050000000900000000') },
  { name: 'huge header offset (rejected before buffering it)', bytes: hex('464c5601 05 ffffffff') },
  { name: 'unknown tag type', bytes: Buffer.concat([FLV_HEADER, hex('07 000000 000000 00 000000')]) },
  {
    name: 'encrypted tag (filter bit)',
    bytes: Buffer.concat([FLV_HEADER, hex('29 000000 000000 00 000000')]),
  },
  { name: 'non-zero stream id', bytes: Buffer.concat([FLV_HEADER, hex('09 000000 000000 00 000001')]) },
  {
    name: 'wrong PreviousTagSize',
    bytes: Buffer.concat([FLV_HEADER, hex('09 000001 000000 00 000000 17 00000011')]),
  },
  {
    name: 'tag over maxTagBytes',
    bytes: Buffer.concat([FLV_HEADER, hex('09 000401 000000 00 000000')]),
    maxTagBytes: 1024,
  },
];

for (const c of readerErrors) {
  test(`flv reader: ${c.name} throws FlvError`, () => {
    assert.throws(() => new FlvReader({ maxTagBytes: c.maxTagBytes }).push(c.bytes), FlvError);
  });
}

test('flv demux: sequence header, then frames with signed composition time', () => {
  const demux = new FlvToFrames();
  const configResult = demux.video(0, videoSequenceHeader(h264Track));
  assert.deepEqual(configResult.tracks?.video, h264Track);
  assert.deepEqual(demux.video(0, videoSequenceHeader(h264Track)), {}, 'an unchanged config is not a change');
  assert.deepEqual(demux.video(1000, hex('17 01 000050 00000001 65')).frame, {
    kind: 'video',
    dts: 90_000,
    pts: 90_000 + 80 * 90,
    keyframe: true,
    data: hex('00000001 65'),
  });
  // −40 ms read as signed (not 16 777 176 ms), then held at pts = dts by the Frame contract.
  const negative = demux.video(1040, hex('27 01 ffffd8 00000001 41')).frame;
  assert.equal(negative?.pts, 1040 * 90);
  assert.equal(negative?.keyframe, false);
  assert.deepEqual(demux.video(1080, hex('17 02 000000')), {}, 'end of sequence');
});

test('flv demux: AAC config then raw frames', () => {
  const demux = new FlvToFrames();
  assert.deepEqual(demux.audio(0, hex('af 00 1210')).tracks?.audio, aacTrack);
  assert.deepEqual(demux.audio(23, hex('af 01 2110')).frame, {
    kind: 'audio',
    dts: 23 * 90,
    pts: 23 * 90,
    keyframe: true,
    data: hex('2110'),
  });
});

test('flv demux: media before its sequence header, other codecs and short bodies return {}', () => {
  const demux = new FlvToFrames();
  const ignored = [
    demux.video(0, hex('17 01 000000 00000001 65')),
    demux.audio(0, hex('af 01 2110')),
    demux.video(0, Buffer.alloc(0)),
    demux.video(0, hex('17 00')),
    demux.video(0, hex('14 00 000000 0102')), // VP6
    demux.video(0, hex('57 00')), // video info/command frame
    demux.video(0, hex('17 00 000000 02')), // avcC with a wrong version
    demux.audio(0, hex('2f 0102')), // MP3
    demux.audio(0, hex('af')),
    demux.audio(0, hex('af 00 17')), // truncated AudioSpecificConfig
    demux.video(0, hex('90 61763031')), // enhanced AV1 with an empty av1C
  ];
  // Nothing reaches the bus; an unsupported codec is named once, for the publisher's log.
  for (const result of ignored) assert.equal(result.tracks ?? result.frame, undefined);
  assert.deepEqual(
    ignored.flatMap((r) => (r.notice ? [r.notice] : [])),
    [
      'video codec id 4 is not supported; its frames are dropped',
      'audio sound format 2 is not supported; its frames are dropped',
    ],
  );
  assert.deepEqual(demux.video(0, hex('14 00 000000 0102')), {}, 'the same notice only once');
});

test('flv demux: AudioSpecificConfig sample rate and channels, including both escapes', () => {
  const audioTrackOf = (asc: string): [number?, number?] => {
    const audio = new FlvToFrames().audio(0, Buffer.concat([hex('af 00'), hex(asc)])).tracks?.audio;
    return [audio?.sampleRate, audio?.channels];
  };
  assert.deepEqual(audioTrackOf('1210'), [44100, 2]);
  assert.deepEqual(audioTrackOf('1188'), [48000, 1]);
  assert.deepEqual(audioTrackOf('17802b1110'), [22050, 2], '0xF explicit frequency');
  assert.deepEqual(audioTrackOf('f94820'), [44100, 1], 'object type escape 31');
  assert.deepEqual(audioTrackOf('16'), [undefined, undefined], 'reserved frequency index 13');
  // channelConfiguration 0 (layout in a PCE): fall back to the FLV SoundType bit.
  assert.deepEqual(new FlvToFrames().audio(0, hex('ae 00 1200')).tracks?.audio?.channels, 1);
});

test('flv demux: SPS dimensions apply frame cropping and 4:2:2 crop units', () => {
  const sizeOf = (avcC: Buffer): [number?, number?] => {
    const video = new FlvToFrames().video(0, Buffer.concat([hex('17 00 000000'), avcC])).tracks?.video;
    return [video?.width, video?.height];
  };
  assert.deepEqual(sizeOf(AVCC_1080P), [1920, 1080]);
  assert.deepEqual(sizeOf(AVCC_422_ODD), [1278, 718]);
  assert.deepEqual(
    sizeOf(AVCC_1080P.subarray(0, 12)),
    [undefined, undefined],
    'truncated SPS: track without size',
  );
});

test('flv mux: tag bodies round-trip through FlvToFrames', () => {
  const demux = new FlvToFrames();
  demux.video(0, videoSequenceHeader(h264Track));
  demux.audio(0, audioSequenceHeader(aacTrack));
  const videoFrame: Frame = {
    kind: 'video',
    dts: 9000,
    pts: 12600,
    keyframe: false,
    data: hex('00000002 4101'),
  };
  assert.deepEqual(demux.video(flvTimestamp(videoFrame.dts), videoTagBody(videoFrame)).frame, videoFrame);
  const audioFrame: Frame = { kind: 'audio', dts: 2070, pts: 2070, keyframe: true, data: hex('21100000') };
  assert.deepEqual(
    demux.audio(flvTimestamp(audioFrame.dts), audioTagBody(audioFrame, aacTrack)).frame,
    audioFrame,
  );
  assert.equal(audioSequenceHeader(aacTrack)[0], 0xaf);
});

test('flv mux: H.265 uses Enhanced RTMP hvc1 and round-trips', () => {
  const hvcC = Buffer.concat([Buffer.of(1), Buffer.alloc(22, 0)]);
  const track: VideoTrack = { kind: 'video', codec: 'h265', config: hvcC };
  const header = videoSequenceHeader(track);
  assert.equal(header.subarray(0, 5).toString('hex'), '90' + Buffer.from('hvc1').toString('hex'));
  const demux = new FlvToFrames();
  assert.deepEqual(demux.video(0, header).tracks?.video, track);
  for (const frame of [
    { kind: 'video', dts: 0, pts: 0, keyframe: true, data: hex('00000002 2601') },
    { kind: 'video', dts: 3600, pts: 7200, keyframe: false, data: hex('00000002 0201') },
  ] satisfies Frame[]) {
    assert.deepEqual(demux.video(flvTimestamp(frame.dts), videoTagBody(frame, 'h265')).frame, frame);
  }
});

test('flv mux: onMetaData is an AMF0 string and ECMA array', () => {
  const decoded = decodeAmf0(onMetaData({ video: h264Track, audio: aacTrack }));
  assert.deepEqual(decoded, [
    'onMetaData',
    {
      width: 1920,
      height: 1080,
      videocodecid: 7,
      audiocodecid: 10,
      audiosamplerate: 44100,
      audiosamplesize: 16,
      stereo: true,
    },
  ]);
  assert.equal(onMetaData({ audio: aacTrack })[13], 0x08);
});

test('flv: flvTimestamp rounds 90 kHz to milliseconds', () => {
  assert.equal(flvTimestamp(0), 0);
  assert.equal(flvTimestamp(90), 1);
  assert.equal(flvTimestamp(3003), 33);
  assert.equal(flvTimestamp(3015), 34);
});

test('flv: random bytes make FlvReader throw only FlvError and FlvToFrames never throw', () => {
  const random = prng(0xf1f1);
  const seed = fixture.subarray(0, 6000);
  const tagBodies = new FlvReader().push(fixture).map((t) => t.data.subarray(0, 64));
  for (let i = 0; i < 2000; i++) {
    let input: Buffer;
    if (i % 3 === 0) {
      input = Buffer.concat([
        FLV_HEADER,
        Buffer.from(Array.from({ length: Math.floor(random() * 100) }, () => Math.floor(random() * 256))),
      ]);
    } else if (i % 3 === 1) {
      input = seed.subarray(0, Math.floor(random() * seed.length));
    } else {
      input = Buffer.from(seed);
      for (let k = 0; k < 3; k++) input[Math.floor(random() * input.length)] = Math.floor(random() * 256);
    }
    try {
      pushInSlices(new FlvReader(), input, () => 1 + Math.floor(random() * 500));
    } catch (error) {
      assert.ok(error instanceof FlvError, `input ${i} threw ${String(error)}`);
    }
    const body = Buffer.from(tagBodies[i % tagBodies.length] ?? Buffer.alloc(0));
    const cut = body.subarray(0, Math.floor(random() * (body.length + 1)));
    if (cut.length > 0 && i % 2 === 0) cut[Math.floor(random() * cut.length)] = Math.floor(random() * 256);
    const demux = new FlvToFrames();
    demux.video(0, cut);
    demux.audio(0, cut);
  }
});
