import assert from 'node:assert/strict';
import { test } from 'node:test';
import { encodeAmf0 } from '../../../../src/media/amf0.js';
import { ChunkReader } from '../../../../protocols/rtmp/wire/chunk-reader.js';
import type { RtmpMessage } from '../../../../protocols/rtmp/wire/chunk-reader.js';
import { RtmpProtocolError } from '../../../../protocols/rtmp/wire/errors.js';
import {
  MessageType,
  acknowledgement,
  command,
  decodeCommand,
  onStatus,
  pingResponse,
  setChunkSize,
  setPeerBandwidth,
  streamBegin,
  windowAckSize,
} from '../../../../protocols/rtmp/wire/messages.js';
import { DEFAULT_LIMITS } from '../../../../src/core/limits.js';
import { chunkReaderLimits } from '../../../../protocols/rtmp/session.js';

/** What the server reads with by default (src/core/limits.ts). */
const READER_LIMITS = chunkReaderLimits(DEFAULT_LIMITS);

function hex(text: string): Buffer {
  return Buffer.from(text.replace(/\s+/g, ''), 'hex');
}

function message(type: number, payload: Buffer): RtmpMessage {
  return { csid: 3, type, streamId: 0, timestamp: 0, payload };
}

const controlCases: { name: string; bytes: () => Buffer; hex: string }[] = [
  { name: 'set chunk size', bytes: () => setChunkSize(4096), hex: '02 000000 000004 01 00000000 00001000' },
  {
    name: 'window ack size',
    bytes: () => windowAckSize(2_500_000),
    hex: '02 000000 000004 05 00000000 002625a0',
  },
  {
    name: 'set peer bandwidth',
    bytes: () => setPeerBandwidth(2_500_000, 2),
    hex: '02 000000 000005 06 00000000 002625a0 02',
  },
  {
    name: 'acknowledgement',
    bytes: () => acknowledgement(0x12345678),
    hex: '02 000000 000004 03 00000000 12345678',
  },
  { name: 'stream begin', bytes: () => streamBegin(1), hex: '02 000000 000006 04 00000000 0000 00000001' },
  { name: 'ping response', bytes: () => pingResponse(99), hex: '02 000000 000006 04 00000000 0007 00000063' },
];

for (const c of controlCases) {
  test(`rtmp messages: ${c.name} encodes on chunk stream 2, message stream 0`, () => {
    assert.equal(c.bytes().toString('hex'), hex(c.hex).toString('hex'));
  });
}

test('rtmp messages: set chunk size rejects 0 and values over 31 bits', () => {
  assert.throws(() => setChunkSize(0), RangeError);
  assert.throws(() => setChunkSize(0x80000000), RangeError);
});

test('rtmp messages: command round-trips through the chunk reader and decodeCommand', () => {
  const bytes = command(
    3,
    0,
    60,
    '_result',
    1,
    { fmsVer: 'FMS/3,0,1,123', capabilities: 31 },
    {
      level: 'status',
      code: 'NetConnection.Connect.Success',
      description: 'Connection succeeded.',
      objectEncoding: 0,
    },
  );
  const reader = new ChunkReader(READER_LIMITS);
  reader.push(setChunkSize(60));
  const [msg] = reader.push(bytes);
  assert.ok(msg);
  assert.equal(msg.type, MessageType.CommandAmf0);
  assert.deepEqual(decodeCommand(msg), {
    name: '_result',
    txId: 1,
    args: [
      { fmsVer: 'FMS/3,0,1,123', capabilities: 31 },
      {
        level: 'status',
        code: 'NetConnection.Connect.Success',
        description: 'Connection succeeded.',
        objectEncoding: 0,
      },
    ],
  });
});

test('rtmp messages: onStatus carries level, code and description on the given message stream', () => {
  const [msg] = new ChunkReader(READER_LIMITS).push(
    onStatus(1, 128, 'error', 'NetStream.Publish.Unauthorized', 'denied', { details: 'cam1' }),
  );
  assert.ok(msg);
  assert.equal(msg.streamId, 1);
  assert.deepEqual(decodeCommand(msg), {
    name: 'onStatus',
    txId: 0,
    args: [
      null,
      { level: 'error', code: 'NetStream.Publish.Unauthorized', description: 'denied', details: 'cam1' },
    ],
  });
});

test('rtmp messages: AMF3 command (type 17) skips the 0x00 format byte', () => {
  const payload = Buffer.concat([Buffer.of(0), encodeAmf0('createStream', 4, null)]);
  assert.deepEqual(decodeCommand(message(MessageType.CommandAmf3, payload)), {
    name: 'createStream',
    txId: 4,
    args: [null],
  });
});

const badCommands: { name: string; msg: RtmpMessage }[] = [
  { name: 'not a command type', msg: message(MessageType.Audio, encodeAmf0('connect', 1)) },
  { name: 'name is not a string', msg: message(MessageType.CommandAmf0, encodeAmf0(1, 1)) },
  { name: 'empty payload', msg: message(MessageType.CommandAmf0, Buffer.alloc(0)) },
  {
    name: 'transaction id is not a number',
    msg: message(MessageType.CommandAmf0, encodeAmf0('connect', 'x')),
  },
  { name: 'truncated amf0', msg: message(MessageType.CommandAmf0, encodeAmf0('connect', 1).subarray(0, 12)) },
];

for (const c of badCommands) {
  test(`rtmp messages: decodeCommand with ${c.name} throws RtmpProtocolError`, () => {
    assert.throws(() => decodeCommand(c.msg), RtmpProtocolError);
  });
}

test('rtmp messages: random command payloads only ever throw RtmpProtocolError', () => {
  let state = 99;
  const next = (): number => (state = (Math.imul(state, 1103515245) + 12345) >>> 0) >>> 24;
  const seed = encodeAmf0('connect', 1, { app: 'live', tcUrl: 'rtmp://127.0.0.1/live' });
  for (let i = 0; i < 3000; i++) {
    const payload = Buffer.from(seed.subarray(0, next() % (seed.length + 1)));
    for (let k = 0; k < 3 && payload.length > 0; k++) payload[next() % payload.length] = next();
    const type = i % 2 === 0 ? MessageType.CommandAmf0 : MessageType.CommandAmf3;
    try {
      decodeCommand(message(type, payload));
    } catch (error) {
      assert.ok(error instanceof RtmpProtocolError, String(error));
    }
  }
});
