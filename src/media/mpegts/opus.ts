/**
 * Opus in MPEG-TS (ETSI TS 102 366 annex): the registration descriptor that marks an Opus
 * stream, the access-unit framing inside its PES, and each packet's duration (RFC 6716 §3.1).
 */

/** Channel count from an 'Opus' registration + extension descriptor, or undefined. */
export function opusDescriptor(desc: Buffer): number | undefined {
  let registered = false;
  let channels = 2;
  for (let i = 0; i + 2 <= desc.length;) {
    const tag = desc[i] ?? 0;
    const len = desc[i + 1] ?? 0;
    const body = desc.subarray(i + 2, i + 2 + len);
    if (tag === 0x05 && body.toString('latin1', 0, 4) === 'Opus') registered = true;
    if (tag === 0x7f && body[0] === 0x80 && body.length >= 2) {
      const code = body[1] ?? 0;
      if (code >= 1 && code <= 8) channels = code;
    }
    i += 2 + len;
  }
  return registered ? channels : undefined;
}

/** Splits opus_access_units (control header + packet); undefined if malformed. */
export function splitOpusAccessUnits(buf: Buffer): Buffer[] | undefined {
  const out: Buffer[] = [];
  let pos = 0;
  while (pos < buf.length) {
    if (pos + 2 > buf.length || buf.readUInt16BE(pos) >> 5 !== 0x3ff) return undefined;
    const flags = buf[pos + 1] ?? 0;
    pos += 2;
    let size = 0;
    for (;;) {
      const b = buf[pos++];
      if (b === undefined) return undefined;
      size += b;
      if (b !== 0xff) break;
    }
    if (flags & 0x10) pos += 2; // start_trim
    if (flags & 0x08) pos += 2; // end_trim
    if (flags & 0x04) pos += 1 + (buf[pos] ?? 0); // control_extension
    if (pos + size > buf.length) return undefined;
    out.push(buf.subarray(pos, pos + size));
    pos += size;
  }
  return out;
}

/** Samples at 48 kHz in one Opus packet, from its TOC byte (RFC 6716 §3.1). */
export function opusSamples(packet: Buffer): number {
  const toc = packet[0] ?? 0;
  const config = toc >> 3;
  let frame: number; // samples per frame at 48 kHz
  if (config < 12) frame = [480, 960, 1920, 2880][config & 3] ?? 960;
  else if (config < 16) frame = config & 1 ? 960 : 480;
  else frame = [120, 240, 480, 960][config & 3] ?? 960;
  const code = toc & 3;
  const count = code === 0 ? 1 : code === 3 ? (packet[1] ?? 0) & 0x3f : 2;
  return frame * count;
}
