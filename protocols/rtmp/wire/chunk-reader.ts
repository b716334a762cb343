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
import { RtmpLimitError, RtmpProtocolError } from './errors.js';

/** One reassembled message. `timestamp` is in milliseconds, modulo 2^32 as on the wire. */
export interface RtmpMessage {
  csid: number;
  type: number;
  streamId: number;
  timestamp: number;
  payload: Buffer;
}

/**
 * What one peer may make the reader hold. The server passes its configured limits (Config.limits,
 * src/core/limits.ts); each exceeded one throws an RtmpLimitError naming it.
 */
export interface ChunkReaderLimits {
  /** Largest chunk size a Set Chunk Size may announce. */
  readonly maxChunkSize: number;
  /** Largest message a chunk header may announce (the 24-bit length field allows 16 MiB). */
  readonly maxMessageBytes: number;
  /**
   * Bytes allocated for unfinished messages across all chunk streams. Memory grows with what
   * arrived, not with what headers announce, so this bounds what a peer that starts many large
   * messages and finishes none can pin.
   */
  readonly maxBufferedBytes: number;
  /** Chunk stream ids a connection may use; each costs a state record, and the id space is 65598 wide. */
  readonly maxChunkStreams: number;
}

export type ChunkReaderLimit = keyof ChunkReaderLimits;

/** Chunk size before any Set Chunk Size message (§5.4.1). */
export const DEFAULT_CHUNK_SIZE = 128;
/** Set Chunk Size carries 31 bits; the top bit must be zero (§5.4.1). */
export const MAX_CHUNK_SIZE = 0x7fffffff;
/**
 * The first allocation of a message (or its whole length when smaller): most messages (audio,
 * commands, inter frames) take one allocation, larger ones grow by doubling, and a peer that
 * starts many large messages pins this much each, not what their headers announce.
 */
const FIRST_ALLOCATION = 64 * 1024;

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
  /**
   * The payload of the message in progress, allocated as it arrives (never the announced
   * length up front), and how much of it is filled.
   */
  buffer: Buffer | undefined;
  received: number;
  /** True between a message's first chunk and its completion. */
  inProgress: boolean;
}

export class ChunkReader {
  private chunkSize = DEFAULT_CHUNK_SIZE;
  private readonly streams = new Map<number, ChunkStreamState>();
  /** Unparsed bytes of a header split across pushes (at most 17: 3 basic + 11 message + 4 extended). */
  private pending: Buffer = Buffer.alloc(0);
  /** The chunk whose payload is being read, and how many payload bytes of it remain. */
  private current: { csid: number; state: ChunkStreamState } | undefined;
  private chunkBytesLeft = 0;
  /** Sum of the buffers of unfinished messages. */
  private allocated = 0;

  constructor(private readonly limits: ChunkReaderLimits) {}

  /** The chunk size currently in effect for incoming chunks. */
  get incomingChunkSize(): number {
    return this.chunkSize;
  }

  /** Bytes allocated for unfinished messages, which `maxBufferedBytes` bounds. */
  get bufferedBytes(): number {
    return this.allocated;
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
        this.append(state, buf.subarray(pos, pos + take));
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
      if (this.streams.size >= this.limits.maxChunkStreams) {
        throw new RtmpLimitError(
          `chunk stream ${csid} is one more than the ${this.limits.maxChunkStreams} allowed`,
          'maxChunkStreams',
        );
      }
      state = {
        timestamp: 0,
        timestampDelta: 0,
        hasExtendedTimestamp: false,
        length: 0,
        type: 0,
        streamId: 0,
        buffer: undefined,
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
      if (length > this.limits.maxMessageBytes) {
        throw new RtmpLimitError(
          `message of ${length} bytes announced, over the limit of ${this.limits.maxMessageBytes}`,
          'maxMessageBytes',
        );
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

  /**
   * Copies a piece of payload into the message's own buffer. Copied, not kept as a view: a view
   * would pin the whole socket read it came from, so memory would no longer be what is counted.
   */
  private append(state: ChunkStreamState, piece: Buffer): void {
    const needed = state.received + piece.length;
    const buffer = state.buffer && needed <= state.buffer.length ? state.buffer : this.grow(state, needed);
    piece.copy(buffer, state.received);
    state.received = needed;
  }

  /** Makes room for `needed` bytes of the message, within `maxBufferedBytes` for the whole connection. */
  private grow(state: ChunkStreamState, needed: number): Buffer {
    const current = state.buffer?.length ?? 0;
    const room = this.limits.maxBufferedBytes - (this.allocated - current);
    if (needed > room) {
      throw new RtmpLimitError(
        `unfinished messages would hold ${this.allocated - current + needed} bytes, over the limit of ${this.limits.maxBufferedBytes}`,
        'maxBufferedBytes',
      );
    }
    // Doubling keeps the copies of a large message linear; capped by the message's own length
    // (so a finished buffer is exactly the payload) and by the room left.
    const size = Math.min(state.length, room, Math.max(needed, 2 * current, FIRST_ALLOCATION));
    const next = Buffer.allocUnsafe(size);
    state.buffer?.copy(next, 0, 0, state.received);
    this.allocated += size - current;
    state.buffer = next;
    return next;
  }

  /** Forgets the message in progress and returns its buffer's bytes to the connection's budget. */
  private release(state: ChunkStreamState): Buffer | undefined {
    const buffer = state.buffer;
    this.allocated -= buffer?.length ?? 0;
    state.buffer = undefined;
    state.received = 0;
    state.inProgress = false;
    return buffer;
  }

  private complete(csid: number, state: ChunkStreamState): RtmpMessage {
    // The buffer is the payload's own memory (never a view of the caller's buffers, which it
    // may reuse) and exactly its length, since growth stops at the announced length.
    const payload = this.release(state) ?? Buffer.alloc(0);
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
    if (size > this.limits.maxChunkSize) {
      throw new RtmpLimitError(
        `set chunk size ${size}, over the limit of ${this.limits.maxChunkSize}`,
        'maxChunkSize',
      );
    }
    this.chunkSize = size;
  }

  private applyAbort(payload: Buffer): void {
    if (payload.length < 4) throw new RtmpProtocolError(`abort payload of ${payload.length} bytes`);
    const state = this.streams.get(payload.readUInt32BE(0));
    if (state?.inProgress) this.release(state);
  }
}
