/**
 * CRC-32/MPEG-2 for PSI sections (ISO/IEC 13818-1 Annex A): polynomial 0x04C11DB7,
 * initial value 0xFFFFFFFF, no bit reflection and no final XOR. zlib's crc32 is the
 * reflected variant, so Node's built-ins cannot be reused here.
 */

const TABLE = (() => {
  const table = new Uint32Array(256);
  for (let i = 0; i < 256; i++) {
    let c = i << 24;
    for (let k = 0; k < 8; k++) c = c & 0x80000000 ? (c << 1) ^ 0x04c11db7 : c << 1;
    table[i] = c >>> 0;
  }
  return table;
})();

/** CRC of `data[start, end)`. A whole section including its CRC_32 field yields 0. */
export function crc32(data: Uint8Array, start = 0, end = data.length): number {
  let crc = 0xffffffff;
  for (let i = start; i < end; i++) {
    crc = (crc << 8) ^ (TABLE[((crc >>> 24) ^ (data[i] ?? 0)) & 0xff] ?? 0);
  }
  return crc >>> 0;
}
