import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ChunkReader } from '../../../../protocols/rtmp/wire/chunk-reader.js';
import { encodeMessage } from '../../../../protocols/rtmp/wire/chunk-writer.js';
import type { OutgoingMessage } from '../../../../protocols/rtmp/wire/chunk-writer.js';
import { DEFAULT_LIMITS } from '../../../../src/core/limits.js';
import { chunkReaderLimits } from '../../../../protocols/rtmp/session.js';

/** What the server reads with by default (src/core/limits.ts). */
const READER_LIMITS = chunkReaderLimits(DEFAULT_LIMITS);

function hex(text: string): Buffer {
  return Buffer.from(text.replace(/\s+/g, ''), 'hex');
}

function pattern(length: number): Buffer {
  return Buffer.from(Array.from({ length }, (_, i) => (i * 31 + 1) & 0xff));
}

/** Golden encodings: the writer's exact bytes, and the reader must decode them back. */
const golden: { name: string; msg: OutgoingMessage; chunkSize: number; hex: string }[] = [
  {
    name: 'type-0 header with little-endian stream id',
    msg: { csid: 3, type: 20, streamId: 1, timestamp: 0x010203, payload: hex('0506') },
    chunkSize: 128,
    hex: '03 010203 000002 14 01000000 0506',
  },
  {
    name: 'type-3 continuation after chunkSize bytes',
    msg: { csid: 4, type: 8, streamId: 1, timestamp: 0, payload: hex('aabbccddee') },
    chunkSize: 2,
    hex: '04 000000 000005 08 01000000 aabb c4 ccdd c4 ee',
  },
  {
    name: 'extended timestamp repeated on every continuation',
    msg: { csid: 6, type: 9, streamId: 1, timestamp: 0x01000000, payload: hex('aabbcc') },
    chunkSize: 2,
    hex: '06 ffffff 000003 09 01000000 01000000 aabb c6 01000000 cc',
  },
  {
    name: 'timestamp 0xffffff is already extended',
    msg: { csid: 6, type: 9, streamId: 1, timestamp: 0xffffff, payload: hex('aa') },
    chunkSize: 128,
    hex: '06 ffffff 000001 09 01000000 00ffffff aa',
  },
  {
    name: 'empty payload is one header',
    msg: { csid: 5, type: 8, streamId: 0, timestamp: 1, payload: Buffer.alloc(0) },
    chunkSize: 128,
    hex: '05 000001 000000 08 00000000',
  },
  {
    name: '2-byte basic header for csid 64',
    msg: { csid: 64, type: 8, streamId: 0, timestamp: 0, payload: hex('aabb') },
    chunkSize: 1,
    hex: '00 00 000000 000002 08 00000000 aa c0 00 bb',
  },
  {
    name: '2-byte basic header for csid 319',
    msg: { csid: 319, type: 8, streamId: 0, timestamp: 0, payload: hex('aa') },
    chunkSize: 128,
    hex: '00 ff 000000 000001 08 00000000 aa',
  },
  {
    name: '3-byte basic header for csid 320, low byte first',
    msg: { csid: 320, type: 8, streamId: 0, timestamp: 0, payload: hex('aabb') },
    chunkSize: 1,
    hex: '01 0001 000000 000002 08 00000000 aa c1 0001 bb',
  },
  {
    name: '3-byte basic header for csid 65599',
    msg: { csid: 65599, type: 8, streamId: 0, timestamp: 0, payload: hex('aa') },
    chunkSize: 128,
    hex: '01 ffff 000000 000001 08 00000000 aa',
  },
];

for (const c of golden) {
  test(`rtmp chunk writer: ${c.name}`, () => {
    const encoded = encodeMessage(c.msg, c.chunkSize);
    assert.equal(encoded.toString('hex'), hex(c.hex).toString('hex'));
    const reader = new ChunkReader(READER_LIMITS);
    if (c.chunkSize !== 128) {
      const size = Buffer.alloc(4);
      size.writeUInt32BE(c.chunkSize);
      reader.push(Buffer.concat([hex('02 000000 000004 01 00000000'), size]));
    }
    assert.deepEqual(reader.push(encoded), [{ ...c.msg, payload: c.msg.payload }]);
  });
}

test('rtmp chunk writer: chunk count and size for a multi-chunk message', () => {
  const encoded = encodeMessage(
    { csid: 6, type: 9, streamId: 1, timestamp: 0, payload: pattern(10_000) },
    4096,
  );
  // 12-byte first header, two 1-byte continuation headers.
  assert.equal(encoded.length, 10_000 + 12 + 2);
  assert.equal(encoded[12 + 4096], 0xc6);
  assert.equal(encoded[12 + 4096 + 1 + 4096], 0xc6);
});

test('rtmp chunk writer: timestamps are reduced modulo 2^32', () => {
  const at = (timestamp: number): number =>
    new ChunkReader(READER_LIMITS).push(
      encodeMessage({ csid: 3, type: 20, streamId: 0, timestamp, payload: hex('00') }, 128),
    )[0]?.timestamp ?? -1;
  assert.equal(at(2 ** 32 + 5), 5);
  assert.equal(at(-1), 0xffffffff);
});

test('rtmp chunk writer: the same bytes for the same message (stateless, shareable between viewers)', () => {
  const msg = { csid: 6, type: 9, streamId: 1, timestamp: 100, payload: pattern(500) };
  assert.deepEqual(encodeMessage(msg, 128), encodeMessage(msg, 128));
});

test('rtmp chunk writer: rejects programmer errors with RangeError', () => {
  const msg = { csid: 3, type: 20, streamId: 0, timestamp: 0, payload: hex('00') };
  assert.throws(() => encodeMessage({ ...msg, csid: 1 }, 128), RangeError);
  assert.throws(() => encodeMessage({ ...msg, csid: 65600 }, 128), RangeError);
  assert.throws(() => encodeMessage(msg, 0), RangeError);
  assert.throws(() => encodeMessage({ ...msg, payload: Buffer.alloc(0x1000000) }, 128), RangeError);
});
