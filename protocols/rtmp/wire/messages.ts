/**
 * RTMP message types, builders for the messages a server sends, and the decoder for the command
 * messages it receives (Adobe RTMP spec §5.4 protocol control, §6.2 user control, §7.1 command
 * messages). Data messages (`@setDataFrame`/onMetaData) are not decoded: the metadata a viewer
 * gets is built from the tracks.
 *
 * Hand-written and sans-IO: builders return complete chunked Buffers ready for the socket, so the
 * session machine never deals with chunking.
 */
import { Amf0Error, decodeAmf0, encodeAmf0 } from '../../../src/media/amf0.js';
import type { Amf0Object, Amf0Value } from '../../../src/media/amf0.js';
import { DEFAULT_CHUNK_SIZE, MAX_CHUNK_SIZE } from './chunk-reader.js';
import type { RtmpMessage } from './chunk-reader.js';
import { encodeMessage } from './chunk-writer.js';
import { RtmpProtocolError } from './errors.js';

/** Message type ids (§5.4, §7.1). */
export const MessageType = {
  SetChunkSize: 1,
  Abort: 2,
  Acknowledgement: 3,
  UserControl: 4,
  WindowAckSize: 5,
  SetPeerBandwidth: 6,
  Audio: 8,
  Video: 9,
  DataAmf3: 15,
  SharedObjectAmf3: 16,
  CommandAmf3: 17,
  DataAmf0: 18,
  SharedObjectAmf0: 19,
  CommandAmf0: 20,
  Aggregate: 22,
} as const;

/** User control event types (§6.2, §7.1.7). */
export const UserControlEvent = {
  StreamBegin: 0,
  StreamEof: 1,
  StreamDry: 2,
  SetBufferLength: 3,
  StreamIsRecorded: 4,
  PingRequest: 6,
  PingResponse: 7,
} as const;

/**
 * Chunk stream ids of the server's control and command messages. Only 2 is fixed by the spec
 * (§5.4); 3 follows ffmpeg/librtmp so captures look familiar. Media goes on the egress's own ids.
 */
export const ChunkStreamId = { ProtocolControl: 2, Command: 3 } as const;

/** Limit type of Set Peer Bandwidth (§5.4.5). */
export const PeerBandwidthLimit = { Hard: 0, Soft: 1, Dynamic: 2 } as const;
export type PeerBandwidthLimitType = 0 | 1 | 2;

function protocolControl(type: number, payload: Buffer): Buffer {
  // Protocol control messages go on chunk stream 2, message stream 0 (§5.4). Their payloads are
  // at most 10 bytes, so any chunk size fits them in one chunk.
  return encodeMessage(
    { csid: ChunkStreamId.ProtocolControl, type, streamId: 0, timestamp: 0, payload },
    DEFAULT_CHUNK_SIZE,
  );
}

function uint32(value: number): Buffer {
  const out = Buffer.alloc(4);
  out.writeUInt32BE(value >>> 0);
  return out;
}

/** Set Chunk Size (§5.4.1); the caller must use `n` for every chunk it sends afterwards. */
export function setChunkSize(n: number): Buffer {
  if (!Number.isInteger(n) || n < 1 || n > MAX_CHUNK_SIZE) {
    throw new RangeError(`chunk size ${n} out of range`);
  }
  return protocolControl(MessageType.SetChunkSize, uint32(n));
}

/** Window Acknowledgement Size (§5.4.4): how many bytes the peer may send between our acknowledgements. */
export function windowAckSize(n: number): Buffer {
  return protocolControl(MessageType.WindowAckSize, uint32(n));
}

/** Set Peer Bandwidth (§5.4.5). */
export function setPeerBandwidth(n: number, limitType: PeerBandwidthLimitType): Buffer {
  return protocolControl(MessageType.SetPeerBandwidth, Buffer.concat([uint32(n), Buffer.of(limitType)]));
}

/** Acknowledgement (§5.4.3): `seq` is the number of bytes received so far, modulo 2^32. */
export function acknowledgement(seq: number): Buffer {
  return protocolControl(MessageType.Acknowledgement, uint32(seq));
}

function userControl(event: number, value: number): Buffer {
  const payload = Buffer.alloc(6);
  payload.writeUInt16BE(event, 0);
  payload.writeUInt32BE(value >>> 0, 2);
  return protocolControl(MessageType.UserControl, payload);
}

/** User Control Stream Begin (§7.1.7): sent before onStatus Play.Start / Publish.Start. */
export function streamBegin(streamId: number): Buffer {
  return userControl(UserControlEvent.StreamBegin, streamId);
}

/** User Control Ping Response (§7.1.7), echoing the timestamp of a Ping Request. */
export function pingResponse(timestamp: number): Buffer {
  return userControl(UserControlEvent.PingResponse, timestamp);
}

/**
 * A command message (AMF0, type 20): name, transaction id, then the arguments (usually a command
 * object or null first). `chunkSize` is the size currently announced to this peer.
 */
export function command(
  csid: number,
  streamId: number,
  chunkSize: number,
  name: string,
  txId: number,
  ...args: Amf0Value[]
): Buffer {
  return encodeMessage(
    { csid, type: MessageType.CommandAmf0, streamId, timestamp: 0, payload: encodeAmf0(name, txId, ...args) },
    chunkSize,
  );
}

/**
 * An onStatus command on a message stream (§7.2.2): `{ level, code, description }` plus any
 * `extra` properties (e.g. `details`). Sent on the command chunk stream with transaction id 0.
 */
export function onStatus(
  streamId: number,
  chunkSize: number,
  level: 'status' | 'error',
  code: string,
  description: string,
  extra: Amf0Object = {},
): Buffer {
  const info: Amf0Object = { level, code, description, ...extra };
  return command(ChunkStreamId.Command, streamId, chunkSize, 'onStatus', 0, null, info);
}

/** A decoded command message. */
export interface RtmpCommand {
  name: string;
  txId: number;
  /** The command object (often null) followed by the optional arguments. */
  args: Amf0Value[];
}

/**
 * Decodes a command message: type 20 (AMF0), or type 17 (AMF3 command) whose body is a 0x00
 * format byte followed by AMF0 values, which is what Flash-era clients and FMLE send.
 */
export function decodeCommand(msg: RtmpMessage): RtmpCommand {
  if (msg.type !== MessageType.CommandAmf0 && msg.type !== MessageType.CommandAmf3) {
    throw new RtmpProtocolError(`message type ${msg.type} is not a command`);
  }
  let body = msg.payload;
  // An AMF3 command body starts with a format selector byte, 0 meaning "AMF0 follows".
  if (msg.type === MessageType.CommandAmf3 && body[0] === 0x00) body = body.subarray(1);
  let values: Amf0Value[];
  try {
    values = decodeAmf0(body);
  } catch (error) {
    if (error instanceof Amf0Error) throw new RtmpProtocolError(error.message, { cause: error });
    throw error;
  }
  const [name, txId, ...args] = values;
  if (typeof name !== 'string') throw new RtmpProtocolError('command name is not a string');
  // Some clients omit the transaction id on notifications; treat it as 0.
  if (txId !== undefined && typeof txId !== 'number') {
    throw new RtmpProtocolError('command transaction id is not a number');
  }
  return { name, txId: txId ?? 0, args };
}
