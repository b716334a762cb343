/**
 * FLV (src/media/flv.ts): FlvReader throws nothing but FlvError, FlvToFrames never throws
 * ("bodies it does not understand yield {}"), and tag bodies written from tracks and frames
 * come back through an FLV stream unchanged.
 */
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { buildAudioSpecificConfig, SAMPLE_RATES } from '../../src/media/aac.js';
import { decodeAmf0 } from '../../src/media/amf0.js';
import {
  FLV_HEADER,
  FlvError,
  FlvReader,
  FlvToFrames,
  audioSequenceHeader,
  audioTagBody,
  encodeFlvTag,
  onMetaData,
  videoSequenceHeader,
  videoTagBody,
  type FlvTag,
} from '../../src/media/flv.js';
import { buildAvcC, nalsToAvcc } from '../../src/media/h264.js';
import { buildHvcC } from '../../src/media/h265.js';
import type { AudioTrack, Frame, Tracks, VideoTrack } from '../../src/media/types.js';
import {
  type Chunking,
  assertBounded,
  chunkingArb,
  defineTarget,
  expectNoThrow,
  expectOnly,
  fixture,
  mutated,
  pieces,
  prefixOf,
  rawBytes,
  spliced,
  withinBudget,
} from './support.js';

const FILE = fixture('test/fixtures/flv/h264-aac-1s.flv');
const FILE_TAGS: readonly FlvTag[] = new FlvReader().push(FILE);

// ---------------------------------------------------------------------------------------------
// Tracks and frames → tag bodies

const nal = (header: number[], maxBody: number): fc.Arbitrary<Buffer> =>
  rawBytes(maxBody).map((b) => Buffer.concat([Buffer.from(header), b]));

const videoTrackArb: fc.Arbitrary<VideoTrack> = fc.oneof(
  fc
    .tuple(
      fc.array(nal([0x67, 0x42, 0xc0, 0x0d], 30), { minLength: 1, maxLength: 2 }),
      fc.array(nal([0x68], 6), { minLength: 1, maxLength: 2 }),
    )
    .map(([sps, pps]) => ({ kind: 'video' as const, codec: 'h264' as const, config: buildAvcC(sps, pps) })),
  fc.tuple(nal([0x40, 1], 20), nal([0x42, 1], 40), nal([0x44, 1], 6)).map(([vps, sps, pps]) => ({
    kind: 'video' as const,
    codec: 'h265' as const,
    config: buildHvcC([vps], [sps], [pps]),
  })),
);

const audioTrackArb: fc.Arbitrary<AudioTrack> = fc
  .record({
    objectType: fc.integer({ min: 1, max: 4 }),
    rateIndex: fc.integer({ min: 0, max: 12 }),
    // channelConfiguration 7 means 8 channels (ISO/IEC 14496-3 Table 1.19): there is no 7.
    channels: fc.constantFrom(1, 2, 3, 4, 5, 6, 8),
  })
  .map(({ objectType, rateIndex, channels }) => ({
    kind: 'audio' as const,
    codec: 'aac' as const,
    config: buildAudioSpecificConfig({ objectType, sampleRateIndex: rateIndex, channels }),
    sampleRate: SAMPLE_RATES[rateIndex] as number,
    channels,
  }));

/** 90 kHz timestamps on whole milliseconds, so FLV's millisecond clock carries them exactly. */
const msArb = fc.nat({ max: 0x7fffffff });

interface FlvCase {
  tracks: Tracks;
  frames: Frame[];
}

const flvCaseArb: fc.Arbitrary<FlvCase> = fc
  .record({
    video: fc.option(videoTrackArb),
    audio: fc.option(audioTrackArb),
    frames: fc.array(
      fc.record({
        kind: fc.constantFrom('video' as const, 'audio' as const),
        dtsMs: msArb,
        ctsMs: fc.oneof(fc.constant(0), fc.integer({ min: 1, max: 0x7fffff })),
        keyframe: fc.boolean(),
        data: rawBytes(400).filter((b) => b.length > 0),
      }),
      { maxLength: 10 },
    ),
  })
  .map(({ video, audio, frames }) => {
    const tracks: Tracks = {};
    if (video) tracks.video = video;
    if (audio) tracks.audio = audio;
    return {
      tracks,
      frames: frames
        .filter((f) => tracks[f.kind])
        .map((f) => {
          const dts = f.dtsMs * 90;
          const pts = f.kind === 'video' ? dts + f.ctsMs * 90 : dts;
          const data = f.kind === 'video' ? nalsToAvcc([f.data]) : f.data;
          return { kind: f.kind, dts, pts, keyframe: f.kind === 'audio' || f.keyframe, data };
        }),
    };
  });

function caseTags(c: FlvCase): { type: 8 | 9 | 18; timestamp: number; data: Buffer }[] {
  const tags: { type: 8 | 9 | 18; timestamp: number; data: Buffer }[] = [
    { type: 18, timestamp: 0, data: onMetaData(c.tracks) },
  ];
  if (c.tracks.video) tags.push({ type: 9, timestamp: 0, data: videoSequenceHeader(c.tracks.video) });
  if (c.tracks.audio) tags.push({ type: 8, timestamp: 0, data: audioSequenceHeader(c.tracks.audio) });
  for (const f of c.frames) {
    const timestamp = Math.round(f.dts / 90);
    if (f.kind === 'video' && c.tracks.video) {
      tags.push({ type: 9, timestamp, data: videoTagBody(f, c.tracks.video.codec) });
    }
    if (f.kind === 'audio' && c.tracks.audio) {
      tags.push({ type: 8, timestamp, data: audioTagBody(f, c.tracks.audio) });
    }
  }
  return tags;
}

const flvFile = (c: FlvCase): Buffer =>
  Buffer.concat([FLV_HEADER, ...caseTags(c).map((t) => encodeFlvTag(t.type, t.timestamp, t.data))]);

// ---------------------------------------------------------------------------------------------
// Checks

function readAll(chunks: readonly Buffer[]): { tags: FlvTag[]; refused: boolean } {
  const reader = new FlvReader();
  const tags: FlvTag[] = [];
  const done = expectOnly([FlvError], () => {
    for (const c of chunks) tags.push(...reader.push(c));
    return true;
  });
  return { tags, refused: done === undefined };
}

/** Frames from tag bodies keep the Frame contract, and only follow a track of their kind. */
function checkToFrames(tags: readonly { type: number; timestamp: number; data: Buffer }[]): void {
  const demux = new FlvToFrames();
  let tracks: Tracks = {};
  for (const tag of tags) {
    const r = expectNoThrow(() =>
      tag.type === 9
        ? demux.video(tag.timestamp, tag.data)
        : tag.type === 8
          ? demux.audio(tag.timestamp, tag.data)
          : {},
    );
    if (r.tracks) tracks = r.tracks;
    if (r.frame) {
      assert.ok(tracks[r.frame.kind], `${r.frame.kind} frame before its track`);
      assert.ok(r.frame.pts >= r.frame.dts, `pts ${r.frame.pts} < dts ${r.frame.dts}`);
      assert.ok(r.frame.data.length <= tag.data.length, 'frame larger than its tag');
    }
  }
}

function checkReader(bytes: Buffer, chunking: Chunking): void {
  const chunked = withinBudget(bytes.length, () => readAll(pieces(bytes, chunking)));
  assertBounded(
    'tag bytes',
    chunked.tags.reduce((n, t) => n + t.data.length, 0),
    bytes.length,
    1,
    0,
  );
  const whole = readAll([bytes]);
  assert.equal(chunked.refused, whole.refused, 'refusal depends on how the bytes were cut');
  if (!whole.refused) {
    assert.equal(chunked.tags.length, whole.tags.length);
    chunked.tags.forEach((t, i) => {
      const w = whole.tags[i] as FlvTag;
      assert.ok(t.type === w.type && t.timestamp === w.timestamp && t.data.equals(w.data), `tag ${i}`);
    });
  }
  withinBudget(bytes.length, () => checkToFrames(chunked.tags));
}

const tagBodyArb = fc.oneof(
  { weight: 1, arbitrary: rawBytes(64) },
  {
    weight: 4,
    arbitrary: mutated(fc.constantFrom(...FILE_TAGS.filter((t) => t.type !== 18).map((t) => t.data))),
  },
  {
    weight: 4,
    arbitrary: mutated(
      flvCaseArb.chain((c) => {
        const bodies = caseTags(c)
          .filter((t) => t.type !== 18)
          .map((t) => t.data);
        return bodies.length > 0 ? fc.constantFrom(...bodies) : fc.constant(Buffer.alloc(0));
      }),
    ),
  },
);

export const flvTargets = [
  defineTarget({
    name: 'flv-reader',
    property:
      'FlvReader: any bytes in any slicing → only FlvError, same tags as one push, tag bytes ≤ input; FlvToFrames on the tags never throws',
    arbitrary: fc.record({
      bytes: (() => {
        const valid = fc.oneof(prefixOf(FILE), flvCaseArb.map(flvFile));
        return fc.oneof(
          { weight: 1, arbitrary: rawBytes(256) },
          { weight: 1, arbitrary: rawBytes(256).map((b) => Buffer.concat([FLV_HEADER, b])) },
          { weight: 2, arbitrary: valid },
          { weight: 6, arbitrary: mutated(valid) },
          { weight: 2, arbitrary: spliced(valid, valid) },
        );
      })(),
      chunking: chunkingArb,
    }),
    check: ({ bytes, chunking }) => checkReader(bytes, chunking),
    unitRuns: 80,
    replay: (file) => checkReader(file, { every: 3 }),
  }),
  defineTarget({
    name: 'flv-tags',
    property:
      'FlvToFrames.video/.audio: any tag body sequence (RTMP audio/video messages) → never throws; frames follow their track, pts ≥ dts',
    arbitrary: fc.array(
      fc.record({ type: fc.constantFrom(8, 9), timestamp: fc.nat({ max: 0xffffffff }), data: tagBodyArb }),
      { maxLength: 12 },
    ),
    check: (tags) => {
      withinBudget(
        tags.reduce((n, t) => n + t.data.length, 0),
        () => checkToFrames(tags),
      );
    },
    // Saved inputs are FLV files: the tag bodies in order, with their types and timestamps.
    replay: (file) => checkToFrames(new FlvReader().push(file)),
  }),
  defineTarget({
    name: 'flv-roundtrip',
    property:
      'tracks + frames → tag bodies → encodeFlvTag → FlvReader (any slicing) → FlvToFrames gives the tracks and frames back; onMetaData decodes',
    arbitrary: fc.record({ c: flvCaseArb, chunking: chunkingArb }),
    check: ({ c, chunking }) => {
      const { tags, refused } = readAll(pieces(flvFile(c), chunking));
      assert.ok(!refused, 'FlvReader refused encodeFlvTag output');
      const written = caseTags(c);
      assert.equal(tags.length, written.length);
      tags.forEach((t, i) => {
        const w = written[i];
        assert.ok(w && t.type === w.type && t.timestamp === w.timestamp && t.data.equals(w.data), `tag ${i}`);
      });
      const [name, meta] = decodeAmf0((tags[0] as FlvTag).data);
      assert.equal(name, 'onMetaData');
      assert.equal(typeof meta, 'object');

      const demux = new FlvToFrames();
      const frames: Frame[] = [];
      let tracks: Tracks = {};
      for (const t of tags) {
        const r =
          t.type === 9
            ? demux.video(t.timestamp, t.data)
            : t.type === 8
              ? demux.audio(t.timestamp, t.data)
              : {};
        if (r.tracks) tracks = r.tracks;
        if (r.frame) frames.push(r.frame);
      }
      assert.equal(tracks.video?.codec, c.tracks.video?.codec);
      assert.ok(
        (tracks.video?.config ?? Buffer.alloc(0)).equals(c.tracks.video?.config ?? Buffer.alloc(0)),
        'video config',
      );
      assert.deepStrictEqual(
        tracks.audio && { ...tracks.audio, config: tracks.audio.config.toString('hex') },
        c.tracks.audio && { ...c.tracks.audio, config: c.tracks.audio.config.toString('hex') },
      );
      const hex = (fs: readonly Frame[]): object[] => fs.map((f) => ({ ...f, data: f.data.toString('hex') }));
      assert.deepStrictEqual(hex(frames), hex(c.frames));
    },
  }),
];
