/**
 * MySQL client/server protocol, the server side of it, as pure functions over Buffers: packet
 * framing, the v10 handshake, the client's HandshakeResponse41, OK/ERR/EOF and text result
 * sets. No sockets here; `machine.ts` drives these and the listener does the I/O.
 *
 * Hand-written because no well-kept library covers the server side. mysql2 has a
 * `createServer` mode, evaluated for this: it is bound to its own socket connection class (not
 * sans-IO, so not testable with captured bytes), negotiates no authentication plugin on the
 * server side (no AuthSwitchRequest, no caching_sha2_password), rethrows exceptions from the
 * auth callback into the socket handler, answers an unknown command with a `console.log` and
 * no reply (the client hangs), and puts no bound on the size of a client packet. Each of these
 * is a requirement here, and the part of the protocol a read-only endpoint needs is small.
 *
 * Reference: the MySQL client/server protocol documentation (packets, capability flags,
 * column definition 41, text resultset); MariaDB speaks the same subset.
 */

/** Capability flags (CLIENT_*) this codec reads or sets. */
export const CAP = {
  LONG_PASSWORD: 0x1,
  FOUND_ROWS: 0x2,
  LONG_FLAG: 0x4,
  CONNECT_WITH_DB: 0x8,
  NO_SCHEMA: 0x10,
  PROTOCOL_41: 0x200,
  INTERACTIVE: 0x400,
  SSL: 0x800,
  TRANSACTIONS: 0x2000,
  SECURE_CONNECTION: 0x8000,
  MULTI_STATEMENTS: 0x10000,
  MULTI_RESULTS: 0x20000,
  PLUGIN_AUTH: 0x80000,
  CONNECT_ATTRS: 0x100000,
  PLUGIN_AUTH_LENENC_CLIENT_DATA: 0x200000,
  DEPRECATE_EOF: 0x1000000,
} as const;

/**
 * What the server offers. Not DEPRECATE_EOF (every client still reads the classic EOF packets),
 * not SSL (the endpoint is meant for loopback or a private network; see README), not
 * MULTI_STATEMENTS (one statement per COM_QUERY keeps the read-only guard simple).
 */
export const SERVER_CAPS =
  CAP.LONG_PASSWORD |
  CAP.FOUND_ROWS |
  CAP.LONG_FLAG |
  CAP.CONNECT_WITH_DB |
  CAP.NO_SCHEMA |
  CAP.PROTOCOL_41 |
  CAP.INTERACTIVE |
  CAP.TRANSACTIONS |
  CAP.SECURE_CONNECTION |
  CAP.MULTI_RESULTS |
  CAP.PLUGIN_AUTH |
  CAP.CONNECT_ATTRS |
  CAP.PLUGIN_AUTH_LENENC_CLIENT_DATA;

/** SERVER_STATUS_AUTOCOMMIT: the only status bit this server ever reports. */
export const STATUS_AUTOCOMMIT = 0x0002;

/** utf8mb4_general_ci, the character set of every text value this server sends. */
export const CHARSET_UTF8MB4 = 45;
/** `binary`, the character set MySQL reports for numeric and temporal columns. */
export const CHARSET_BINARY = 63;

/** Column types (MYSQL_TYPE_*) the result sets use. */
export const TYPE = {
  DOUBLE: 0x05,
  NULL: 0x06,
  LONGLONG: 0x08,
  DATE: 0x0a,
  DATETIME: 0x0c,
  VAR_STRING: 0xfd,
  BLOB: 0xfc,
} as const;
export type ColumnType = (typeof TYPE)[keyof typeof TYPE];

/** Column flags. */
const FLAG_NOT_NULL = 0x1;
const FLAG_BINARY = 0x80;

/** Command bytes (COM_*) a client may send after authentication. */
export const COM = {
  QUIT: 0x01,
  INIT_DB: 0x02,
  QUERY: 0x03,
  FIELD_LIST: 0x04,
  STATISTICS: 0x09,
  PING: 0x0e,
  STMT_PREPARE: 0x16,
  SET_OPTION: 0x1b,
  RESET_CONNECTION: 0x1f,
} as const;

/** The largest payload one packet frame carries; longer payloads continue in the next frame. */
export const MAX_FRAME = 0xffffff;

export class ProtocolError extends Error {}

// ---------------------------------------------------------------- framing

export interface Packet {
  seq: number;
  payload: Buffer;
}

/**
 * Splits a byte stream into packets. A frame whose announced length exceeds `maxPayload` is
 * refused as soon as its 4-byte header is in, before any of it is buffered; with
 * `maxPayload` below 16 MiB a continued (multi-frame) payload is therefore refused too.
 */
export class PacketReader {
  private buf: Buffer = Buffer.alloc(0);

  constructor(private readonly maxPayload: number) {}

  /** Appends bytes; returns the complete packets. Throws `PacketTooLarge` on an oversized header. */
  push(chunk: Buffer): Packet[] {
    this.buf = this.buf.length === 0 ? chunk : Buffer.concat([this.buf, chunk]);
    const out: Packet[] = [];
    while (this.buf.length >= 4) {
      const len = this.buf.readUIntLE(0, 3);
      if (len > this.maxPayload) throw new PacketTooLarge(len);
      if (this.buf.length < 4 + len) break;
      out.push({ seq: this.buf[3] as number, payload: this.buf.subarray(4, 4 + len) });
      this.buf = this.buf.subarray(4 + len);
    }
    if (this.buf.length === 0) this.buf = Buffer.alloc(0);
    return out;
  }

  get buffered(): number {
    return this.buf.length;
  }
}

export class PacketTooLarge extends ProtocolError {
  constructor(readonly announced: number) {
    super(`packet of ${announced} bytes is over the limit`);
  }
}

/** Frames `payload` starting at sequence number `seq`; returns the bytes and the next sequence number. */
export function frame(payload: Buffer, seq: number): { bytes: Buffer; next: number } {
  const parts: Buffer[] = [];
  let off = 0;
  let s = seq;
  for (;;) {
    const n = Math.min(MAX_FRAME, payload.length - off);
    const head = Buffer.alloc(4);
    head.writeUIntLE(n, 0, 3);
    head[3] = s & 0xff;
    parts.push(head, payload.subarray(off, off + n));
    off += n;
    s = (s + 1) & 0xff;
    // A payload of exactly a multiple of MAX_FRAME ends with an empty frame.
    if (n < MAX_FRAME) break;
  }
  return { bytes: Buffer.concat(parts), next: s };
}

// ---------------------------------------------------------------- primitive encoders

export function lenencInt(n: number): Buffer {
  if (n < 0xfb) return Buffer.from([n]);
  if (n < 0x10000) {
    const b = Buffer.alloc(3);
    b[0] = 0xfc;
    b.writeUInt16LE(n, 1);
    return b;
  }
  if (n < 0x1000000) {
    const b = Buffer.alloc(4);
    b[0] = 0xfd;
    b.writeUIntLE(n, 1, 3);
    return b;
  }
  const b = Buffer.alloc(9);
  b[0] = 0xfe;
  b.writeBigUInt64LE(BigInt(n), 1);
  return b;
}

export function lenencStr(s: string | Buffer): Buffer {
  const b = typeof s === 'string' ? Buffer.from(s, 'utf8') : s;
  return Buffer.concat([lenencInt(b.length), b]);
}

/** A cursor over one payload; every read checks bounds and throws ProtocolError past the end. */
export class Reader {
  off = 0;
  constructor(readonly b: Buffer) {}

  private need(n: number): void {
    if (this.off + n > this.b.length) throw new ProtocolError('packet ends early');
  }
  get left(): number {
    return this.b.length - this.off;
  }
  u8(): number {
    this.need(1);
    return this.b[this.off++] as number;
  }
  u16(): number {
    this.need(2);
    const v = this.b.readUInt16LE(this.off);
    this.off += 2;
    return v;
  }
  u32(): number {
    this.need(4);
    const v = this.b.readUInt32LE(this.off);
    this.off += 4;
    return v;
  }
  bytes(n: number): Buffer {
    this.need(n);
    const v = this.b.subarray(this.off, this.off + n);
    this.off += n;
    return v;
  }
  /** A NUL-terminated string; at the end of the packet the terminator may be missing (old clients). */
  nulStr(): Buffer {
    const end = this.b.indexOf(0, this.off);
    const stop = end < 0 ? this.b.length : end;
    const v = this.b.subarray(this.off, stop);
    this.off = end < 0 ? stop : stop + 1;
    return v;
  }
  lenencInt(): number {
    const first = this.u8();
    if (first < 0xfb) return first;
    if (first === 0xfc) return this.u16();
    if (first === 0xfd) {
      this.need(3);
      const v = this.b.readUIntLE(this.off, 3);
      this.off += 3;
      return v;
    }
    if (first === 0xfe) {
      this.need(8);
      const v = this.b.readBigUInt64LE(this.off);
      this.off += 8;
      if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw new ProtocolError('length too large');
      return Number(v);
    }
    throw new ProtocolError(`bad length-encoded integer 0x${first.toString(16)}`);
  }
  rest(): Buffer {
    const v = this.b.subarray(this.off);
    this.off = this.b.length;
    return v;
  }
}

// ---------------------------------------------------------------- handshake

export interface Greeting {
  serverVersion: string;
  connectionId: number;
  /** 20 random bytes, none of them 0 (clients read the second part as a C string). */
  scramble: Buffer;
  authPlugin: string;
}

/** Protocol::HandshakeV10. */
export function encodeGreeting(g: Greeting): Buffer {
  if (g.scramble.length !== 20) throw new TypeError('scramble must be 20 bytes');
  const head = Buffer.alloc(4 + 8 + 1 + 2 + 1 + 2 + 2 + 1 + 10);
  let o = 0;
  head.writeUInt32LE(g.connectionId >>> 0, o);
  o += 4;
  g.scramble.copy(head, o, 0, 8);
  o += 8;
  head[o++] = 0; // filler
  head.writeUInt16LE(SERVER_CAPS & 0xffff, o);
  o += 2;
  head[o++] = CHARSET_UTF8MB4;
  head.writeUInt16LE(STATUS_AUTOCOMMIT, o);
  o += 2;
  head.writeUInt16LE(SERVER_CAPS >>> 16, o);
  o += 2;
  head[o++] = 21; // length of the auth plugin data (20 + NUL)
  // 10 reserved bytes stay zero (MariaDB reads extended capabilities there only without CLIENT_MYSQL).
  return Buffer.concat([
    Buffer.from([10]),
    Buffer.from(g.serverVersion + '\0', 'utf8'),
    head,
    g.scramble.subarray(8, 20),
    Buffer.from([0]),
    Buffer.from(g.authPlugin + '\0', 'utf8'),
  ]);
}

export interface HandshakeResponse {
  caps: number;
  maxPacket: number;
  charset: number;
  user: string;
  authResponse: Buffer;
  database?: string;
  authPlugin?: string;
  attrs: Record<string, string>;
}

/** The 32-byte SSLRequest a client sends instead of its answer when it wants TLS. */
export function isSslRequest(payload: Buffer): boolean {
  return payload.length === 32 && (payload.readUInt32LE(0) & CAP.SSL) !== 0;
}

/** Protocol::HandshakeResponse41. Older (pre-4.1) clients are refused by the caller. */
export function decodeHandshakeResponse(payload: Buffer): HandshakeResponse {
  const r = new Reader(payload);
  const caps = r.u32();
  if ((caps & CAP.PROTOCOL_41) === 0) throw new ProtocolError('client does not speak protocol 4.1');
  const maxPacket = r.u32();
  const charset = r.u8();
  r.bytes(23);
  const user = r.nulStr().toString('utf8');
  let authResponse: Buffer;
  if (caps & CAP.PLUGIN_AUTH_LENENC_CLIENT_DATA) authResponse = r.bytes(r.lenencInt());
  else if (caps & CAP.SECURE_CONNECTION) authResponse = r.bytes(r.u8());
  else authResponse = r.nulStr();
  const out: HandshakeResponse = { caps, maxPacket, charset, user, authResponse, attrs: {} };
  if (caps & CAP.CONNECT_WITH_DB && r.left > 0) out.database = r.nulStr().toString('utf8');
  if (caps & CAP.PLUGIN_AUTH && r.left > 0) out.authPlugin = r.nulStr().toString('utf8');
  if (caps & CAP.CONNECT_ATTRS && r.left > 0) {
    const total = r.lenencInt();
    const attrs = new Reader(r.bytes(total));
    let n = 0;
    while (attrs.left > 0 && n++ < 64) {
      const k = attrs.bytes(attrs.lenencInt()).toString('utf8');
      const v = attrs.bytes(attrs.lenencInt()).toString('utf8');
      out.attrs[k] = v;
    }
  }
  return out;
}

/** Protocol::AuthSwitchRequest: "answer this scramble with that plugin". */
export function encodeAuthSwitch(plugin: string, scramble: Buffer): Buffer {
  return Buffer.concat([Buffer.from([0xfe]), Buffer.from(plugin + '\0', 'utf8'), scramble, Buffer.from([0])]);
}

/** Protocol::AuthMoreData; `0x03` after a caching_sha2_password scramble means "fast auth succeeded". */
export function encodeAuthMoreData(data: Buffer): Buffer {
  return Buffer.concat([Buffer.from([0x01]), data]);
}

// ---------------------------------------------------------------- OK / ERR / EOF

export function encodeOk(opts: { affectedRows?: number; info?: string } = {}): Buffer {
  const tail = Buffer.alloc(4);
  tail.writeUInt16LE(STATUS_AUTOCOMMIT, 0);
  return Buffer.concat([
    Buffer.from([0x00]),
    lenencInt(opts.affectedRows ?? 0),
    lenencInt(0),
    tail,
    Buffer.from(opts.info ?? '', 'utf8'),
  ]);
}

export function encodeEof(): Buffer {
  const b = Buffer.alloc(5);
  b[0] = 0xfe;
  b.writeUInt16LE(STATUS_AUTOCOMMIT, 3);
  return b;
}

export interface SqlError {
  code: number;
  /** Five-character SQLSTATE. */
  state: string;
  message: string;
}

export function encodeErr(e: SqlError): Buffer {
  const head = Buffer.alloc(3);
  head[0] = 0xff;
  head.writeUInt16LE(e.code, 1);
  const state = (e.state + '00000').slice(0, 5);
  return Buffer.concat([head, Buffer.from('#' + state, 'latin1'), Buffer.from(e.message, 'utf8')]);
}

// ---------------------------------------------------------------- result sets

export interface Column {
  name: string;
  type: ColumnType;
  /** The table it comes from, when it is a plain column of one. */
  table?: string;
  notNull?: boolean;
}

/** The display length clients use to size columns; generous, as MySQL's are. */
function columnLength(t: ColumnType): number {
  switch (t) {
    case TYPE.LONGLONG:
      return 20;
    case TYPE.DOUBLE:
      return 22;
    case TYPE.DATETIME:
      return 19;
    case TYPE.DATE:
      return 10;
    case TYPE.NULL:
      return 0;
    default:
      return 1024;
  }
}

/** Protocol::ColumnDefinition41. */
export function encodeColumn(c: Column, schema: string): Buffer {
  const textual = c.type === TYPE.VAR_STRING || c.type === TYPE.BLOB;
  const fixed = Buffer.alloc(13);
  fixed[0] = 0x0c;
  fixed.writeUInt16LE(textual ? CHARSET_UTF8MB4 : CHARSET_BINARY, 1);
  fixed.writeUInt32LE(columnLength(c.type), 3);
  fixed[7] = c.type;
  let flags = c.notNull ? FLAG_NOT_NULL : 0;
  if (!textual) flags |= FLAG_BINARY;
  fixed.writeUInt16LE(flags, 8);
  fixed[10] = c.type === TYPE.DOUBLE ? 31 : 0; // 31: "not fixed" decimals
  return Buffer.concat([
    lenencStr('def'),
    lenencStr(c.table ? schema : ''),
    lenencStr(c.table ?? ''),
    lenencStr(c.table ?? ''),
    lenencStr(c.name),
    lenencStr(c.name),
    fixed,
  ]);
}

/** A text-protocol value: NULL, or its text form. */
export type Cell = string | Buffer | null;

/** ProtocolText::ResultsetRow. */
export function encodeRow(cells: readonly Cell[]): Buffer {
  return Buffer.concat(cells.map((c) => (c === null ? Buffer.from([0xfb]) : lenencStr(c))));
}

/**
 * A whole text result set as framed bytes from sequence number `seq`: column count, column
 * definitions, EOF, rows, EOF. (COM_FIELD_LIST uses `encodeColumn` + EOF directly.)
 */
export function encodeResultSet(
  columns: readonly Column[],
  rows: readonly (readonly Cell[])[],
  schema: string,
  seq: number,
): Buffer {
  const out: Buffer[] = [];
  let s = seq;
  const push = (payload: Buffer): void => {
    const f = frame(payload, s);
    out.push(f.bytes);
    s = f.next;
  };
  push(lenencInt(columns.length));
  for (const c of columns) push(encodeColumn(c, schema));
  push(encodeEof());
  for (const r of rows) push(encodeRow(r));
  push(encodeEof());
  return Buffer.concat(out);
}
