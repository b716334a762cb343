/**
 * RTMP chunk stream writer (Adobe RTMP spec §5.3): splits one message into chunks.
 *
 * Hand-written and sans-IO, like the reader. Stateless on purpose: every message starts with a
 * type-0 header, so the same encoded bytes can be written to every viewer of a stream whatever
 * each viewer's chunk stream history is (mux once, write many). The cost is 11 header bytes per
 * message instead of 1..7, negligible next to video payloads.
 */
/** A message to encode; `timestamp` is in milliseconds and is reduced modulo 2^32 (RTMP's wrap). */
export interface OutgoingMessage {
  csid: number;
  type: number;
  streamId: number;
  timestamp: number;
  payload: Buffer;
}

const TIMESTAMP_EXTENDED = 0xffffff;
const TIMESTAMP_MODULUS = 2 ** 32;
const MIN_CSID = 2;
const MAX_CSID = 65599;
const MAX_PAYLOAD_BYTES = 0xffffff;

/**
 * Encodes a message as a type-0 chunk followed by type-3 continuation chunks of at most
 * `chunkSize` payload bytes. With an extended timestamp, the 4-byte field is repeated after every
 * type-3 header, as the spec's wording, ffmpeg and librtmp expect (§5.3.1.3).
 */
export function encodeMessage(msg: OutgoingMessage, chunkSize: number): Buffer {
  if (!Number.isInteger(chunkSize) || chunkSize < 1) throw new RangeError(`invalid chunk size ${chunkSize}`);
  if (!Number.isInteger(msg.csid) || msg.csid < MIN_CSID || msg.csid > MAX_CSID) {
    throw new RangeError(`chunk stream id ${msg.csid} out of range ${MIN_CSID}..${MAX_CSID}`);
  }
  if (msg.payload.length > MAX_PAYLOAD_BYTES) {
    throw new RangeError(`message of ${msg.payload.length} bytes exceeds the 24-bit length field`);
  }
  const timestamp = ((Math.round(msg.timestamp) % TIMESTAMP_MODULUS) + TIMESTAMP_MODULUS) % TIMESTAMP_MODULUS;
  const isExtended = timestamp >= TIMESTAMP_EXTENDED;
  const basic0 = basicHeader(0, msg.csid);
  const basic3 = basicHeader(3, msg.csid);
  const extendedBytes = isExtended ? 4 : 0;
  const chunkCount = Math.max(1, Math.ceil(msg.payload.length / chunkSize));
  const total =
    basic0.length +
    11 +
    extendedBytes +
    (chunkCount - 1) * (basic3.length + extendedBytes) +
    msg.payload.length;
  const out = Buffer.alloc(total);

  let pos = basic0.copy(out, 0);
  out.writeUIntBE(isExtended ? TIMESTAMP_EXTENDED : timestamp, pos, 3);
  out.writeUIntBE(msg.payload.length, pos + 3, 3);
  out.writeUInt8(msg.type, pos + 6);
  // The message stream id is little-endian, unlike every other field (§5.3.1.2.1).
  out.writeUInt32LE(msg.streamId, pos + 7);
  pos += 11;
  for (let offset = 0; ;) {
    if (isExtended) pos = out.writeUInt32BE(timestamp, pos);
    const end = Math.min(offset + chunkSize, msg.payload.length);
    pos += msg.payload.copy(out, pos, offset, end);
    offset = end;
    if (offset >= msg.payload.length) break;
    pos += basic3.copy(out, pos);
  }
  return out;
}

/** Basic header (§5.3.1.1): 1 byte for csid 2..63, 2 bytes for 64..319, 3 bytes up to 65599. */
function basicHeader(fmt: number, csid: number): Buffer {
  if (csid <= 63) return Buffer.of((fmt << 6) | csid);
  if (csid <= 319) return Buffer.of(fmt << 6, csid - 64);
  return Buffer.of((fmt << 6) | 1, (csid - 64) & 0xff, (csid - 64) >> 8);
}
