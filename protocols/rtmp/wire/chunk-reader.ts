/**
 * RTMP chunk stream reader (Adobe RTMP spec §5.3): reassembles messages from interleaved chunks.
 *
 * Hand-written and sans-IO: bytes in, messages out, whatever the socket's packet boundaries. No
 * maintained npm library exposes this layer on its own (node-media-server's engine is entangled
 * with its sessions and answers Play.Start before auth), and the reader must apply Set Chunk
 * Size at the exact byte where it takes effect, which only the parser itself can do.
 *
 * After it throws, the reader's state is undefined: close the connection.
 */
import { RtmpProtocolError } from './errors.js';

/** One reassembled message. `timestamp` is in milliseconds, modulo 2^32 as on the wire. */
export interface RtmpMessage {
  csid: number;
  type: number;
  streamId: number;
  timestamp: number;
  payload: Buffer;
}

export interface ChunkReaderLimits {
  /**
   * Largest message accepted. Defaults to `MAX_MESSAGE_BYTES`. The 24-bit length field allows
   * 16 MiB; a peer could otherwise make us buffer that much per chunk stream.
   */
  maxMessageSize?: number;
  /** Most chunk stream ids in use at once. Defaults to `MAX_CHUNK_STREAMS`. */
  maxChunkStreams?: number;
}

/**
 * Default message size limit: 8 MiB is far above any keyframe a live encoder sends (OBS's
 * 1080p keyframes at 20 Mb/s are under 2 MiB) and bounds what one peer can make us hold.
 */
export const MAX_MESSAGE_BYTES = 8 * 1024 * 1024;
/**
 * Default limit on distinct chunk stream ids. Clients use 2..8 (ffmpeg 2-7, OBS 2-6); the csid
 * space is 65598 wide, and each id costs a state record, so a peer must not choose freely.
 */
export const MAX_CHUNK_STREAMS = 64;

/** Chunk size before any Set Chunk Size message (§5.4.1). */
export const DEFAULT_CHUNK_SIZE = 128;
/** Set Chunk Size carries 31 bits; the top bit must be zero (§5.4.1). */
export const MAX_CHUNK_SIZE = 0x7fffffff;

const TIMESTAMP_EXTENDED = 0xffffff;
const TIMESTAMP_MODULUS = 2 ** 32;

const MESSAGE_TYPE_SET_CHUNK_SIZE = 1;
const MESSAGE_TYPE_ABORT = 2;

/** What the reader remembers per chunk stream, so that headers of type 1/2/3 can omit fields (§5.3.1.2). */
interface ChunkStreamState {
  timestamp: number;
  /**
   * The timestamp field of the last type 0/1/2 header: a delta for types 1/2, the absolute time
   * for type 0. A type-3 chunk that starts a new message adds it again; ffmpeg and SRS agree on
   * treating the type-0 value as the delta too.
   */
  timestampDelta: number;
  /** Whether the last type 0/1/2 header used the extended timestamp, so type-3 chunks carry it too. */
  hasExtendedTimestamp: boolean;
  length: number;
  type: number;
  streamId: number;
  /** Payload pieces of the message in progress, and their total size. */
  parts: Buffer[];
  received: number;
  /** True between a message's first chunk and its completion. */
  inProgress: boolean;
}

export class ChunkReader {
  private readonly maxMessageSize: number;
  private readonly maxChunkStreams: number;
  private chunkSize = DEFAULT_CHUNK_SIZE;
  private readonly streams = new Map<number, ChunkStreamState>();
  /** Unparsed bytes of a header split across pushes (at most 17: 3 basic + 11 message + 4 extended). */
  private pending: Buffer = Buffer.alloc(0);
  /** The chunk whose payload is being read, and how many payload bytes of it remain. */
  private current: { csid: number; state: ChunkStreamState } | undefined;
  private chunkBytesLeft = 0;

  constructor(limits: ChunkReaderLimits = {}) {
    this.maxMessageSize = limits.maxMessageSize ?? MAX_MESSAGE_BYTES;
    this.maxChunkStreams = limits.maxChunkStreams ?? MAX_CHUNK_STREAMS;
  }

  /** The chunk size currently in effect for incoming chunks. */
  get incomingChunkSize(): number {
    return this.chunkSize;
  }

  push(data: Buffer): RtmpMessage[] {
    const buf = this.pending.length > 0 ? Buffer.concat([this.pending, data]) : data;
    const messages: RtmpMessage[] = [];
    let pos = 0;
    for (;;) {
      if (this.current) {
        const take = Math.min(this.chunkBytesLeft, buf.length - pos);
        if (take === 0) break;
        const { csid, state } = this.current;
        state.parts.push(buf.subarray(pos, pos + take));
        state.received += take;
        pos += take;
        this.chunkBytesLeft -= take;
        if (this.chunkBytesLeft === 0) {
          this.current = undefined;
          if (state.received === state.length) messages.push(this.complete(csid, state));
        }
        continue;
      }
      const headerBytes = this.readHeader(buf, pos, messages);
      if (headerBytes === 0) break;
      pos += headerBytes;
    }
    // Copy the tail: it is a partial header, and a subarray would pin the whole socket buffer.
    this.pending = Buffer.from(buf.subarray(pos));
    return messages;
  }

  /**
   * Parses one chunk header at `pos` and sets up the payload read. Returns the header length, or 0
   * when the header is incomplete (nothing is changed then). A zero-length message completes here.
   */
  private readHeader(buf: Buffer, pos: number, messages: RtmpMessage[]): number {
    const available = buf.length - pos;
    if (available < 1) return 0;
    // Basic header (§5.3.1.1): 2-bit fmt and a 6-bit csid, where 0 and 1 select 2- and 3-byte forms.
    const first = buf.readUInt8(pos);
    const fmt = first >> 6;
    let csid = first & 0x3f;
    let basicBytes = 1;
    if (csid === 0) {
      if (available < 2) return 0;
      csid = 64 + buf.readUInt8(pos + 1);
      basicBytes = 2;
    } else if (csid === 1) {
      if (available < 3) return 0;
      csid = 64 + buf.readUInt8(pos + 1) + buf.readUInt8(pos + 2) * 256;
      basicBytes = 3;
    }
    // csid 2 is reserved for protocol control; 0 and 1 are the escape codes above, so every
    // csid we can decode is ≥ 2 and valid.
    const messageHeaderBytes = [11, 7, 3, 0][fmt] ?? 0;
    if (available < basicBytes + messageHeaderBytes) return 0;

    let state = this.streams.get(csid);
    if (!state) {
      // Some librtmp builds start a fresh chunk stream with a type-1 header (SRS accepts it too);
      // types 2 and 3 would need a stream id and length we never saw.
      if (fmt >= 2) throw new RtmpProtocolError(`chunk stream ${csid} starts with header type ${fmt}`);
      if (this.streams.size >= this.maxChunkStreams) {
        throw new RtmpProtocolError(`more than ${this.maxChunkStreams} chunk streams in use`);
      }
      state = {
        timestamp: 0,
        timestampDelta: 0,
        hasExtendedTimestamp: false,
        length: 0,
        type: 0,
        streamId: 0,
        parts: [],
        received: 0,
        inProgress: false,
      };
    }
    if (fmt !== 3 && state.inProgress) {
      throw new RtmpProtocolError(`chunk stream ${csid}: header type ${fmt} interrupts a message`);
    }

    const headerStart = pos + basicBytes;
    const timestampField = fmt === 3 ? 0 : buf.readUIntBE(headerStart, 3);
    const hasExtendedTimestamp =
      fmt === 3 ? state.hasExtendedTimestamp : timestampField === TIMESTAMP_EXTENDED;
    const headerBytes = basicBytes + messageHeaderBytes + (hasExtendedTimestamp ? 4 : 0);
    if (available < headerBytes) return 0;
    const extendedTimestamp = hasExtendedTimestamp
      ? buf.readUInt32BE(pos + basicBytes + messageHeaderBytes)
      : 0;
    const timestampValue = hasExtendedTimestamp ? extendedTimestamp : timestampField;

    // From here on the header is complete: commit it.
    this.streams.set(csid, state);
    if (fmt <= 1) {
      const length = buf.readUIntBE(headerStart + 3, 3);
      if (length > this.maxMessageSize) {
        throw new RtmpProtocolError(`message of ${length} bytes exceeds limit ${this.maxMessageSize}`);
      }
      state.length = length;
      state.type = buf.readUInt8(headerStart + 6);
    }
    if (fmt === 0) {
      // The message stream id is little-endian, unlike every other field (§5.3.1.2.1).
      state.streamId = buf.readUInt32LE(headerStart + 7);
      state.timestamp = timestampValue;
      state.timestampDelta = timestampValue;
      state.hasExtendedTimestamp = hasExtendedTimestamp;
    } else if (fmt === 1 || fmt === 2) {
      state.timestampDelta = timestampValue;
      state.timestamp = (state.timestamp + timestampValue) % TIMESTAMP_MODULUS;
      state.hasExtendedTimestamp = hasExtendedTimestamp;
    } else if (!state.inProgress) {
      // Type 3 starting a new message repeats the previous delta (§5.3.1.2.4). When extended,
      // the 4 bytes carry that delta again; on a continuation chunk they are ignored.
      if (hasExtendedTimestamp) state.timestampDelta = extendedTimestamp;
      state.timestamp = (state.timestamp + state.timestampDelta) % TIMESTAMP_MODULUS;
    }

    if (!state.inProgress) {
      state.inProgress = true;
      state.parts = [];
      state.received = 0;
      if (state.length === 0) {
        messages.push(this.complete(csid, state));
        return headerBytes;
      }
    }
    this.current = { csid, state };
    this.chunkBytesLeft = Math.min(this.chunkSize, state.length - state.received);
    return headerBytes;
  }

  private complete(csid: number, state: ChunkStreamState): RtmpMessage {
    // Always copy: the payload must not alias the caller's buffers, which it may reuse.
    const payload = Buffer.concat(state.parts, state.received);
    state.parts = [];
    state.received = 0;
    state.inProgress = false;
    const message: RtmpMessage = {
      csid,
      type: state.type,
      streamId: state.streamId,
      timestamp: state.timestamp,
      payload,
    };
    // Protocol control messages are applied here, not by the caller, because they affect the
    // very next chunk, which may already be in the same buffer (§5.4.1, §5.4.2).
    if (message.type === MESSAGE_TYPE_SET_CHUNK_SIZE) this.applySetChunkSize(payload);
    else if (message.type === MESSAGE_TYPE_ABORT) this.applyAbort(payload);
    return message;
  }

  private applySetChunkSize(payload: Buffer): void {
    if (payload.length < 4) throw new RtmpProtocolError(`set chunk size payload of ${payload.length} bytes`);
    // The top bit is reserved and must be zero; ignoring it clamps the value to 31 bits.
    const size = payload.readUInt32BE(0) & MAX_CHUNK_SIZE;
    if (size < 1) throw new RtmpProtocolError(`chunk size ${size} out of range 1..${MAX_CHUNK_SIZE}`);
    this.chunkSize = size;
  }

  private applyAbort(payload: Buffer): void {
    if (payload.length < 4) throw new RtmpProtocolError(`abort payload of ${payload.length} bytes`);
    const state = this.streams.get(payload.readUInt32BE(0));
    if (state?.inProgress) {
      state.parts = [];
      state.received = 0;
      state.inProgress = false;
    }
  }
}
