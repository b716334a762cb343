/**
 * RTSP/1.0 message framing (RFC 2326 §4, §6, §7, §10.12): an incremental reader for the byte
 * stream of one TCP connection, which carries requests, responses and `$`-framed interleaved
 * binary data (RTP/RTCP) mixed together, and writers for requests and responses.
 *
 * Hand-written, like the rest of protocols/rtsp/wire: no maintained npm RTSP server library
 * offers sans-IO parsing with a hook for our session manager between DESCRIBE and the SDP.
 * Pure: bytes in, values out; no sockets, no timers.
 */
import { RtspLimitError, RtspProtocolError } from './errors.js';

/**
 * What one message may make the reader hold. The server passes its configured limits
 * (`request_head_bytes`, `request_body_bytes`); going over one throws an RtspLimitError.
 */
export interface RtspReaderLimits {
  /**
   * Request line plus headers. ffmpeg's and GStreamer's requests are under 1 KB; a peer that
   * sends more without a blank line is not speaking RTSP, and the cap keeps it from growing
   * our memory.
   */
  readonly maxHeadBytes: number;
  /**
   * Content-Length. The only bodies a server receives are SDP in ANNOUNCE (ffmpeg's two-track
   * SDP is ~500 bytes) and GET/SET_PARAMETER text.
   */
  readonly maxBodyBytes: number;
}

export type RtspReaderLimit = keyof RtspReaderLimits;

/** Header lines per message; real clients send fewer than 15. */
const MAX_HEADERS = 64;

/** Header fields with lower-cased names; repeated fields are joined with ", " (RFC 2326 §4.2 via RFC 2616 §4.2). */
export type RtspHeaders = ReadonlyMap<string, string>;

export interface RtspRequest {
  readonly method: string;
  readonly uri: string;
  readonly headers: RtspHeaders;
  readonly body: Buffer;
}

export interface RtspResponse {
  readonly status: number;
  readonly reason: string;
  readonly headers: RtspHeaders;
  readonly body: Buffer;
}

/** One thing read off the connection. */
export type RtspItem =
  | { readonly kind: 'request'; readonly request: RtspRequest }
  | { readonly kind: 'response'; readonly response: RtspResponse }
  /** RFC 2326 §10.12: `$`, channel, 16-bit length, then that many bytes of RTP or RTCP. */
  | { readonly kind: 'interleaved'; readonly channel: number; readonly payload: Buffer };

const DOLLAR = 0x24;
const REQUEST_LINE = /^([A-Za-z_]+) (\S+) RTSP\/1\.0$/;
const STATUS_LINE = /^RTSP\/1\.0 (\d{3})(?: (.*))?$/;

/** A message of which only the beginning has arrived (see `RtspReader.partial`). */
export interface PartialMessage {
  /** Offset of its first byte in the connection's byte stream, which tells one message from the next. */
  readonly start: number;
  /** How much of it has arrived. */
  readonly bytes: number;
}

/**
 * Incremental reader: `push()` the bytes as they came off the socket, in any slicing, and get
 * every complete item back. Interleaved payloads are views into the pushed bytes (no copy).
 * Throws RtspProtocolError on input that cannot be RTSP, RtspLimitError (a subclass) on a
 * message over the limits; the reader is unusable afterwards.
 */
export class RtspReader {
  private pending: Buffer = Buffer.alloc(0);
  /** Offset of `pending` in the connection's byte stream. */
  private consumed = 0;

  constructor(private readonly limits: RtspReaderLimits) {}

  /** Bytes held back waiting for the rest of an item. */
  get buffered(): number {
    return this.pending.length;
  }

  /**
   * The request or response (head, then body) that has begun but not ended; undefined between
   * messages and inside interleaved frames. Pure code keeps no clock: the connection arms its
   * deadline when a new `start` shows up.
   */
  get partial(): PartialMessage | undefined {
    if (this.pending.length === 0 || this.pending[0] === DOLLAR) return undefined;
    return { start: this.consumed, bytes: this.pending.length };
  }

  push(chunk: Buffer): RtspItem[] {
    let buf = this.pending.length === 0 ? chunk : Buffer.concat([this.pending, chunk]);
    const out: RtspItem[] = [];
    for (;;) {
      // Some clients send a stray CRLF between messages (an HTTP keep-alive habit); skip it.
      let skip = 0;
      while (skip < buf.length && (buf[skip] === 0x0d || buf[skip] === 0x0a)) skip++;
      if (skip > 0) buf = buf.subarray(skip);
      this.consumed += skip;
      const r = readItem(buf, this.limits);
      if (r === undefined) break;
      out.push(r.item);
      buf = buf.subarray(r.used);
      this.consumed += r.used;
    }
    // Keep only what is left; a view would pin the whole previous chunk in memory.
    this.pending = buf.length === 0 ? Buffer.alloc(0) : Buffer.from(buf);
    return out;
  }
}

function readItem(buf: Buffer, limits: RtspReaderLimits): { item: RtspItem; used: number } | undefined {
  if (buf.length === 0) return undefined;
  if (buf[0] === DOLLAR) {
    if (buf.length < 4) return undefined;
    const len = buf.readUInt16BE(2);
    if (buf.length < 4 + len) return undefined;
    return {
      item: { kind: 'interleaved', channel: buf[1] ?? 0, payload: buf.subarray(4, 4 + len) },
      used: 4 + len,
    };
  }
  const head = findHeadEnd(buf, limits.maxHeadBytes);
  if (head === undefined) {
    checkPartialHead(buf, limits.maxHeadBytes);
    return undefined;
  }
  const lines = buf.subarray(0, head.end).toString('latin1').split(/\r?\n/);
  const first = lines.shift() ?? '';
  const headers = parseHeaderLines(lines);
  const lengthText = headers.get('content-length');
  const length = lengthText === undefined ? 0 : Number(lengthText);
  if (!/^\d+$/.test(lengthText ?? '0') || !Number.isSafeInteger(length)) {
    throw new RtspProtocolError(`invalid content-length '${lengthText ?? ''}'`);
  }
  if (length > limits.maxBodyBytes) {
    throw new RtspLimitError(
      `body of ${length} bytes announced, over the limit of ${limits.maxBodyBytes}`,
      413,
      'maxBodyBytes',
    );
  }
  // Checked before waiting for the body, so garbage with a Content-Length is refused at once,
  // as it is when the head arrives in pieces (checkPartialHead).
  if (!REQUEST_LINE.test(first) && !STATUS_LINE.test(first)) {
    throw new RtspProtocolError(`not an rtsp/1.0 message: '${printable(first)}'`);
  }
  const total = head.end + head.sep + length;
  if (buf.length < total) return undefined;
  const body = Buffer.from(buf.subarray(head.end + head.sep, total));
  const req = REQUEST_LINE.exec(first);
  if (req) {
    return {
      item: {
        kind: 'request',
        request: { method: (req[1] ?? '').toUpperCase(), uri: req[2] ?? '', headers, body },
      },
      used: total,
    };
  }
  const res = STATUS_LINE.exec(first);
  if (res) {
    return {
      item: {
        kind: 'response',
        response: { status: Number(res[1]), reason: res[2] ?? '', headers, body },
      },
      used: total,
    };
  }
  throw new RtspProtocolError(`not an rtsp/1.0 message: '${printable(first)}'`);
}

/** End of the head: the index of the blank line and the length of the separator (CRLFCRLF, or LFLF from lax clients). */
function findHeadEnd(buf: Buffer, maxHeadBytes: number): { end: number; sep: number } | undefined {
  const limit = Math.min(buf.length, maxHeadBytes + 4);
  const view = buf.subarray(0, limit);
  const crlf = view.indexOf('\r\n\r\n');
  const lf = view.indexOf('\n\n');
  if (crlf < 0 && lf < 0) return undefined;
  if (lf >= 0 && (crlf < 0 || lf < crlf)) return { end: lf, sep: 2 };
  return { end: crlf, sep: 4 };
}

/** Rejects early what cannot become a valid head, so garbage is refused without waiting for 16 KiB. */
function checkPartialHead(buf: Buffer, maxHeadBytes: number): void {
  if (buf.length > maxHeadBytes) {
    throw new RtspLimitError(
      `request head of more than ${maxHeadBytes} bytes, the limit`,
      431,
      'maxHeadBytes',
    );
  }
  const nl = buf.indexOf(0x0a);
  if (nl >= 0) {
    const first = buf.subarray(0, nl).toString('latin1').replace(/\r$/, '');
    if (!REQUEST_LINE.test(first) && !STATUS_LINE.test(first)) {
      throw new RtspProtocolError(`not an rtsp/1.0 message: '${printable(first)}'`);
    }
  } else {
    // A request starts with a method name (letters) then a space, a status line with RTSP/;
    // anything else (binary, TLS) fails on its first bytes. Any method length, as REQUEST_LINE.
    const start = buf.subarray(0, 16).toString('latin1');
    if (!/^[A-Za-z_]+( |$)/.test(start) && !/^RTSP\//.test(start) && !'RTSP/'.startsWith(start)) {
      throw new RtspProtocolError('not an rtsp/1.0 message: binary data');
    }
  }
}

function parseHeaderLines(lines: readonly string[]): Map<string, string> {
  const headers = new Map<string, string>();
  let count = 0;
  let last: string | undefined;
  for (const line of lines) {
    if (line === '') continue;
    // RFC 2616 §2.2 line folding (which RFC 2326 inherits): a continuation line starts with white space.
    if ((line[0] === ' ' || line[0] === '\t') && last !== undefined) {
      headers.set(last, `${headers.get(last) ?? ''} ${line.trim()}`);
      continue;
    }
    const colon = line.indexOf(':');
    if (colon <= 0) throw new RtspProtocolError(`malformed header line '${printable(line)}'`);
    if (++count > MAX_HEADERS) throw new RtspProtocolError(`more than ${MAX_HEADERS} header lines`, 431);
    const name = line.slice(0, colon).trim().toLowerCase();
    const value = line.slice(colon + 1).trim();
    const prev = headers.get(name);
    headers.set(name, prev === undefined ? value : `${prev}, ${value}`);
    last = name;
  }
  return headers;
}

function printable(s: string): string {
  const cut = s.length > 60 ? `${s.slice(0, 60)}…` : s;
  return cut.replace(/[^\x20-\x7e]/g, '?');
}

/** Reason phrases of RFC 2326 §7.1.1 for the statuses this server sends. */
const REASONS: Readonly<Record<number, string>> = {
  200: 'OK',
  302: 'Moved Temporarily',
  400: 'Bad Request',
  401: 'Unauthorized',
  403: 'Forbidden',
  404: 'Not Found',
  405: 'Method Not Allowed',
  409: 'Conflict',
  413: 'Request Entity Too Large',
  415: 'Unsupported Media Type',
  431: 'Request Header Fields Too Large',
  454: 'Session Not Found',
  455: 'Method Not Valid in This State',
  459: 'Aggregate Operation Not Allowed',
  461: 'Unsupported Transport',
  500: 'Internal Server Error',
  501: 'Not Implemented',
  503: 'Service Unavailable',
};

export function reasonPhrase(status: number): string {
  return REASONS[status] ?? 'Unknown';
}

/** Header fields to write, in order; undefined values are left out. */
export type HeaderList = ReadonlyArray<readonly [name: string, value: string | number | undefined]>;

/**
 * Serialises a response (RFC 2326 §7); Content-Length is added when there is a body.
 * `detail` is added to the reason phrase in parentheses: ffmpeg and GStreamer print the
 * status line of a failed request, so a refusal that names its cause there
 * (`415 Unsupported Media Type (cannot carry video/VP8)`) is read by the person who sent it.
 */
export function writeResponse(
  status: number,
  headers: HeaderList,
  body?: Buffer | string,
  detail?: string,
): Buffer {
  // The status line ends at a line break; a detail that contains one is a bug, not input.
  if (detail !== undefined && /[\r\n]/.test(detail)) {
    throw new TypeError('reason detail contains a line break');
  }
  const reason = detail ? `${reasonPhrase(status)} (${detail})` : reasonPhrase(status);
  return writeMessage(`RTSP/1.0 ${status} ${reason}`, headers, body);
}

/** Serialises a request (RFC 2326 §6); used by tests and any future pull client. */
export function writeRequest(
  method: string,
  uri: string,
  headers: HeaderList,
  body?: Buffer | string,
): Buffer {
  return writeMessage(`${method} ${uri} RTSP/1.0`, headers, body);
}

function writeMessage(first: string, headers: HeaderList, body?: Buffer | string): Buffer {
  const bodyBuf = body === undefined ? undefined : Buffer.isBuffer(body) ? body : Buffer.from(body, 'utf8');
  let head = `${first}\r\n`;
  for (const [name, value] of headers) {
    if (value === undefined) continue;
    const text = String(value);
    // A CR or LF in a value would let a caller inject headers; refuse it loudly (a bug, not input).
    if (/[\r\n]/.test(text)) throw new TypeError(`header ${name} contains a line break`);
    head += `${name}: ${text}\r\n`;
  }
  if (bodyBuf && bodyBuf.length > 0) head += `Content-Length: ${bodyBuf.length}\r\n`;
  head += '\r\n';
  return bodyBuf && bodyBuf.length > 0
    ? Buffer.concat([Buffer.from(head, 'latin1'), bodyBuf])
    : Buffer.from(head, 'latin1');
}

/** The 4-byte interleaved frame header (RFC 2326 §10.12) that precedes a shared RTP/RTCP packet. */
export function interleavedHeader(channel: number, length: number): Buffer {
  if (length > 0xffff) throw new RangeError(`interleaved payload of ${length} bytes exceeds 65535`);
  const h = Buffer.allocUnsafe(4);
  h[0] = DOLLAR;
  h[1] = channel & 0xff;
  h.writeUInt16BE(length, 2);
  return h;
}
