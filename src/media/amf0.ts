/**
 * AMF0 (Action Message Format 0) encoder and decoder: the value format of RTMP command and
 * data messages and of FLV script tags (onMetaData).
 *
 * Hand-written rather than taken from npm: the AMF packages there are unmaintained, decode with
 * unbounded recursion, and throw RangeError on truncated input. Here every malformed input
 * becomes an `Amf0Error`, so an RTMP connection can close with a protocol reason.
 *
 * Specification: Adobe "Action Message Format -- AMF 0" (2007), §2.
 */

/** A decoded AMF0 value. ECMA arrays decode to objects and dates to milliseconds since the epoch. */
export type Amf0Value =
  number | boolean | string | null | undefined | Amf0Value[] | { [k: string]: Amf0Value };

/** An AMF0 object or ECMA array: string keys to values. */
export type Amf0Object = { [k: string]: Amf0Value };

/** Thrown on malformed AMF0 input, and on values that AMF0 cannot carry. */
export class Amf0Error extends Error {
  override name = 'Amf0Error';
}

/** Type markers, AMF0 spec §2.1. */
const Marker = {
  Number: 0x00,
  Boolean: 0x01,
  String: 0x02,
  Object: 0x03,
  MovieClip: 0x04,
  Null: 0x05,
  Undefined: 0x06,
  Reference: 0x07,
  EcmaArray: 0x08,
  ObjectEnd: 0x09,
  StrictArray: 0x0a,
  Date: 0x0b,
  LongString: 0x0c,
  Unsupported: 0x0d,
  XmlDocument: 0x0f,
  TypedObject: 0x10,
  AvmPlusObject: 0x11,
} as const;

/**
 * Nesting limit for objects and arrays. RTMP commands nest two or three levels deep; without a
 * limit a peer could send thousands of nested object markers and overflow the JS stack (a
 * RangeError that escapes as a crash instead of a protocol error). The same limit stops the
 * encoder from looping on a cyclic object.
 */
export const MAX_AMF0_DEPTH = 32;

/** Strings of up to 65535 UTF-8 bytes use the short form (u16 length); longer ones the long form. */
const MAX_SHORT_STRING_BYTES = 0xffff;

// ---------------------------------------------------------------------------------------------
// Encoding

/** Encodes values back to back, as RTMP command messages carry them (name, txId, args...). */
export function encodeAmf0(...values: Amf0Value[]): Buffer {
  const parts: Buffer[] = [];
  for (const value of values) encodeValue(value, parts, 0);
  return Buffer.concat(parts);
}

/**
 * Encodes an object as an ECMA array (marker 0x08). FLV onMetaData must be an ECMA array:
 * ffmpeg and most players ignore a plain AMF0 object there.
 */
export function encodeAmf0EcmaArray(obj: Amf0Object): Buffer {
  const entries = Object.entries(obj);
  const header = Buffer.alloc(5);
  header[0] = Marker.EcmaArray;
  header.writeUInt32BE(entries.length, 1);
  const parts: Buffer[] = [header];
  encodeProperties(entries, parts, 1);
  return Buffer.concat(parts);
}

function encodeValue(value: Amf0Value, parts: Buffer[], depth: number): void {
  if (value === undefined) {
    parts.push(Buffer.of(Marker.Undefined));
  } else if (value === null) {
    parts.push(Buffer.of(Marker.Null));
  } else if (typeof value === 'number') {
    const out = Buffer.alloc(9);
    out[0] = Marker.Number;
    out.writeDoubleBE(value, 1);
    parts.push(out);
  } else if (typeof value === 'boolean') {
    parts.push(Buffer.of(Marker.Boolean, value ? 1 : 0));
  } else if (typeof value === 'string') {
    const bytes = Buffer.from(value, 'utf8');
    if (bytes.length <= MAX_SHORT_STRING_BYTES) {
      const header = Buffer.alloc(3);
      header[0] = Marker.String;
      header.writeUInt16BE(bytes.length, 1);
      parts.push(header, bytes);
    } else {
      const header = Buffer.alloc(5);
      header[0] = Marker.LongString;
      header.writeUInt32BE(bytes.length, 1);
      parts.push(header, bytes);
    }
  } else {
    if (depth >= MAX_AMF0_DEPTH) throw new Amf0Error(`amf0 value nested deeper than ${MAX_AMF0_DEPTH}`);
    if (Array.isArray(value)) {
      const header = Buffer.alloc(5);
      header[0] = Marker.StrictArray;
      header.writeUInt32BE(value.length, 1);
      parts.push(header);
      for (const item of value) encodeValue(item, parts, depth + 1);
    } else {
      parts.push(Buffer.of(Marker.Object));
      encodeProperties(Object.entries(value), parts, depth + 1);
    }
  }
}

function encodeProperties(entries: [string, Amf0Value][], parts: Buffer[], depth: number): void {
  for (const [key, item] of entries) {
    const keyBytes = Buffer.from(key, 'utf8');
    if (keyBytes.length > MAX_SHORT_STRING_BYTES) {
      throw new Amf0Error('amf0 property name longer than 65535 bytes');
    }
    const keyHeader = Buffer.alloc(2);
    keyHeader.writeUInt16BE(keyBytes.length);
    parts.push(keyHeader, keyBytes);
    encodeValue(item, parts, depth);
  }
  // An empty name followed by the object-end marker closes the object (spec §2.5).
  parts.push(Buffer.of(0x00, 0x00, Marker.ObjectEnd));
}

// ---------------------------------------------------------------------------------------------
// Decoding

/** Decodes every value in the buffer. Throws `Amf0Error` on truncated or unknown input. */
export function decodeAmf0(buf: Buffer): Amf0Value[] {
  const reader = new Amf0Reader(buf);
  const values: Amf0Value[] = [];
  while (reader.remaining() > 0) values.push(reader.readValue(0));
  return values;
}

class Amf0Reader {
  private pos = 0;

  constructor(private readonly buf: Buffer) {}

  remaining(): number {
    return this.buf.length - this.pos;
  }

  readValue(depth: number): Amf0Value {
    const marker = this.readUInt8();
    switch (marker) {
      case Marker.Number:
        return this.readDouble();
      case Marker.Boolean:
        return this.readUInt8() !== 0;
      case Marker.String:
        return this.readUtf8(this.readUInt16());
      case Marker.LongString:
      case Marker.XmlDocument:
        return this.readUtf8(this.readUInt32());
      case Marker.Null:
        return null;
      case Marker.Undefined:
      case Marker.Unsupported:
        return undefined;
      case Marker.Date: {
        const millis = this.readDouble();
        // The time-zone field is reserved and must be ignored (spec §2.13).
        this.take(2);
        return millis;
      }
      case Marker.Object:
        return this.readProperties(this.enter(depth), false);
      case Marker.TypedObject:
        // The class name only matters to Flash's deserializer; keep the properties.
        this.readUtf8(this.readUInt16());
        return this.readProperties(this.enter(depth), false);
      case Marker.EcmaArray:
        // The count is only a hint (spec §2.10): the properties end with the object-end marker.
        this.readUInt32();
        return this.readProperties(this.enter(depth), true);
      case Marker.StrictArray: {
        const count = this.readUInt32();
        // Each value takes at least one byte, so a larger count is a lie; checking up front
        // avoids a loop of four billion iterations on a 5-byte input.
        if (count > this.remaining()) throw new Amf0Error(`amf0 strict array count ${count} exceeds input`);
        const childDepth = this.enter(depth);
        const items: Amf0Value[] = [];
        for (let i = 0; i < count; i++) items.push(this.readValue(childDepth));
        return items;
      }
      case Marker.ObjectEnd:
        throw new Amf0Error('amf0 object-end marker outside an object');
      case Marker.Reference:
      case Marker.MovieClip:
        throw new Amf0Error(`amf0 marker 0x${marker.toString(16).padStart(2, '0')} is not supported`);
      case Marker.AvmPlusObject:
        throw new Amf0Error('amf3 values inside amf0 are not supported');
      default:
        throw new Amf0Error(`unknown amf0 marker 0x${marker.toString(16).padStart(2, '0')}`);
    }
  }

  private enter(depth: number): number {
    if (depth + 1 > MAX_AMF0_DEPTH) throw new Amf0Error(`amf0 value nested deeper than ${MAX_AMF0_DEPTH}`);
    return depth + 1;
  }

  private readProperties(depth: number, isEcmaArray: boolean): Amf0Object {
    const obj: Amf0Object = {};
    for (;;) {
      // Some encoders end a top-level ECMA array at the end of the buffer without the end marker.
      if (isEcmaArray && this.remaining() === 0) return obj;
      const key = this.readUtf8(this.readUInt16());
      if (key === '' && this.remaining() > 0 && this.buf[this.pos] === Marker.ObjectEnd) {
        this.pos += 1;
        return obj;
      }
      const value = this.readValue(depth);
      // A peer-chosen "__proto__" key must become a plain property, not replace the prototype.
      if (key === '__proto__') {
        Object.defineProperty(obj, key, { value, enumerable: true, writable: true, configurable: true });
      } else {
        obj[key] = value;
      }
    }
  }

  private take(length: number): Buffer {
    if (length > this.remaining()) {
      throw new Amf0Error(
        `amf0 input truncated: need ${length} bytes at offset ${this.pos}, have ${this.remaining()}`,
      );
    }
    const bytes = this.buf.subarray(this.pos, this.pos + length);
    this.pos += length;
    return bytes;
  }

  private readUInt8(): number {
    return this.take(1).readUInt8(0);
  }

  private readUInt16(): number {
    return this.take(2).readUInt16BE(0);
  }

  private readUInt32(): number {
    return this.take(4).readUInt32BE(0);
  }

  private readDouble(): number {
    return this.take(8).readDoubleBE(0);
  }

  private readUtf8(length: number): string {
    return this.take(length).toString('utf8');
  }
}
