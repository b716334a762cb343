/**
 * H.265/HEVC helpers: NAL unit types (ITU-T H.265 Table 7-1), the hvcC decoder
 * configuration record (ISO/IEC 14496-15 §8.3.3.1) and the SPS fields (H.265 §7.3.2.2)
 * that hvcC and picture-size reporting need. Framing (Annex B ⇄ length-prefixed) is shared
 * with H.264 and lives in h264.ts. Pure functions; malformed input yields undefined.
 */
import { BitReader, fitsLength16, tryRead, unescapeRbsp } from './h264.js';

export const HevcNalType = {
  /** IRAP pictures (BLA/IDR/CRA and reserved IRAP types) are 16..23. */
  BLA_W_LP: 16,
  RSV_IRAP_23: 23,
  VPS: 32,
  SPS: 33,
  PPS: 34,
  AUD: 35,
  PREFIX_SEI: 39,
} as const;

/** nal_unit_type: bits 1..6 of the first header byte. */
export function hevcNalType(nal: Uint8Array): number {
  return ((nal[0] ?? 0) >> 1) & 0x3f;
}

/** Intra random access point: a picture a decoder can start from. */
export function isIrap(nal: Uint8Array): boolean {
  const t = hevcNalType(nal);
  return t >= HevcNalType.BLA_W_LP && t <= HevcNalType.RSV_IRAP_23;
}

export interface HevcSpsInfo {
  /** general_profile_space..general_level_idc: the 12 bytes hvcC copies verbatim. */
  generalPtl: Buffer;
  maxSubLayers: number;
  temporalIdNesting: number;
  chromaFormatIdc: number;
  bitDepthLuma: number;
  bitDepthChroma: number;
  width: number;
  height: number;
}

/** Parses an SPS NAL unit (with its 2-byte header). */
export function parseHevcSps(nal: Uint8Array): HevcSpsInfo | undefined {
  if (hevcNalType(nal) !== HevcNalType.SPS || nal.length < 16) return undefined;
  const rbsp = unescapeRbsp(nal.subarray(2));
  const r = new BitReader(rbsp);
  return tryRead(() => {
    r.bits(4); // sps_video_parameter_set_id
    const maxSubLayersMinus1 = r.bits(3);
    const temporalIdNesting = r.bit();
    // general profile_tier_level is byte-aligned here: bytes 1..12 of the RBSP.
    const generalPtl = Buffer.from(rbsp.subarray(1, 13));
    r.skip(96);
    const profilePresent: number[] = [];
    const levelPresent: number[] = [];
    for (let i = 0; i < maxSubLayersMinus1; i++) {
      profilePresent.push(r.bit());
      levelPresent.push(r.bit());
    }
    if (maxSubLayersMinus1 > 0) r.skip(2 * (8 - maxSubLayersMinus1));
    for (let i = 0; i < maxSubLayersMinus1; i++) {
      if (profilePresent[i]) r.skip(88);
      if (levelPresent[i]) r.skip(8);
    }
    r.ue(); // sps_seq_parameter_set_id
    const chromaFormatIdc = r.ue();
    let separateColourPlane = 0;
    if (chromaFormatIdc === 3) separateColourPlane = r.bit();
    let width = r.ue();
    let height = r.ue();
    if (r.bit()) {
      // Conformance window offsets are in chroma sample units (§7.4.3.2.1).
      const chromaArrayType = separateColourPlane ? 0 : chromaFormatIdc;
      const subW = chromaArrayType === 1 || chromaArrayType === 2 ? 2 : 1;
      const subH = chromaArrayType === 1 ? 2 : 1;
      width -= subW * (r.ue() + r.ue());
      height -= subH * (r.ue() + r.ue());
    }
    const bitDepthLuma = 8 + r.ue();
    const bitDepthChroma = 8 + r.ue();
    if (width <= 0 || height <= 0) return undefined;
    return {
      generalPtl,
      maxSubLayers: maxSubLayersMinus1 + 1,
      temporalIdNesting,
      chromaFormatIdc,
      bitDepthLuma,
      bitDepthChroma,
      width,
      height,
    };
  });
}

export interface HevcConfig {
  lengthSize: number;
  vps: Buffer[];
  sps: Buffer[];
  pps: Buffer[];
}

/** Extracts the parameter sets from an hvcC record. */
export function parseHvcC(buf: Buffer): HevcConfig | undefined {
  if (buf.length < 23 || buf[0] !== 1) return undefined;
  const lengthSize = ((buf[21] ?? 0) & 3) + 1;
  const cfg: HevcConfig = { lengthSize, vps: [], sps: [], pps: [] };
  const arrays = buf[22] ?? 0;
  let pos = 23;
  for (let a = 0; a < arrays; a++) {
    if (pos + 3 > buf.length) return undefined;
    const type = (buf[pos] ?? 0) & 0x3f;
    const count = buf.readUInt16BE(pos + 1);
    pos += 3;
    for (let i = 0; i < count; i++) {
      if (pos + 2 > buf.length) return undefined;
      const len = buf.readUInt16BE(pos);
      pos += 2;
      if (pos + len > buf.length) return undefined;
      const nal = buf.subarray(pos, pos + len);
      pos += len;
      if (type === HevcNalType.VPS) cfg.vps.push(nal);
      else if (type === HevcNalType.SPS) cfg.sps.push(nal);
      else if (type === HevcNalType.PPS) cfg.pps.push(nal);
    }
  }
  return cfg;
}

/**
 * Builds an hvcC (4-byte NAL lengths) from parameter sets. Profile, tier, level, chroma
 * format and bit depths come from the first SPS; fields hvcC allows to be "unknown"
 * (min_spatial_segmentation, parallelism, frame rate) are written as 0.
 */
export function buildHvcC(
  allVps: readonly Buffer[],
  allSps: readonly Buffer[],
  allPps: readonly Buffer[],
): Buffer {
  // Lengths and per-array counts are 16-bit: what does not fit is left out (see buildAvcC).
  const [vps, sps, pps] = [allVps, allSps, allPps].map((sets) =>
    sets.filter(fitsLength16).slice(0, 0xffff),
  ) as [Buffer[], Buffer[], Buffer[]];
  const first = sps[0];
  const info = first ? parseHevcSps(first) : undefined;
  const head = Buffer.alloc(23);
  head[0] = 1;
  (info?.generalPtl ?? Buffer.alloc(12)).copy(head, 1);
  head.writeUInt16BE(0xf000, 13);
  head[15] = 0xfc;
  head[16] = 0xfc | (info?.chromaFormatIdc ?? 1);
  head[17] = 0xf8 | ((info?.bitDepthLuma ?? 8) - 8);
  head[18] = 0xf8 | ((info?.bitDepthChroma ?? 8) - 8);
  head.writeUInt16BE(0, 19);
  head[21] = ((info?.maxSubLayers ?? 1) << 3) | ((info?.temporalIdNesting ?? 0) << 2) | 3;
  const arrays: [number, readonly Buffer[]][] = [
    [HevcNalType.VPS, vps],
    [HevcNalType.SPS, sps],
    [HevcNalType.PPS, pps],
  ];
  const present = arrays.filter(([, nals]) => nals.length > 0);
  head[22] = present.length;
  const parts: Buffer[] = [head];
  for (const [type, nals] of present) {
    const h = Buffer.alloc(3);
    h[0] = 0x80 | type; // array_completeness: all sets of this type are in the record
    h.writeUInt16BE(nals.length, 1);
    parts.push(h);
    for (const nal of nals) {
      const len = Buffer.alloc(2);
      len.writeUInt16BE(nal.length);
      parts.push(len, nal);
    }
  }
  return Buffer.concat(parts);
}
