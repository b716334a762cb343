/**
 * H.264/H.265 helper tests. Parameter sets were produced by ffmpeg 5.1 (libx264 core 164,
 * libx265 3.5) with `-f lavfi -i testsrc2=size=WxH:rate=25 -t 0.04 -c:v libx264 -profile:v P`
 * (or libx265), and the avcC/hvcC references were cut from MP4 files ffmpeg wrote.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import {
  avcCodecString,
  buildAvcC,
  isIdr,
  nalsToAvcc,
  nalType,
  parseAvcC,
  parseSps,
  splitAnnexB,
  splitAvcc,
  spsDimensions,
  unescapeRbsp,
} from '../../../src/media/h264.js';
import { buildHvcC, hevcNalType, isIrap, parseHevcSps, parseHvcC } from '../../../src/media/h265.js';

const hex = (s: string): Buffer => Buffer.from(s, 'hex');

/** Exp-Golomb bit writer for hand-built SPS that x264 never emits (scaling lists, fields). */
class BitWriter {
  private bits: number[] = [];
  u(n: number, v: number): this {
    for (let i = n - 1; i >= 0; i--) this.bits.push(Math.floor(v / 2 ** i) & 1);
    return this;
  }
  ue(v: number): this {
    const len = Math.floor(Math.log2(v + 1));
    return this.u(len, 0).u(len + 1, v + 1);
  }
  se(v: number): this {
    return this.ue(v > 0 ? 2 * v - 1 : -2 * v);
  }
  bytes(): Buffer {
    this.bits.push(1); // rbsp_stop_one_bit
    while (this.bits.length % 8) this.bits.push(0);
    const out = Buffer.alloc(this.bits.length / 8);
    this.bits.forEach((b, i) => {
      if (b) out[i >> 3] = out[i >> 3]! | (0x80 >> (i & 7));
    });
    return out;
  }
}

describe('SPS parsing', () => {
  const cases: [string, string, number, number][] = [
    ['fixture, Constrained Baseline', '6742c00dda0507ec0440000003004000000c83c50aa8', 320, 240],
    ['fixture (B-frames), High', '6764000dacd94141fb011000000300100000030320f1429960', 320, 240],
    ['High 1280x720', '6764001facd9405005bb011000000300100000030320f1831960', 1280, 720],
    ['High 1920x1080 (bottom crop)', '67640028acd940780227e5c044000003000400000300c83c60c658', 1920, 1080],
    [
      'High 642x362 (right and bottom crop)',
      '6764001eacd940a42fe224c044000003000400000300c83c58b658',
      642,
      362,
    ],
    [
      'High 4:4:4 1280x720 (chroma_format_idc 3)',
      '67f4001f919b280a00b76022000003000200000300641e30632c',
      1280,
      720,
    ],
  ];
  for (const [name, sps, width, height] of cases) {
    it(`${name} → ${width}x${height}`, () => {
      assert.deepEqual(spsDimensions(hex(sps)), { width, height });
    });
  }

  it('reads scaling lists, POC type 1 and interlaced crop units from a hand-built SPS', () => {
    const w = new BitWriter()
      .u(8, 0x67)
      .u(8, 100) // profile_idc High
      .u(8, 0)
      .u(8, 40)
      .ue(0) // sps id
      .ue(1) // chroma_format_idc 4:2:0
      .ue(0)
      .ue(0)
      .u(1, 0)
      .u(1, 1); // seq_scaling_matrix_present_flag
    for (let i = 0; i < 8; i++) {
      w.u(1, i === 0 || i === 6 ? 1 : 0);
      if (i === 0) for (let j = 0; j < 16; j++) w.se(j === 3 ? -8 : 1); // 4x4 list with a zero (stop) at j=3
      if (i === 6) for (let j = 0; j < 64; j++) w.se(j % 2 ? 3 : -3);
    }
    w.ue(0) // log2_max_frame_num_minus4
      .ue(1) // pic_order_cnt_type 1
      .u(1, 0)
      .se(-2)
      .se(1)
      .ue(2)
      .se(2)
      .se(-2)
      .ue(4) // max_num_ref_frames
      .u(1, 0)
      .ue(119) // 1920 / 16 - 1
      .ue(33) // 1088 / 32 - 1 (map units are field MB pairs)
      .u(1, 0) // frame_mbs_only_flag 0: interlaced
      .u(1, 1)
      .u(1, 1)
      .u(1, 1) // frame_cropping_flag
      .ue(0)
      .ue(0)
      .ue(0)
      .ue(2) // CropUnitY = 2 * 2 → 8 lines
      .u(1, 0); // vui_parameters_present_flag
    const sps = w.bytes();
    const info = parseSps(sps);
    assert.equal(info?.width, 1920);
    assert.equal(info?.height, 1080);
    assert.equal(info?.profile, 100);
    assert.equal(info?.chromaFormatIdc, 1);
  });

  it('returns undefined for truncated or foreign NAL units and never throws on noise', () => {
    const sps = hex('67640028acd940780227e5c044000003000400000300c83c60c658');
    assert.equal(spsDimensions(sps.subarray(0, 6)), undefined);
    assert.equal(spsDimensions(hex('68ce0fc8')), undefined);
    assert.equal(spsDimensions(Buffer.alloc(0)), undefined);
    let seed = 7;
    for (let n = 0; n < 2000; n++) {
      const b = Buffer.alloc(1 + (n % 40));
      for (let i = 0; i < b.length; i++) b[i] = (seed = (seed * 1103515245 + 12345) >>> 0) >>> 24;
      b[0] = 0x67;
      parseSps(b);
    }
  });
});

describe('avcC', () => {
  // From an MP4 ffmpeg wrote for the B-frame fixture's settings (High profile, 320x240).
  const ffmpegAvcC = hex(
    '0164000dffe100196764000dacd94141fb011000000300100000030320f142996001000668ebe3cb22c0fdf8f800',
  );

  it('parses profile, level, length size and parameter sets', () => {
    const cfg = parseAvcC(ffmpegAvcC);
    assert.ok(cfg);
    assert.equal(cfg.profile, 100);
    assert.equal(cfg.level, 13);
    assert.equal(cfg.lengthSize, 4);
    assert.equal(cfg.sps.length, 1);
    assert.equal(cfg.pps.length, 1);
    assert.equal(nalType(cfg.sps[0]!), 7);
    assert.equal(nalType(cfg.pps[0]!), 8);
  });

  it('builds the same bytes ffmpeg writes, including the High profile extension', () => {
    const cfg = parseAvcC(ffmpegAvcC)!;
    assert.deepEqual(buildAvcC(cfg.sps, cfg.pps), ffmpegAvcC);
  });

  it('rejects malformed records', () => {
    assert.equal(parseAvcC(Buffer.alloc(0)), undefined);
    assert.equal(parseAvcC(ffmpegAvcC.subarray(0, 20)), undefined);
    assert.equal(parseAvcC(Buffer.from([2, 0x64, 0, 13, 0xff, 0xe0, 0])), undefined);
  });

  it('gives RFC 6381 codec strings', () => {
    assert.equal(avcCodecString(ffmpegAvcC), 'avc1.64000d');
    assert.equal(avcCodecString(hex('6742c00dda0507ec0440000003004000000c83c50aa8')), 'avc1.42c00d');
  });
});

describe('NAL framing', () => {
  it('splits Annex B with 3- and 4-byte start codes, dropping leading bytes and trailing zeros', () => {
    const buf = hex(
      'ff' + '00000001' + '0910' + '000001' + '6742' + '0000' + '00000001' + '65aa00bb' + '000000',
    );
    assert.deepEqual(splitAnnexB(buf), [hex('0910'), hex('6742'), hex('65aa00bb')]);
    assert.deepEqual(splitAnnexB(hex('000000')), []);
    assert.deepEqual(splitAnnexB(hex('000001')), []);
  });

  it('converts NAL units to AVCC and back', () => {
    const nals = [hex('6742c00d'), hex('68ce'), hex('65888000000301')];
    const avcc = nalsToAvcc(nals);
    assert.deepEqual(splitAvcc(avcc), nals);
  });

  it('handles 2-byte lengths and stops at a length that overruns the buffer', () => {
    assert.deepEqual(splitAvcc(hex('0002aabb0001cc'), 2), [hex('aabb'), hex('cc')]);
    assert.deepEqual(splitAvcc(hex('00000002aabb000000ffcc')), [hex('aabb')]);
  });

  it('classifies NAL unit types', () => {
    assert.equal(nalType(hex('65')), 5);
    assert.ok(isIdr(hex('6588')));
    assert.ok(!isIdr(hex('4188')));
    assert.equal(nalType(Buffer.alloc(0)), 0);
  });

  it('removes emulation prevention bytes', () => {
    assert.deepEqual(unescapeRbsp(hex('0000030100000300')), hex('000001000000'));
    assert.deepEqual(unescapeRbsp(hex('000003')), hex('0000'));
  });
});

describe('H.265', () => {
  // libx265 1920x1080 Main profile parameter sets and the hvcC ffmpeg wrote for them.
  const vps = hex('40010c01ffff016000000300900000030000030078959809');
  const sps = hex('420101016000000300900000030000030078a003c08010e596566924caf0168080000003008000000c84');
  const pps = hex('4401c172b46240');
  const ffmpegHvcCHead = hex('01016000000090000000000078f000fcfdf8f800000f');

  it('reads NAL types and IRAP pictures', () => {
    assert.equal(hevcNalType(vps), 32);
    assert.equal(hevcNalType(sps), 33);
    assert.equal(hevcNalType(pps), 34);
    assert.ok(isIrap(hex('2601'))); // IDR_W_RADL (19)
    assert.ok(isIrap(hex('2a01'))); // CRA (21)
    assert.ok(!isIrap(hex('0201'))); // TRAIL_R (1)
  });

  it('parses the SPS picture size', () => {
    const info = parseHevcSps(sps);
    assert.equal(info?.width, 1920);
    assert.equal(info?.height, 1080);
    assert.equal(info?.chromaFormatIdc, 1);
    assert.equal(parseHevcSps(sps.subarray(0, 10)), undefined);
  });

  it('builds an hvcC whose fixed header matches ffmpeg and whose arrays parse back', () => {
    const hvcC = buildHvcC([vps], [sps], [pps]);
    assert.deepEqual(hvcC.subarray(0, 22), ffmpegHvcCHead);
    assert.deepEqual(parseHvcC(hvcC), { lengthSize: 4, vps: [vps], sps: [sps], pps: [pps] });
    assert.equal(parseHvcC(hvcC.subarray(0, 30)), undefined);
  });
});
