/**
 * MPEG-TS (src/media/mpegts/): the demuxer never throws ("survives hostile input: it never
 * throws on bad bytes, counts them in `errors`"), keeps the Frame contract on whatever it
 * emits, and gives back what the muxer wrote.
 */
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { buildAudioSpecificConfig } from '../../src/media/aac.js';
import { buildAvcC, nalsToAvcc } from '../../src/media/h264.js';
import { buildHvcC } from '../../src/media/h265.js';
import {
  AUDIO_PID,
  PMT_PID,
  StreamType,
  TS_PACKET_SIZE,
  TsDemuxer,
  TsMuxer,
  VIDEO_PID,
  crc32,
  type DemuxEvent,
} from '../../src/media/mpegts/index.js';
import type { Frame, Tracks } from '../../src/media/types.js';
import {
  type Chunking,
  assertBounded,
  chunkingArb,
  defineTarget,
  expectNoThrow,
  fixture,
  mutated,
  pieces,
  prefixOf,
  rawBytes,
  spliced,
  withinBudget,
} from './support.js';

const FIXTURES = [
  fixture('test/fixtures/mpegts/h264-aac-2s.ts'),
  fixture('test/fixtures/mpegts/h264-aac-bframes-2s.ts'),
];

// ---------------------------------------------------------------------------------------------
// Muxer input

/** Emulation prevention (H.264 §7.4.1): what an encoder does so a NAL unit never contains a start code. */
function escapeRbsp(body: Uint8Array): Buffer {
  const out: number[] = [];
  let zeros = 0;
  for (const b of body) {
    if (zeros >= 2 && b <= 3) {
      out.push(3);
      zeros = 0;
    }
    out.push(b);
    zeros = b === 0 ? zeros + 1 : 0;
  }
  // rbsp_trailing_bits: a NAL unit ends in a non-zero byte.
  out.push(0x80);
  return Buffer.from(out);
}

const nal264 = (type: number, maxBody = 300): fc.Arbitrary<Buffer> =>
  rawBytes(maxBody).map((b) => Buffer.concat([Buffer.of(0x60 | type), escapeRbsp(b)]));
const nal265 = (type: number, maxBody = 300): fc.Arbitrary<Buffer> =>
  rawBytes(maxBody).map((b) => Buffer.concat([Buffer.of(type << 1, 1), escapeRbsp(b)]));

interface MuxCase {
  tracks: Tracks;
  frames: Frame[];
}

const muxCaseArb: fc.Arbitrary<MuxCase> = fc
  .record({
    video: fc.option(
      fc.oneof(
        fc.record({
          codec: fc.constant('h264' as const),
          params: fc.tuple(
            fc.array(nal264(7, 30), { minLength: 1, maxLength: 2 }),
            fc.array(nal264(8, 8), { minLength: 1, maxLength: 2 }),
          ),
          pictures: fc.array(
            fc.tuple(
              fc.boolean(),
              fc.array(fc.oneof(nal264(1), nal264(6, 20)), { maxLength: 3 }),
              nal264(5),
              nal264(1),
            ),
            { minLength: 1, maxLength: 8 },
          ),
        }),
        fc.record({
          codec: fc.constant('h265' as const),
          params: fc.tuple(
            fc.array(nal265(32, 20), { minLength: 1, maxLength: 1 }),
            fc.array(nal265(33, 40), { minLength: 1, maxLength: 2 }),
            fc.array(nal265(34, 8), { minLength: 1, maxLength: 2 }),
          ),
          pictures: fc.array(
            fc.tuple(
              fc.boolean(),
              fc.array(fc.oneof(nal265(1), nal265(39, 20)), { maxLength: 3 }),
              nal265(19),
              nal265(1),
            ),
            { minLength: 1, maxLength: 8 },
          ),
        }),
      ),
    ),
    audio: fc.option(
      fc.oneof(
        fc.record({
          codec: fc.constant('aac' as const),
          objectType: fc.integer({ min: 1, max: 4 }),
          rateIndex: fc.integer({ min: 0, max: 12 }),
          // channelConfiguration 7 means 8 channels (ISO/IEC 14496-3 Table 1.19): there is no 7.
          channels: fc.constantFrom(1, 2, 3, 4, 5, 6, 8),
          frames: fc.array(
            rawBytes(900).filter((b) => b.length > 0),
            { minLength: 1, maxLength: 10 },
          ),
        }),
        fc.record({
          codec: fc.constant('opus' as const),
          channels: fc.integer({ min: 1, max: 8 }),
          // TOC config 31 (CELT FB 20 ms), code 0: one frame of 960 samples per packet.
          frames: fc.array(
            rawBytes(600).map((b) => Buffer.concat([Buffer.of(0xf8), b])),
            { minLength: 1, maxLength: 10 },
          ),
        }),
      ),
    ),
    start: fc.oneof(fc.nat({ max: 2 ** 33 - 1 }), fc.constant(2 ** 33 - 5000)),
    bframes: fc.array(fc.integer({ min: 0, max: 3 }), { maxLength: 8 }),
  })
  .filter((r) => r.video !== null || r.audio !== null)
  .map(({ video, audio, start, bframes }): MuxCase => {
    const tracks: Tracks = {};
    const frames: Frame[] = [];
    if (video) {
      const config =
        video.codec === 'h264'
          ? buildAvcC(video.params[0], video.params[1])
          : buildHvcC(video.params[0], video.params[1], video.params[2]);
      tracks.video = { kind: 'video', codec: video.codec, config };
      video.pictures.forEach(([key, others, irap, slice], i) => {
        // The first picture is a keyframe: pictures before the first parameter sets are undecodable, and dropped.
        const keyframe = i === 0 || key;
        // A picture has at least one slice (VCL NAL unit); a PES of SEI alone is not a picture.
        const nals = [...others, keyframe ? irap : slice];
        const dts = start + i * 3600;
        const pts = dts + (bframes[i] ?? 0) * 3600;
        frames.push({ kind: 'video', dts, pts, keyframe, data: nalsToAvcc(nals) });
      });
    }
    if (audio) {
      if (audio.codec === 'aac') {
        const config = buildAudioSpecificConfig({
          objectType: audio.objectType,
          sampleRateIndex: audio.rateIndex,
          channels: audio.channels,
        });
        tracks.audio = { kind: 'audio', codec: 'aac', config, sampleRate: 0, channels: audio.channels };
      } else {
        tracks.audio = {
          kind: 'audio',
          codec: 'opus',
          config: Buffer.alloc(0),
          sampleRate: 48000,
          channels: audio.channels,
        };
      }
      audio.frames.forEach((data, i) => {
        const t = start + i * 1800;
        frames.push({ kind: 'audio', dts: t, pts: t, keyframe: true, data });
      });
    }
    // Interleave by decode time, as a live source delivers them.
    frames.sort((a, b) => a.dts - b.dts || (a.kind === 'video' ? -1 : 1));
    return { tracks, frames: frames.filter((f) => f.data.length > 0) };
  });

/**
 * A case whose keyframes also carry an in-band SPS just over 64 KiB: more than the 16-bit
 * length fields of avcC/hvcC hold, which the demuxer builds its configuration into.
 */
const oversizedParamsArb: fc.Arbitrary<MuxCase> = fc
  .tuple(
    muxCaseArb.filter((c) => c.tracks.video !== undefined),
    fc.integer({ min: 0xfffc, max: 0x10004 }),
  )
  .map(([c, size]) => {
    const header = c.tracks.video?.codec === 'h265' ? [33 << 1, 1] : [0x67];
    const sps = Buffer.concat([Buffer.from(header), Buffer.alloc(size - header.length, 0x11)]);
    const frames = c.frames.map((f) =>
      f.kind === 'video' && f.keyframe ? { ...f, data: Buffer.concat([nalsToAvcc([sps]), f.data]) } : f,
    );
    return { ...c, frames };
  });

/**
 * PAT/PMT sections with random contents but a correct CRC, in front of muxed media: byte
 * mutations of a real table almost always break its CRC, so they never reach the PSI parsers.
 */
const psiArb: fc.Arbitrary<Buffer> = fc
  .tuple(
    fc.array(
      fc.record({
        pid: fc.constantFrom(0, PMT_PID),
        tableId: fc.constantFrom(0x00, 0x02, 0x42),
        body: fc.oneof(
          rawBytes(60),
          // A PMT body: PCR PID, program_info_length, then stream entries with descriptors.
          fc
            .tuple(
              fc.integer({ min: 0, max: 0xffff }),
              rawBytes(8),
              fc.array(
                fc.tuple(
                  fc.constantFrom(
                    StreamType.H264,
                    StreamType.H265,
                    StreamType.AAC_ADTS,
                    StreamType.PES_PRIVATE,
                    0x03,
                  ),
                  fc.constantFrom(VIDEO_PID, AUDIO_PID, 0x1fff, PMT_PID, 0),
                  fc.oneof(
                    rawBytes(12),
                    fc.constant(Buffer.from([0x05, 4, 0x4f, 0x70, 0x75, 0x73, 0x7f, 2, 0x80, 9])),
                    fc.constant(Buffer.from([0x05, 9, 0x4f, 0x70])),
                  ),
                  fc.integer({ min: 0, max: 0xfff }),
                ),
                { maxLength: 4 },
              ),
            )
            .map(([pcr, info, streams]) =>
              Buffer.concat([
                Buffer.from([pcr >> 8, pcr & 0xff, 0xf0 | (info.length >> 8), info.length & 0xff]),
                info,
                ...streams.map(([type, pid, desc, lie]) =>
                  Buffer.concat([
                    Buffer.from([
                      type,
                      0xe0 | (pid >> 8),
                      pid & 0xff,
                      0xf0 | ((lie || desc.length) >> 8),
                      (lie || desc.length) & 0xff,
                    ]),
                    desc,
                  ]),
                ),
              ]),
            ),
        ),
        flags: fc.integer({ min: 0, max: 255 }),
      }),
      { minLength: 1, maxLength: 3 },
    ),
    muxCaseArb,
  )
  .map(([sections, c]) =>
    Buffer.concat([
      ...sections.map(({ pid, tableId, body, flags }) => {
        const s = Buffer.alloc(8 + body.length + 4);
        s[0] = tableId;
        s.writeUInt16BE(0xb000 | ((5 + body.length + 4) & 0xfff), 1);
        s.writeUInt16BE(1, 3);
        s[5] = flags;
        body.copy(s, 8);
        s.writeUInt32BE(crc32(s, 0, s.length - 4), s.length - 4);
        const packet = Buffer.alloc(TS_PACKET_SIZE, 0xff);
        packet.set([0x47, 0x40 | (pid >> 8), pid & 0xff, 0x10, 0], 0);
        s.copy(packet, 5, 0, Math.min(s.length, TS_PACKET_SIZE - 5));
        return packet;
      }),
      mux(c),
    ]),
  );

function mux(c: MuxCase): Buffer {
  const muxer = new TsMuxer(c.tracks);
  return Buffer.concat(c.frames.map((f) => muxer.mux(f)));
}

// ---------------------------------------------------------------------------------------------
// Demuxer checks

function demux(chunks: readonly Buffer[]): { events: DemuxEvent[]; errors: number } {
  const d = new TsDemuxer();
  const events: DemuxEvent[] = [];
  for (const c of chunks) events.push(...d.push(c));
  events.push(...d.flush());
  return { events, errors: d.errors };
}

/** The Frame contract of src/media/types.ts on everything the demuxer emits. */
function checkFrames(events: readonly DemuxEvent[]): void {
  let tracks: Tracks | undefined;
  const lastDts: Record<string, number> = {};
  for (const e of events) {
    if (e.kind === 'tracks') {
      tracks = e.tracks;
      continue;
    }
    const f = e.frame;
    assert.ok(tracks, 'a frame before any tracks event');
    assert.ok(tracks[f.kind], `a ${f.kind} frame while the tracks have no ${f.kind} track`);
    assert.ok(Number.isInteger(f.dts) && Number.isInteger(f.pts), 'timestamps are integers');
    assert.ok(f.pts >= f.dts, `pts ${f.pts} < dts ${f.dts}`);
    const last = lastDts[f.kind];
    assert.ok(last === undefined || f.dts >= last, `${f.kind} dts went back from ${last} to ${f.dts}`);
    lastDts[f.kind] = f.dts;
  }
}

function checkDemux(bytes: Buffer, chunking: Chunking): void {
  const { events } = withinBudget(bytes.length, () => expectNoThrow(() => demux(pieces(bytes, chunking))));
  checkFrames(events);
  // AVCC framing adds 4 bytes per NAL unit where Annex B spent at least 3 (+1 byte of NAL), and a
  // tracks event copies parameter sets already counted: twice the input bounds it.
  const frameBytes = events.reduce((n, e) => n + (e.kind === 'frame' ? e.frame.data.length : 0), 0);
  assertBounded('frame bytes', frameBytes, bytes.length, 2, 0);
  assertBounded('events', events.length, bytes.length / TS_PACKET_SIZE, 64, 4);
}

export const mpegtsTargets = [
  defineTarget({
    name: 'ts-demux',
    property:
      'TsDemuxer: any bytes in any slicing → never throws; frames keep pts ≥ dts, monotonic dts, a track per frame; output ≤ 2× input',
    arbitrary: fc.record({
      bytes: (() => {
        const valid = fc.oneof(
          { weight: 10, arbitrary: prefixOf(FIXTURES[0] as Buffer, 60 * TS_PACKET_SIZE) },
          { weight: 10, arbitrary: prefixOf(FIXTURES[1] as Buffer, 60 * TS_PACKET_SIZE) },
          { weight: 10, arbitrary: muxCaseArb.map(mux) },
          { weight: 1, arbitrary: oversizedParamsArb.map(mux) },
          { weight: 5, arbitrary: psiArb },
        );
        return fc.oneof(
          { weight: 1, arbitrary: rawBytes(2000) },
          { weight: 2, arbitrary: valid },
          { weight: 6, arbitrary: mutated(valid, 12) },
          { weight: 2, arbitrary: spliced(valid, valid) },
        );
      })(),
      chunking: chunkingArb,
    }),
    check: ({ bytes, chunking }) => checkDemux(bytes, chunking),
    unitRuns: 60,
    replay: (file) => checkDemux(file, { every: 100 }),
  }),
  defineTarget({
    name: 'ts-roundtrip',
    property:
      'TsMuxer → TsDemuxer (H.264/H.265 × AAC/Opus, 33-bit wrap, B-frames, any slicing) gives the tracks and every frame back',
    arbitrary: fc.record({ c: muxCaseArb, chunking: chunkingArb }),
    check: ({ c, chunking }) => {
      const bytes = mux(c);
      const { events, errors } = demux(pieces(bytes, chunking));
      assert.equal(errors, 0, 'the demuxer counted errors in muxer output');
      checkFrames(events);
      const lastTracks = [...events].reverse().find((e) => e.kind === 'tracks');
      assert.ok(lastTracks?.kind === 'tracks', 'no tracks event');
      const got = lastTracks.tracks;
      if (c.tracks.video) {
        assert.equal(got.video?.codec, c.tracks.video.codec);
        assert.ok(got.video?.config.equals(c.tracks.video.config), 'video config');
      }
      if (c.tracks.audio) {
        assert.equal(got.audio?.codec, c.tracks.audio.codec);
        if (c.tracks.audio.codec === 'aac') {
          assert.ok(got.audio?.config.equals(c.tracks.audio.config), 'aac config');
        }
        assert.equal(got.audio?.channels, c.tracks.audio.channels);
      }
      const frames = events.flatMap((e) => (e.kind === 'frame' ? [e.frame] : []));
      for (const kind of ['video', 'audio'] as const) {
        const want = c.frames.filter((f) => f.kind === kind).map((f) => expectedFrame(f, c.tracks));
        const have = frames
          .filter((f) => f.kind === kind)
          .map((f) => ({ ...f, data: f.data.toString('hex') }));
        assert.deepStrictEqual(have, want, `${kind} frames`);
      }
    },
    unitRuns: 60,
  }),
];

/** What the demuxer makes of a muxed frame: keyframes gain the parameter sets, AVCC stays AVCC. */
function expectedFrame(f: Frame, tracks: Tracks): Omit<Frame, 'data'> & { data: string } {
  let data = f.data;
  if (f.kind === 'video' && f.keyframe && tracks.video) {
    // The muxer writes the configuration's parameter sets in front of every keyframe.
    const config = tracks.video.config;
    const sets = tracks.video.codec === 'h264' ? avcCSets(config) : hvcCSets(config);
    data = Buffer.concat([nalsToAvcc(sets), f.data]);
  }
  return { kind: f.kind, dts: f.dts, pts: f.pts, keyframe: f.keyframe, data: data.toString('hex') };
}

function avcCSets(config: Buffer): Buffer[] {
  const out: Buffer[] = [];
  let pos = 5;
  for (const countMask of [0x1f, 0xff]) {
    const count = (config[pos++] ?? 0) & countMask;
    for (let i = 0; i < count; i++) {
      const len = config.readUInt16BE(pos);
      out.push(config.subarray(pos + 2, pos + 2 + len));
      pos += 2 + len;
    }
  }
  return out;
}

function hvcCSets(config: Buffer): Buffer[] {
  const out: Buffer[] = [];
  let pos = 23;
  for (let a = 0; a < (config[22] ?? 0); a++) {
    const count = config.readUInt16BE(pos + 1);
    pos += 3;
    for (let i = 0; i < count; i++) {
      const len = config.readUInt16BE(pos);
      out.push(config.subarray(pos + 2, pos + 2 + len));
      pos += 2 + len;
    }
  }
  return out;
}
