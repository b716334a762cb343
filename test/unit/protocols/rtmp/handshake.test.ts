import assert from 'node:assert/strict';
import { test } from 'node:test';
import { HANDSHAKE_PACKET_BYTES, ServerHandshake } from '../../../../protocols/rtmp/wire/handshake.js';
import { RtmpProtocolError } from '../../../../protocols/rtmp/wire/errors.js';

const fixedRandom = (n: number): Buffer => Buffer.alloc(n, 0xab);

function c0c1(): Buffer {
  const c1 = Buffer.alloc(HANDSHAKE_PACKET_BYTES);
  for (let i = 0; i < c1.length; i++) c1[i] = i & 0xff;
  // ffmpeg puts a non-zero version in C1 bytes 4..7; the simple handshake ignores it.
  c1.writeUInt32BE(0x09007c02, 4);
  return Buffer.concat([Buffer.of(3), c1]);
}

test('rtmp handshake: C0+C1 yields S0+S1+S2 with zero time and version and S2 echoing C1', () => {
  const hs = new ServerHandshake(fixedRandom);
  const input = c0c1();
  const result = hs.push(input);
  assert.equal(result.complete, false);
  const reply = result.reply;
  assert.ok(reply);
  assert.equal(reply.length, 1 + 2 * HANDSHAKE_PACKET_BYTES);
  assert.equal(reply[0], 3);
  assert.equal(reply.readUInt32BE(1), 0, 'S1 time');
  assert.equal(reply.readUInt32BE(5), 0, 'S1 zero/version bytes');
  assert.ok(
    reply.subarray(9, 1 + HANDSHAKE_PACKET_BYTES).every((b) => b === 0xab),
    'S1 random part',
  );
  assert.deepEqual(reply.subarray(1 + HANDSHAKE_PACKET_BYTES), input.subarray(1));
});

test('rtmp handshake: completes after C2 and returns the bytes after it', () => {
  const hs = new ServerHandshake(fixedRandom);
  hs.push(c0c1());
  const firstChunk = Buffer.from('03000000', 'hex');
  const result = hs.push(Buffer.concat([Buffer.alloc(HANDSHAKE_PACKET_BYTES, 7), firstChunk]));
  assert.equal(result.complete, true);
  assert.equal(result.reply, undefined);
  assert.deepEqual(result.remainder, firstChunk);
  assert.deepEqual(hs.push(Buffer.from('aa', 'hex')), {
    complete: true,
    remainder: Buffer.from('aa', 'hex'),
  });
});

test('rtmp handshake: byte-at-a-time feeding gives one reply and completes exactly once', () => {
  const hs = new ServerHandshake(fixedRandom);
  const stream = Buffer.concat([c0c1(), Buffer.alloc(HANDSHAKE_PACKET_BYTES, 1), Buffer.from('c3', 'hex')]);
  const replies: Buffer[] = [];
  let completedAt = -1;
  let remainder: Buffer = Buffer.alloc(0);
  for (let i = 0; i < stream.length; i++) {
    const result = hs.push(stream.subarray(i, i + 1));
    if (result.reply) replies.push(result.reply);
    if (result.complete && completedAt < 0) {
      completedAt = i;
      remainder = result.remainder;
    }
  }
  assert.equal(replies.length, 1);
  assert.equal(completedAt, 1 + 2 * HANDSHAKE_PACKET_BYTES - 1);
  assert.equal(remainder.length, 0);
});

test('rtmp handshake: C0, C1 and C2 in one buffer produce the reply and completion together', () => {
  const hs = new ServerHandshake(fixedRandom);
  const result = hs.push(
    Buffer.concat([c0c1(), Buffer.alloc(HANDSHAKE_PACKET_BYTES), Buffer.from('02', 'hex')]),
  );
  assert.ok(result.reply);
  assert.equal(result.complete, true);
  assert.deepEqual(result.remainder, Buffer.from('02', 'hex'));
});

test('rtmp handshake: a version other than 3 is refused on the first byte', () => {
  assert.throws(() => new ServerHandshake(fixedRandom).push(Buffer.of(6)), RtmpProtocolError);
  assert.throws(
    () => new ServerHandshake(fixedRandom).push(Buffer.from('GET / HTTP/1.1\r\n')),
    /invalid rtmp version \(71\)/,
  );
});

test('rtmp handshake: defaults to crypto random bytes', () => {
  const reply = new ServerHandshake().push(c0c1()).reply;
  assert.ok(reply);
  assert.ok(reply.subarray(9, 1 + HANDSHAKE_PACKET_BYTES).some((b) => b !== 0));
});

test('rtmp handshake: random bytes only ever throw RtmpProtocolError', () => {
  let state = 12345;
  const next = (): number => (state = (Math.imul(state, 1103515245) + 12345) >>> 0) >>> 24;
  for (let i = 0; i < 200; i++) {
    const hs = new ServerHandshake(fixedRandom);
    const input = Buffer.from(Array.from({ length: (next() * 16) % 4000 }, next));
    if (i % 2 === 0 && input.length > 0) input[0] = 3;
    try {
      for (let pos = 0; pos < input.length;) {
        const end = pos + 1 + (next() % 700);
        hs.push(input.subarray(pos, end));
        pos = end;
      }
    } catch (error) {
      assert.ok(error instanceof RtmpProtocolError, String(error));
    }
  }
});
