/**
 * PES packet headers and 33-bit MPEG timestamps (ISO/IEC 13818-1 §2.4.3.6–7): pure helpers
 * the demuxer uses to find a PES's payload and its PTS/DTS.
 */

export const WRAP = 2 ** 33;

export interface PesHeader {
  /** Payload bounds within the PES packet. */
  start: number;
  end: number;
  /** Raw 33-bit timestamps; DTS equals PTS when only a PTS is present; both absent when neither is. */
  ptsRaw?: number;
  dtsRaw?: number;
}

/**
 * Parses a complete PES packet's header; `expected` is its declared total length (0 =
 * unbounded, as video PES often are). Undefined for a damaged or unsupported header.
 */
export function parsePesHeader(data: Buffer, expected: number): PesHeader | undefined {
  if (
    data.length < 9 ||
    data[0] !== 0 ||
    data[1] !== 0 ||
    data[2] !== 1 ||
    ((data[6] ?? 0) & 0xc0) !== 0x80
  ) {
    return undefined;
  }
  const flags = (data[7] ?? 0) >> 6;
  const start = 9 + (data[8] ?? 0);
  const end = expected > 0 ? Math.min(expected, data.length) : data.length;
  if (start > end || flags === 1 || (flags !== 0 && start < (flags === 3 ? 19 : 14))) return undefined;
  if (flags < 2) return { start, end };
  const ptsRaw = readTimestamp(data, 9);
  const dtsRaw = flags === 3 ? readTimestamp(data, 14) : ptsRaw;
  return { start, end, ptsRaw, dtsRaw };
}

/** 33-bit difference as a signed number in [-2^32, 2^32). */
export function signed33(d: number): number {
  const m = ((d % WRAP) + WRAP) % WRAP;
  return m >= WRAP / 2 ? m - WRAP : m;
}

function readTimestamp(b: Buffer, pos: number): number {
  const hi = ((b[pos] ?? 0) >> 1) & 0x07;
  const mid = (b.readUInt16BE(pos + 1) >> 1) & 0x7fff;
  const lo = (b.readUInt16BE(pos + 3) >> 1) & 0x7fff;
  return hi * 2 ** 30 + mid * 2 ** 15 + lo;
}
