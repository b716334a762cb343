/**
 * H.264 helpers: NAL unit framing (Annex B ⇄ AVCC), the avcC decoder configuration record
 * (ISO/IEC 14496-15 §5.3.3.1), and just enough SPS parsing (ISO/IEC 14496-10 §7.3.2.1.1)
 * for picture size and codec strings.
 *
 * Hand-written because every input and output needs these few functions over Buffers and
 * none of them needs a full bitstream parser; all functions are pure and never throw on
 * malformed input (they return undefined or skip what they cannot read).
 */

/** nal_unit_type values (ISO/IEC 14496-10 Table 7-1) that the framing code cares about. */
export const NalType = {
  NON_IDR: 1,
  IDR: 5,
  SEI: 6,
  SPS: 7,
  PPS: 8,
  AUD: 9,
  FILLER: 12,
} as const;

export function nalType(nal: Uint8Array): number {
  return (nal[0] ?? 0) & 0x1f;
}

export function isIdr(nal: Uint8Array): boolean {
  return nalType(nal) === NalType.IDR;
}

/**
 * Splits an Annex B byte stream into NAL units (without start codes). Accepts 3- and
 * 4-byte start codes; bytes before the first start code are dropped. Trailing zero bytes
 * are trimmed from each unit: a NAL unit ends in rbsp_trailing_bits (a non-zero byte), so
 * zeros before a start code are leading_zero_8bits/trailing_zero_8bits, not payload.
 */
export function splitAnnexB(buf: Buffer): Buffer[] {
  const out: Buffer[] = [];
  let start = -1;
  const n = buf.length;
  let i = 0;
  while (i + 2 < n) {
    // Fast skip: a start code needs a zero at i+2 unless it is 00 00 01 at i.
    const b2 = buf[i + 2];
    if (b2 !== 0 && b2 !== 1) {
      i += 3;
      continue;
    }
    if (buf[i] === 0 && buf[i + 1] === 0 && b2 === 1) {
      if (start >= 0) pushTrimmed(out, buf, start, i);
      i += 3;
      start = i;
      continue;
    }
    i++;
  }
  if (start >= 0) pushTrimmed(out, buf, start, n);
  return out;
}

function pushTrimmed(out: Buffer[], buf: Buffer, start: number, end: number): void {
  while (end > start && buf[end - 1] === 0) end--;
  if (end > start) out.push(buf.subarray(start, end));
}

/** Splits length-prefixed (AVCC/HVCC) data into NAL units; stops at the first bad length. */
export function splitAvcc(data: Buffer, lengthSize = 4): Buffer[] {
  const out: Buffer[] = [];
  let pos = 0;
  while (pos + lengthSize <= data.length) {
    const len = data.readUIntBE(pos, lengthSize);
    pos += lengthSize;
    if (len === 0) continue;
    if (pos + len > data.length) break;
    out.push(data.subarray(pos, pos + len));
    pos += len;
  }
  return out;
}

/** NAL units → AVCC with 4-byte big-endian lengths (the layout of Frame.data). */
export function nalsToAvcc(nals: readonly Buffer[]): Buffer {
  let size = 0;
  for (const nal of nals) size += 4 + nal.length;
  const out = Buffer.allocUnsafe(size);
  let pos = 0;
  for (const nal of nals) {
    out.writeUInt32BE(nal.length, pos);
    nal.copy(out, pos + 4);
    pos += 4 + nal.length;
  }
  return out;
}

/** Removes emulation_prevention_three_byte (00 00 03 → 00 00), §7.4.1. */
export function unescapeRbsp(nal: Uint8Array): Buffer {
  const out = Buffer.allocUnsafe(nal.length);
  let o = 0;
  let zeros = 0;
  for (let i = 0; i < nal.length; i++) {
    const b = nal[i] ?? 0;
    if (zeros >= 2 && b === 3) {
      zeros = 0;
      continue;
    }
    zeros = b === 0 ? zeros + 1 : 0;
    out[o++] = b;
  }
  return out.subarray(0, o);
}

class EndOfData extends Error {}

/** MSB-first bit reader with Exp-Golomb codes (§9.1). Throws EndOfData past the end. */
export class BitReader {
  private pos = 0;
  constructor(private readonly buf: Uint8Array) {}

  bit(): number {
    const byte = this.buf[this.pos >> 3];
    if (byte === undefined) throw new EndOfData();
    const v = (byte >> (7 - (this.pos & 7))) & 1;
    this.pos++;
    return v;
  }

  bits(n: number): number {
    let v = 0;
    for (let i = 0; i < n; i++) v = v * 2 + this.bit();
    return v;
  }

  skip(n: number): void {
    this.pos += n;
    if (this.pos > this.buf.length * 8) throw new EndOfData();
  }

  ue(): number {
    let zeros = 0;
    while (this.bit() === 0) {
      // 32 leading zeros would exceed every field this module reads: treat as corrupt.
      if (++zeros > 31) throw new EndOfData();
    }
    return 2 ** zeros - 1 + this.bits(zeros);
  }

  se(): number {
    const k = this.ue();
    return k & 1 ? (k + 1) / 2 : -(k / 2);
  }
}

/** Runs a parser that may read past the end; returns undefined instead of throwing. */
export function tryRead<T>(read: () => T): T | undefined {
  try {
    return read();
  } catch (err) {
    if (err instanceof EndOfData) return undefined;
    throw err;
  }
}

export interface SpsInfo {
  profile: number;
  /** The constraint_set flags byte (profile_compatibility in avcC). */
  compat: number;
  level: number;
  chromaFormatIdc: number;
  bitDepthLuma: number;
  bitDepthChroma: number;
  width: number;
  height: number;
}

/** Profiles whose SPS carries chroma_format_idc, bit depths and scaling lists (§7.3.2.1.1). */
const HIGH_PROFILES = new Set([100, 110, 122, 244, 44, 83, 86, 118, 128, 138, 139, 134, 135]);

function skipScalingList(r: BitReader, size: number): void {
  let last = 8;
  let next = 8;
  for (let j = 0; j < size; j++) {
    if (next !== 0) next = (last + r.se() + 256) % 256;
    if (next !== 0) last = next;
  }
}

/** Parses an SPS NAL unit (with its 1-byte header). */
export function parseSps(nal: Uint8Array): SpsInfo | undefined {
  if (nalType(nal) !== NalType.SPS || nal.length < 4) return undefined;
  const r = new BitReader(unescapeRbsp(nal.subarray(1)));
  return tryRead(() => {
    const profile = r.bits(8);
    const compat = r.bits(8);
    const level = r.bits(8);
    r.ue(); // seq_parameter_set_id
    let chromaFormatIdc = 1;
    let separateColourPlane = 0;
    let bitDepthLuma = 8;
    let bitDepthChroma = 8;
    if (HIGH_PROFILES.has(profile)) {
      chromaFormatIdc = r.ue();
      if (chromaFormatIdc === 3) separateColourPlane = r.bit();
      bitDepthLuma = 8 + r.ue();
      bitDepthChroma = 8 + r.ue();
      r.bit(); // qpprime_y_zero_transform_bypass_flag
      if (r.bit()) {
        const lists = chromaFormatIdc === 3 ? 12 : 8;
        for (let i = 0; i < lists; i++) if (r.bit()) skipScalingList(r, i < 6 ? 16 : 64);
      }
    }
    r.ue(); // log2_max_frame_num_minus4
    const pocType = r.ue();
    if (pocType === 0) {
      r.ue();
    } else if (pocType === 1) {
      r.bit();
      r.se();
      r.se();
      const cycle = r.ue();
      if (cycle > 255) return undefined;
      for (let i = 0; i < cycle; i++) r.se();
    }
    r.ue(); // max_num_ref_frames
    r.bit(); // gaps_in_frame_num_value_allowed_flag
    const widthMbs = r.ue() + 1;
    const heightMapUnits = r.ue() + 1;
    const frameMbsOnly = r.bit();
    if (!frameMbsOnly) r.bit(); // mb_adaptive_frame_field_flag
    r.bit(); // direct_8x8_inference_flag
    let cropLeft = 0;
    let cropRight = 0;
    let cropTop = 0;
    let cropBottom = 0;
    if (r.bit()) {
      cropLeft = r.ue();
      cropRight = r.ue();
      cropTop = r.ue();
      cropBottom = r.ue();
    }
    // Crop units per §7.4.2.1.1 (equations 7-19 .. 7-22).
    const chromaArrayType = separateColourPlane ? 0 : chromaFormatIdc;
    const subWidthC = chromaArrayType === 1 || chromaArrayType === 2 ? 2 : 1;
    const subHeightC = chromaArrayType === 1 ? 2 : 1;
    const cropUnitX = chromaArrayType === 0 ? 1 : subWidthC;
    const cropUnitY = (chromaArrayType === 0 ? 1 : subHeightC) * (2 - frameMbsOnly);
    const width = widthMbs * 16 - cropUnitX * (cropLeft + cropRight);
    const height = (2 - frameMbsOnly) * heightMapUnits * 16 - cropUnitY * (cropTop + cropBottom);
    if (width <= 0 || height <= 0) return undefined;
    return { profile, compat, level, chromaFormatIdc, bitDepthLuma, bitDepthChroma, width, height };
  });
}

/** Displayed picture size from an SPS NAL unit. */
export function spsDimensions(nal: Uint8Array): { width: number; height: number } | undefined {
  const info = parseSps(nal);
  return info && { width: info.width, height: info.height };
}

export interface AvcConfig {
  profile: number;
  compat: number;
  level: number;
  /** Bytes per NAL length prefix in AVCC data (1, 2 or 4). */
  lengthSize: number;
  sps: Buffer[];
  pps: Buffer[];
}

/** Parses an AVCDecoderConfigurationRecord (ISO/IEC 14496-15 §5.3.3.1). */
export function parseAvcC(buf: Buffer): AvcConfig | undefined {
  if (buf.length < 7 || buf[0] !== 1) return undefined;
  const lengthSize = ((buf[4] ?? 0) & 3) + 1;
  if (lengthSize === 3) return undefined;
  let pos = 5;
  const readSets = (count: number): Buffer[] | undefined => {
    const sets: Buffer[] = [];
    for (let i = 0; i < count; i++) {
      if (pos + 2 > buf.length) return undefined;
      const len = buf.readUInt16BE(pos);
      pos += 2;
      if (pos + len > buf.length) return undefined;
      sets.push(buf.subarray(pos, pos + len));
      pos += len;
    }
    return sets;
  };
  const sps = readSets((buf[pos++] ?? 0) & 0x1f);
  if (!sps || pos >= buf.length) return undefined;
  const pps = readSets(buf[pos++] ?? 0);
  if (!pps) return undefined;
  return { profile: buf[1] ?? 0, compat: buf[2] ?? 0, level: buf[3] ?? 0, lengthSize, sps, pps };
}

/**
 * Builds an avcC with 4-byte NAL lengths. Profile and level come from the first SPS; the
 * high-profile extension (chroma format, bit depths) is written because ISO/IEC 14496-15
 * requires it for profiles 100/110/122/144 and some MP4 parsers check for it.
 */
export function buildAvcC(allSps: readonly Buffer[], allPps: readonly Buffer[]): Buffer {
  // The record holds 16-bit lengths, 5-bit SPS and 8-bit PPS counts. Sets beyond that (only a
  // hostile stream has them: H.264 allows 32 SPS and 256 PPS ids) are left out, so the record
  // stays readable and building it cannot throw.
  const sps = allSps.filter(fitsLength16).slice(0, 31);
  const pps = allPps.filter(fitsLength16).slice(0, 255);
  const first = sps[0];
  const info = first ? parseSps(first) : undefined;
  const parts: Buffer[] = [
    Buffer.from([1, first?.[1] ?? 0, first?.[2] ?? 0, first?.[3] ?? 0, 0xff, 0xe0 | sps.length]),
  ];
  const pushSet = (nal: Buffer): void => {
    const len = Buffer.allocUnsafe(2);
    len.writeUInt16BE(nal.length);
    parts.push(len, nal);
  };
  sps.forEach(pushSet);
  parts.push(Buffer.from([pps.length]));
  pps.forEach(pushSet);
  const profile = first?.[1] ?? 0;
  if (info && (profile === 100 || profile === 110 || profile === 122 || profile === 144)) {
    parts.push(
      Buffer.from([
        0xfc | info.chromaFormatIdc,
        0xf8 | (info.bitDepthLuma - 8),
        0xf8 | (info.bitDepthChroma - 8),
        0,
      ]),
    );
  }
  return Buffer.concat(parts);
}

/** A parameter set whose length an avcC/hvcC 16-bit length field can hold. */
export function fitsLength16(nal: Uint8Array): boolean {
  return nal.length <= 0xffff;
}

function hex2(n: number): string {
  return n.toString(16).padStart(2, '0');
}

/** RFC 6381 codec string (`avc1.PPCCLL`) from an avcC record or an SPS NAL unit. */
export function avcCodecString(avcCOrSps: Uint8Array): string {
  const b = avcCOrSps;
  return `avc1.${hex2(b[1] ?? 0)}${hex2(b[2] ?? 0)}${hex2(b[3] ?? 0)}`;
}
