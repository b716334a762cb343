/**
 * Codec parameter parsing (src/media/h264.ts, h265.ts, aac.ts). These modules promise pure
 * functions that never throw on malformed input (undefined instead), so any exception is a
 * bug; their builders must produce records their parsers read back, for any input lists.
 */
import assert from 'node:assert/strict';
import fc from 'fast-check';
import {
  type AacConfig,
  adtsHeader,
  aacCodecString,
  buildAudioSpecificConfig,
  parseAdtsHeader,
  parseAudioSpecificConfig,
  SAMPLE_RATES,
  splitAdts,
} from '../../src/media/aac.js';
import { FlvReader } from '../../src/media/flv.js';
import {
  avcCodecString,
  buildAvcC,
  nalsToAvcc,
  parseAvcC,
  parseSps,
  splitAnnexB,
  splitAvcc,
  spsDimensions,
  unescapeRbsp,
} from '../../src/media/h264.js';
import { buildHvcC, hevcNalType, isIrap, parseHevcSps, parseHvcC } from '../../src/media/h265.js';
import { TsDemuxer } from '../../src/media/mpegts/index.js';
import {
  assertBounded,
  defineTarget,
  expectNoThrow,
  fixture,
  mutated,
  rawBytes,
  spliced,
  withinBudget,
} from './support.js';

// ---------------------------------------------------------------------------------------------
// Seeds: the parameter sets of the fixtures

/** avcC records of the FLV fixture (Constrained Baseline) and of the TS fixtures (Baseline, High). */
const AVCC: readonly Buffer[] = (() => {
  const out: Buffer[] = [];
  const seq = new FlvReader().push(fixture('test/fixtures/flv/h264-aac-1s.flv')).find((t) => t.type === 9);
  if (seq) out.push(seq.data.subarray(5));
  for (const name of ['h264-aac-2s.ts', 'h264-aac-bframes-2s.ts']) {
    const d = new TsDemuxer();
    const events = [...d.push(fixture(`test/fixtures/mpegts/${name}`)), ...d.flush()];
    for (const e of events) if (e.kind === 'tracks' && e.tracks.video) out.push(e.tracks.video.config);
  }
  return out;
})();
const H264_SETS: readonly Buffer[] = AVCC.flatMap((c) => {
  const cfg = parseAvcC(c);
  return cfg ? [...cfg.sps, ...cfg.pps] : [];
});

/** VPS, SPS and PPS that ffmpeg 5.1 with libx265 writes for 320x240 testsrc2. */
const HEVC_SETS = [
  '40010c01ffff01600000030090000003000003003c959809',
  '42010101600000030090000003000003003ca00a080f165959a4932bc05a020000030002000003001e10',
  '4401c172b46240',
].map((h) => Buffer.from(h, 'hex'));
const HVCC = buildHvcC(HEVC_SETS.slice(0, 1), HEVC_SETS.slice(1, 2), HEVC_SETS.slice(2));

/** The fixtures' AudioSpecificConfigs (AAC-LC 44.1 kHz mono, 48 kHz mono) and ffmpeg's RTSP one. */
const ASC = ['1208', '1188', '120856e500', '1190', '2b8a08', 'f8ee8000'].map((h) => Buffer.from(h, 'hex'));

const annexB = (nals: readonly Buffer[]): Buffer =>
  Buffer.concat(nals.flatMap((n, i) => [Buffer.from(i % 2 ? [0, 0, 1] : [0, 0, 0, 1]), n]));

// ---------------------------------------------------------------------------------------------
// Checks

function checkH264Bytes(b: Buffer): void {
  withinBudget(b.length, () =>
    expectNoThrow(() => {
      const info = parseSps(b);
      if (info) {
        assert.ok(info.width > 0 && info.height > 0 && Number.isFinite(info.width * info.height), 'sps size');
      }
      spsDimensions(b);
      const cfg = parseAvcC(b);
      if (cfg) assert.ok([1, 2, 4].includes(cfg.lengthSize), `lengthSize ${cfg.lengthSize}`);
      avcCodecString(b);
      const nals = splitAnnexB(b);
      assertBounded(
        'annex b units',
        nals.reduce((n, x) => n + x.length, 0),
        b.length,
        1,
        0,
      );
      for (const size of [1, 2, 4]) {
        assertBounded(
          'avcc units',
          splitAvcc(b, size).reduce((n, x) => n + x.length, 0),
          b.length,
          1,
          0,
        );
      }
      assert.ok(unescapeRbsp(b).length <= b.length, 'unescapeRbsp grew');
    }),
  );
}

function checkH265Bytes(b: Buffer): void {
  withinBudget(b.length, () =>
    expectNoThrow(() => {
      const info = parseHevcSps(b);
      if (info) assert.ok(info.width > 0 && info.height > 0 && info.generalPtl.length <= 12, 'hevc sps');
      const cfg = parseHvcC(b);
      if (cfg) {
        assertBounded(
          'hvcC sets',
          [...cfg.vps, ...cfg.sps, ...cfg.pps].reduce((n, x) => n + x.length, 0),
          b.length,
          1,
          0,
        );
      }
      hevcNalType(b);
      isIrap(b);
    }),
  );
}

function checkAacBytes(b: Buffer): void {
  withinBudget(b.length, () =>
    expectNoThrow(() => {
      const asc = parseAudioSpecificConfig(b);
      if (asc) assert.ok(asc.sampleRate > 0 && asc.channels >= 0, 'asc');
      aacCodecString(b);
      for (let off = 0; off < Math.min(b.length, 16); off++) parseAdtsHeader(b, off);
      const { frames } = splitAdts(b);
      assertBounded(
        'adts frames',
        frames.reduce((n, f) => n + f.length, 0),
        b.length,
        1,
        0,
      );
    }),
  );
}

/** What an avcC can hold: lengths are 16-bit, at most 31 SPS (5 bits) and 255 PPS (8 bits). */
function representable(sets: readonly Buffer[], max: number): Buffer[] {
  return sets.filter((s) => s.length <= 0xffff).slice(0, max);
}

const smallNal = (header: number[]): fc.Arbitrary<Buffer> =>
  rawBytes(40).map((b) => Buffer.concat([Buffer.from(header), b]));
/** Parameter set lists: usually one or two, sometimes more than the record's count fields hold, sometimes over 64 KiB each. */
const setListArb = (header: number[]): fc.Arbitrary<Buffer[]> =>
  fc.oneof(
    { weight: 6, arbitrary: fc.array(smallNal(header), { minLength: 1, maxLength: 3 }) },
    { weight: 1, arbitrary: fc.array(smallNal(header), { minLength: 30, maxLength: 300 }) },
    {
      weight: 1,
      arbitrary: fc
        .tuple(fc.array(smallNal(header), { maxLength: 2 }), fc.integer({ min: 0xfff0, max: 0x10010 }))
        .map(([sets, big]) => [
          Buffer.concat([Buffer.from(header), Buffer.alloc(big - header.length, 0x11)]),
          ...sets,
        ]),
    },
  );

export const codecTargets = [
  defineTarget({
    name: 'h264-params',
    property:
      'parseSps/parseAvcC/splitAnnexB/splitAvcc/unescapeRbsp: any bytes → never throw, sizes > 0, units ≤ input, bounded CPU',
    arbitrary: fc.oneof(
      { weight: 1, arbitrary: rawBytes(300) },
      { weight: 4, arbitrary: mutated(fc.constantFrom(...H264_SETS)) },
      { weight: 3, arbitrary: mutated(fc.constantFrom(...AVCC)) },
      {
        weight: 2,
        arbitrary: mutated(fc.array(fc.constantFrom(...H264_SETS), { maxLength: 4 }).map(annexB)),
      },
      { weight: 1, arbitrary: spliced(fc.constantFrom(...H264_SETS), rawBytes(100)) },
    ),
    check: checkH264Bytes,
    replay: checkH264Bytes,
  }),
  defineTarget({
    name: 'h264-roundtrip',
    property:
      'parseAvcC(buildAvcC(sps, pps)) gives back every set an avcC can hold, for any lists; nalsToAvcc → splitAvcc and Annex B → splitAnnexB are identities',
    arbitrary: fc.record({ sps: setListArb([0x67, 0x42, 0xc0, 0x0d]), pps: setListArb([0x68]) }),
    check: ({ sps, pps }) => {
      const avcC = withinBudget(
        [...sps, ...pps].reduce((n, x) => n + x.length, 0),
        () => expectNoThrow(() => buildAvcC(sps, pps)),
      );
      const cfg = parseAvcC(avcC);
      assert.ok(cfg, 'parseAvcC cannot read buildAvcC output');
      assert.equal(cfg.lengthSize, 4);
      assert.deepStrictEqual(cfg.sps, representable(sps, 31));
      assert.deepStrictEqual(cfg.pps, representable(pps, 255));
      const nals = [...sps, ...pps];
      assert.deepStrictEqual(splitAvcc(nalsToAvcc(nals)), nals);
      // Without zero bytes a body cannot hold a start code or trailing zeros, so Annex B framing is lossless.
      const escaped = nals
        .slice(0, 8)
        .map((n) => Buffer.concat([n.subarray(0, 1), n.subarray(1).map((x) => (x < 2 ? 2 : x))]));
      assert.deepStrictEqual(splitAnnexB(annexB(escaped)), escaped);
    },
    unitRuns: 40,
  }),
  defineTarget({
    name: 'h265-params',
    property:
      'parseHevcSps/parseHvcC: any bytes → never throw, sizes > 0, sets ≤ input; parseHvcC(buildHvcC(vps, sps, pps)) gives every representable set back',
    arbitrary: fc.oneof(
      { weight: 1, arbitrary: fc.record({ kind: fc.constant('bytes' as const), bytes: rawBytes(300) }) },
      {
        weight: 6,
        arbitrary: fc.record({
          kind: fc.constant('bytes' as const),
          bytes: mutated(fc.constantFrom(...HEVC_SETS, HVCC)),
        }),
      },
      {
        weight: 2,
        arbitrary: fc.record({
          kind: fc.constant('build' as const),
          vps: setListArb([0x40, 0x01]),
          sps: fc.oneof(fc.constant([HEVC_SETS[1] as Buffer]), setListArb([0x42, 0x01])),
          pps: setListArb([0x44, 0x01]),
        }),
      },
    ),
    check: (input) => {
      if (input.kind === 'bytes') {
        checkH265Bytes(input.bytes);
        return;
      }
      const { vps, sps, pps } = input;
      const hvcC = expectNoThrow(() => buildHvcC(vps, sps, pps));
      checkH265Bytes(hvcC);
      const cfg = parseHvcC(hvcC);
      assert.ok(cfg, 'parseHvcC cannot read buildHvcC output');
      assert.equal(cfg.lengthSize, 4);
      assert.deepStrictEqual(cfg.vps, representable(vps, 0xffff));
      assert.deepStrictEqual(cfg.sps, representable(sps, 0xffff));
      assert.deepStrictEqual(cfg.pps, representable(pps, 0xffff));
    },
    unitRuns: 60,
    replay: checkH265Bytes,
  }),
  defineTarget({
    name: 'aac-params',
    property:
      'parseAudioSpecificConfig/parseAdtsHeader/splitAdts: any bytes → never throw; build → parse round-trips for ASC and ADTS',
    arbitrary: fc.record({
      bytes: fc.oneof(
        rawBytes(200),
        mutated(fc.constantFrom(...ASC)),
        mutated(
          fc
            .array(fc.tuple(fc.constantFrom(...ASC.slice(0, 4)), rawBytes(100)), { maxLength: 4 })
            .map((fs) => Buffer.concat(fs.flatMap(([asc, f]) => [adtsHeader(asc, f.length), f]))),
        ),
      ),
      config: fc.record({
        // 5 and 29 signal SBR/PS (another config follows) and 31 is the escape code itself.
        objectType: fc.oneof(
          fc.integer({ min: 1, max: 4 }),
          fc.integer({ min: 6, max: 28 }),
          fc.constant(30),
          fc.integer({ min: 32, max: 95 }),
        ),
        rate: fc.oneof(
          fc.integer({ min: 0, max: 12 }).map((index) => ({ index, rate: SAMPLE_RATES[index] as number })),
          fc.integer({ min: 1, max: 0xffffff }).map((rate) => ({ index: 15, rate })),
        ),
        channels: fc.constantFrom(0, 1, 2, 3, 4, 5, 6, 8),
      }),
      frames: fc.array(rawBytes(300), { maxLength: 4 }),
    }),
    check: ({ bytes, config, frames }) => {
      checkAacBytes(bytes);
      const asc = buildAudioSpecificConfig({
        objectType: config.objectType,
        sampleRateIndex: config.rate.index,
        sampleRate: config.rate.rate,
        channels: config.channels,
      });
      const parsed = parseAudioSpecificConfig(asc);
      const channelConfig = config.channels === 8 ? 7 : config.channels;
      assert.deepStrictEqual(parsed, {
        objectType: config.objectType,
        sampleRate: config.rate.rate,
        sampleRateIndex: config.rate.index,
        channelConfig,
        channels: config.channels,
      } satisfies AacConfig);
      if (config.objectType <= 4 && config.rate.index <= 12) {
        const adts = Buffer.concat(frames.flatMap((f) => [adtsHeader(asc, f.length), f]));
        const split = splitAdts(adts);
        assert.deepStrictEqual(split.frames, frames);
        if (frames.length > 0) assert.deepStrictEqual(split.asc, asc);
      }
    },
    replay: checkAacBytes,
  }),
];
