import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { decodeAmf0 } from '../../../../src/media/amf0.js';
import { FlvToFrames } from '../../../../src/media/flv.js';
import type { Frame } from '../../../../src/media/types.js';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import {
  ChunkReader,
  MAX_CHUNK_SIZE,
  type ChunkReaderLimit,
  type ChunkReaderLimits,
  type RtmpMessage,
} from '../../../../protocols/rtmp/wire/chunk-reader.js';
import { encodeMessage } from '../../../../protocols/rtmp/wire/chunk-writer.js';
import { RtmpLimitError, RtmpProtocolError } from '../../../../protocols/rtmp/wire/errors.js';
import { MessageType, decodeCommand, setChunkSize } from '../../../../protocols/rtmp/wire/messages.js';
import { DEFAULT_LIMITS } from '../../../../src/core/limits.js';
import { chunkReaderLimits } from '../../../../protocols/rtmp/session.js';

/** What the server reads with by default (src/core/limits.ts). */
const READER_LIMITS = chunkReaderLimits(DEFAULT_LIMITS);

function hex(text: string): Buffer {
  return Buffer.from(text.replace(/\s+/g, ''), 'hex');
}

function pattern(length: number, seed = 1): Buffer {
  return Buffer.from(Array.from({ length }, (_, i) => (i * 31 + seed) & 0xff));
}

/** Small seeded PRNG (mulberry32) so failures reproduce. */
function prng(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function pushInSlices(reader: ChunkReader, bytes: Buffer, nextSize: () => number): RtmpMessage[] {
  const messages: RtmpMessage[] = [];
  for (let pos = 0; pos < bytes.length;) {
    const end = Math.min(bytes.length, pos + nextSize());
    messages.push(...reader.push(bytes.subarray(pos, end)));
    pos = end;
  }
  return messages;
}

/** Round-trip table: each message is encoded by the writer and must come back unchanged. */
const roundTrips: { name: string; msg: RtmpMessage; chunkSize: number }[] = [
  {
    name: 'one-chunk command',
    msg: { csid: 3, type: 20, streamId: 0, timestamp: 0, payload: pattern(50) },
    chunkSize: 128,
  },
  {
    name: 'exactly one chunk',
    msg: { csid: 3, type: 20, streamId: 0, timestamp: 7, payload: pattern(128) },
    chunkSize: 128,
  },
  {
    name: 'three chunks',
    msg: { csid: 6, type: 9, streamId: 1, timestamp: 40, payload: pattern(300) },
    chunkSize: 128,
  },
  {
    name: 'empty payload',
    msg: { csid: 4, type: 8, streamId: 1, timestamp: 5, payload: Buffer.alloc(0) },
    chunkSize: 128,
  },
  {
    name: 'extended timestamp over continuations',
    msg: { csid: 6, type: 9, streamId: 1, timestamp: 0x1234567, payload: pattern(1000) },
    chunkSize: 128,
  },
  {
    name: 'timestamp exactly 0xffffff',
    msg: { csid: 6, type: 9, streamId: 1, timestamp: 0xffffff, payload: pattern(200) },
    chunkSize: 100,
  },
  {
    name: 'largest timestamp',
    msg: { csid: 4, type: 8, streamId: 1, timestamp: 0xffffffff, payload: pattern(10) },
    chunkSize: 128,
  },
  {
    name: 'csid 63',
    msg: { csid: 63, type: 8, streamId: 2, timestamp: 1, payload: pattern(200) },
    chunkSize: 128,
  },
  {
    name: '2-byte csid 64',
    msg: { csid: 64, type: 8, streamId: 1, timestamp: 1, payload: pattern(200) },
    chunkSize: 128,
  },
  {
    name: '2-byte csid 319',
    msg: { csid: 319, type: 8, streamId: 1, timestamp: 1, payload: pattern(200) },
    chunkSize: 64,
  },
  {
    name: '3-byte csid 320',
    msg: { csid: 320, type: 8, streamId: 1, timestamp: 1, payload: pattern(200) },
    chunkSize: 64,
  },
  {
    name: '3-byte csid 65599',
    msg: { csid: 65599, type: 9, streamId: 0xfffffffe, timestamp: 0x1000000, payload: pattern(300) },
    chunkSize: 128,
  },
  {
    name: 'large video message, large chunk size',
    msg: { csid: 6, type: 9, streamId: 1, timestamp: 1000, payload: pattern(100_000) },
    chunkSize: 4096,
  },
];

/** The table as one byte stream: a Set Chunk Size before each message that needs a new size. */
function roundTripStream(): { bytes: Buffer; expected: RtmpMessage[] } {
  const parts: Buffer[] = [];
  const expected: RtmpMessage[] = [];
  let chunkSize = 128;
  for (const c of roundTrips) {
    if (c.chunkSize !== chunkSize) {
      const control = setChunkSize(c.chunkSize);
      parts.push(control);
      expected.push({
        csid: 2,
        type: 1,
        streamId: 0,
        timestamp: 0,
        payload: hex(c.chunkSize.toString(16).padStart(8, '0')),
      });
      chunkSize = c.chunkSize;
    }
    parts.push(encodeMessage(c.msg, chunkSize));
    expected.push(c.msg);
  }
  return { bytes: Buffer.concat(parts), expected };
}

for (const c of roundTrips) {
  test(`rtmp chunk reader: round-trips ${c.name} from the writer`, () => {
    const reader = new ChunkReader(READER_LIMITS);
    const prefix = c.chunkSize === 128 ? [] : reader.push(setChunkSize(c.chunkSize));
    assert.equal(prefix.length, c.chunkSize === 128 ? 0 : 1);
    assert.deepEqual(reader.push(encodeMessage(c.msg, c.chunkSize)), [c.msg]);
  });
}

test('rtmp chunk reader: the whole table as one stream, in one push, byte by byte and in random slices', () => {
  const { bytes, expected } = roundTripStream();
  assert.deepEqual(new ChunkReader(READER_LIMITS).push(bytes), expected);
  assert.deepEqual(
    pushInSlices(new ChunkReader(READER_LIMITS), bytes, () => 1),
    expected,
  );
  const random = prng(42);
  for (let round = 0; round < 20; round++) {
    assert.deepEqual(
      pushInSlices(new ChunkReader(READER_LIMITS), bytes, () => 1 + Math.floor(random() * 300)),
      expected,
    );
  }
});

test('rtmp chunk reader: header types 1, 2 and 3 inherit fields and add timestamp deltas', () => {
  const bytes = hex(
    [
      // fmt 0, csid 4: ts 1000, length 3, type 8, stream 1 (little-endian)
      '04 0003e8 000003 08 01000000 616161',
      // fmt 1: delta 20, length 2, type 9 (stream id inherited)
      '44 000014 000002 09 6262',
      // fmt 2: delta 30 (length and type inherited)
      '84 00001e 6363',
      // fmt 3 starting a new message: delta 30 again
      'c4 6464',
    ].join(''),
  );
  assert.deepEqual(new ChunkReader(READER_LIMITS).push(bytes), [
    { csid: 4, type: 8, streamId: 1, timestamp: 1000, payload: Buffer.from('aaa') },
    { csid: 4, type: 9, streamId: 1, timestamp: 1020, payload: Buffer.from('bb') },
    { csid: 4, type: 9, streamId: 1, timestamp: 1050, payload: Buffer.from('cc') },
    { csid: 4, type: 9, streamId: 1, timestamp: 1080, payload: Buffer.from('dd') },
  ]);
});

test('rtmp chunk reader: type 3 after type 0 repeats the type-0 value as the delta (ffmpeg, SRS)', () => {
  const bytes = hex('04 000064 000001 08 01000000 61' + 'c4 62');
  assert.deepEqual(
    new ChunkReader(READER_LIMITS).push(bytes).map((m) => m.timestamp),
    [100, 200],
  );
});

test('rtmp chunk reader: extended timestamp is repeated on type-3 continuation chunks', () => {
  const payload = pattern(200);
  const bytes = Buffer.concat([
    hex('06 ffffff 0000c8 09 01000000 01000000'),
    payload.subarray(0, 128),
    hex('c6 01000000'),
    payload.subarray(128),
  ]);
  assert.deepEqual(new ChunkReader(READER_LIMITS).push(bytes), [
    { csid: 6, type: 9, streamId: 1, timestamp: 0x1000000, payload },
  ]);
});

test('rtmp chunk reader: extended delta on type 1, then type 3 new message carries the delta again', () => {
  const bytes = hex('04 000010 000001 08 01000000 61' + '44 ffffff 000001 08 01000000 62' + 'c4 01000000 63');
  assert.deepEqual(
    new ChunkReader(READER_LIMITS).push(bytes).map((m) => [m.timestamp, m.payload.toString()]),
    [
      [0x10, 'a'],
      [0x10 + 0x1000000, 'b'],
      [0x10 + 0x2000000, 'c'],
    ],
  );
});

test('rtmp chunk reader: timestamps wrap modulo 2^32', () => {
  const bytes = hex('04 ffffff 000001 08 01000000 fffffff0 61' + '84 000020 62');
  assert.deepEqual(
    new ChunkReader(READER_LIMITS).push(bytes).map((m) => m.timestamp),
    [0xfffffff0, 0x10],
  );
});

test('rtmp chunk reader: a chunk size change applies to the next chunk in the same buffer', () => {
  const message = { csid: 6, type: 9, streamId: 1, timestamp: 0, payload: pattern(5000) };
  const reader = new ChunkReader(READER_LIMITS);
  const messages = reader.push(Buffer.concat([setChunkSize(4096), encodeMessage(message, 4096)]));
  assert.equal(messages.length, 2);
  assert.equal(messages[0]?.type, MessageType.SetChunkSize);
  assert.deepEqual(messages[1], message);
  assert.equal(reader.incomingChunkSize, 4096);
});

test('rtmp chunk reader: interleaved chunk streams reassemble independently', () => {
  const audio = pattern(250, 7);
  const video = pattern(300, 9);
  const bytes = Buffer.concat([
    hex('06 000000 00012c 09 01000000'),
    video.subarray(0, 128),
    hex('04 000000 0000fa 08 01000000'),
    audio.subarray(0, 128),
    hex('c6'),
    video.subarray(128, 256),
    hex('c4'),
    audio.subarray(128),
    hex('c6'),
    video.subarray(256),
  ]);
  assert.deepEqual(new ChunkReader(READER_LIMITS).push(bytes), [
    { csid: 4, type: 8, streamId: 1, timestamp: 0, payload: audio },
    { csid: 6, type: 9, streamId: 1, timestamp: 0, payload: video },
  ]);
});

test('rtmp chunk reader: abort discards the partial message on that chunk stream', () => {
  const bytes = Buffer.concat([
    hex('06 000000 00012c 09 01000000'),
    pattern(128),
    hex('02 000000 000004 02 00000000 00000006'),
    hex('06 000000 000002 09 01000000 7879'),
  ]);
  const messages = new ChunkReader(READER_LIMITS).push(bytes);
  assert.deepEqual(
    messages.map((m) => [m.type, m.payload.toString('hex')]),
    [
      [MessageType.Abort, '00000006'],
      [9, '7879'],
    ],
  );
});

test('rtmp chunk reader: a fresh chunk stream may start with header type 1 (librtmp)', () => {
  assert.deepEqual(new ChunkReader(READER_LIMITS).push(hex('45 000010 000001 08 61')), [
    { csid: 5, type: 8, streamId: 0, timestamp: 0x10, payload: Buffer.from('a') },
  ]);
});

test('rtmp chunk reader: payloads do not alias the pushed buffer', () => {
  const bytes = hex('04 000000 000002 08 01000000 6162');
  const [message] = new ChunkReader(READER_LIMITS).push(bytes);
  bytes.fill(0);
  assert.equal(message?.payload.toString(), 'ab');
});

const protocolErrors: {
  name: string;
  bytes: () => Buffer;
}[] = [
  { name: 'type 2 on a fresh chunk stream', bytes: () => hex('84 000000') },
  { name: 'type 3 on a fresh chunk stream', bytes: () => hex('c4') },
  {
    name: 'type 0 interrupting a message',
    bytes: () =>
      Buffer.concat([
        hex('06 000000 00012c 09 01000000'),
        pattern(128),
        hex('06 000000 000001 09 01000000 00'),
      ]),
  },
  { name: 'set chunk size 0', bytes: () => hex('02 000000 000004 01 00000000 00000000') },
  {
    name: 'set chunk size with only the reserved bit',
    bytes: () => hex('02 000000 000004 01 00000000 80000000'),
  },
  { name: 'short set chunk size payload', bytes: () => hex('02 000000 000002 01 00000000 0001') },
  { name: 'short abort payload', bytes: () => hex('02 000000 000001 02 00000000 00') },
];

for (const c of protocolErrors) {
  test(`rtmp chunk reader: ${c.name} throws RtmpProtocolError`, () => {
    assert.throws(() => new ChunkReader(READER_LIMITS).push(c.bytes()), RtmpProtocolError);
  });
}

test('rtmp chunk reader: set chunk size ignores the reserved top bit and accepts the 31-bit maximum when allowed', () => {
  const reader = new ChunkReader({ ...READER_LIMITS, maxChunkSize: MAX_CHUNK_SIZE });
  reader.push(hex('02 000000 000004 01 00000000 ffffffff'));
  assert.equal(reader.incomingChunkSize, 0x7fffffff);
});

// ---- limits ---------------------------------------------------------------------------

const MiB = 1024 * 1024;

/** Asserts that `fn` throws the RtmpLimitError of `limit`. */
function throwsLimit(fn: () => unknown, limit: ChunkReaderLimit): void {
  assert.throws(fn, (e: unknown) => e instanceof RtmpLimitError && e.limit === limit);
}

/** A type-0 chunk header (csid 2..319) starting a video message of `length` bytes. */
function messageStart(csid: number, length: number): Buffer {
  const basic = csid <= 63 ? Buffer.of(csid) : Buffer.of(0, csid - 64);
  const header = Buffer.alloc(11);
  header.writeUIntBE(length, 3, 3);
  header.writeUInt8(MessageType.Video, 6);
  header.writeUInt32LE(1, 7);
  return Buffer.concat([basic, header]);
}

/** Bytes as a socket hands them over: a fresh buffer per read, `size` at a time. */
function* reads(total: number, size: number): Generator<Buffer> {
  for (let sent = 0; sent < total; sent += size) yield Buffer.alloc(Math.min(size, total - sent), 0x5a);
}

/**
 * Array buffer memory after a full collection, to measure what a reader really retains.
 * Backing stores are released after the collection itself, so it settles over a few turns;
 * the bounds below leave room for that, far under what the attacks pin without the limits.
 */
async function settledArrayBuffers(): Promise<number> {
  setFlagsFromString('--expose-gc');
  const gc = runInNewContext('gc') as () => void;
  for (let i = 0; i < 3; i++) {
    gc();
    await new Promise((r) => setImmediate(r));
  }
  return process.memoryUsage().arrayBuffers;
}

test('rtmp chunk reader: the default limits are the configured ones (src/core/limits.ts)', () => {
  assert.deepEqual(READER_LIMITS, {
    maxChunkSize: 16 * MiB,
    maxMessageBytes: 8 * MiB,
    maxBufferedBytes: 16 * MiB,
    maxChunkStreams: 32,
  });
});

test('rtmp chunk reader: rtmp_max_chunk_size — a Set Chunk Size above it throws, up to it is applied', () => {
  const reader = new ChunkReader(READER_LIMITS);
  reader.push(setChunkSize(16 * MiB));
  assert.equal(reader.incomingChunkSize, 16 * MiB);
  throwsLimit(() => new ChunkReader(READER_LIMITS).push(setChunkSize(16 * MiB + 1)), 'maxChunkSize');
  throwsLimit(() => new ChunkReader(READER_LIMITS).push(setChunkSize(MAX_CHUNK_SIZE)), 'maxChunkSize');
});

test('rtmp chunk reader: rtmp_max_message_bytes — a header announcing more throws before any payload', () => {
  const reader = new ChunkReader(READER_LIMITS);
  reader.push(messageStart(4, 8 * MiB));
  assert.equal(reader.bufferedBytes, 0, 'nothing is allocated for an announced length');
  throwsLimit(() => new ChunkReader(READER_LIMITS).push(messageStart(4, 8 * MiB + 1)), 'maxMessageBytes');
  throwsLimit(
    () => new ChunkReader({ ...READER_LIMITS, maxMessageBytes: 1024 }).push(messageStart(4, 1025)),
    'maxMessageBytes',
  );
});

test('rtmp chunk reader: rtmp_max_chunk_streams — 32 chunk streams by default, the 33rd throws', () => {
  const streams = (from: number, count: number): Buffer =>
    Buffer.concat(
      Array.from({ length: count }, (_, i) =>
        encodeMessage({ csid: from + i, type: 8, streamId: 1, timestamp: 0, payload: pattern(1) }, 128),
      ),
    );
  const reader = new ChunkReader(READER_LIMITS);
  assert.equal(reader.push(streams(2, 32)).length, 32);
  assert.equal(reader.push(streams(2, 32)).length, 32, 'streams in use are reused freely');
  throwsLimit(() => reader.push(streams(100, 1)), 'maxChunkStreams');
  throwsLimit(
    () => new ChunkReader({ ...READER_LIMITS, maxChunkStreams: 4 }).push(streams(10, 5)),
    'maxChunkStreams',
  );
});

test('rtmp chunk reader: rtmp_max_buffered_bytes counts what arrived, not what headers announce', () => {
  const reader = new ChunkReader(READER_LIMITS);
  reader.push(setChunkSize(4096));
  reader.push(Buffer.concat([messageStart(4, 8 * MiB), Buffer.alloc(10)]));
  assert.ok(reader.bufferedBytes <= 64 * 1024, `${reader.bufferedBytes} bytes after 10 of 8 MiB`);
  let sent = 10;
  let chunkLeft = 4096 - 10;
  while (sent < 2 * MiB) {
    reader.push(Buffer.alloc(chunkLeft));
    sent += chunkLeft;
    reader.push(Buffer.of(0xc4)); // type-3 continuation on csid 4
    chunkLeft = 4096;
    assert.ok(reader.bufferedBytes <= Math.max(64 * 1024, 2 * sent), `${reader.bufferedBytes} for ${sent}`);
  }
});

test('rtmp chunk reader: payload pieces are copied, so a read buffer is not pinned by its message', () => {
  const reader = new ChunkReader(READER_LIMITS);
  const first = Buffer.concat([messageStart(4, 6), Buffer.from('abc')]);
  reader.push(first);
  first.fill(0);
  const second = Buffer.from('def');
  const [message] = reader.push(second);
  second.fill(0);
  assert.equal(message?.payload.toString(), 'abcdef');
  assert.equal(reader.bufferedBytes, 0, 'a finished message leaves the budget');
});

test('rtmp chunk reader: Abort releases the aborted message from the budget', () => {
  const reader = new ChunkReader(READER_LIMITS);
  reader.push(setChunkSize(1000));
  reader.push(Buffer.concat([messageStart(4, 5000), Buffer.alloc(1000)]));
  assert.ok(reader.bufferedBytes > 0);
  const abort = encodeMessage({ csid: 2, type: 2, streamId: 0, timestamp: 0, payload: hex('00000004') }, 128);
  reader.push(abort);
  assert.equal(reader.bufferedBytes, 0);
  const [message] = reader.push(Buffer.concat([messageStart(4, 3), Buffer.from('xyz')]));
  assert.equal(message?.payload.toString(), 'xyz');
});

test('rtmp chunk reader: 63 chunk streams each leaving an 8 MiB message unfinished are stopped at the budget', async () => {
  // The streams limit would stop this at the 33rd stream; raise it to see the budget do the work.
  const reader = new ChunkReader({ ...READER_LIMITS, maxChunkStreams: 64 });
  const L = 8 * MiB;
  const before = await settledArrayBuffers();
  // One chunk short of each message: chunk size L - 1, the 1-byte type-3 chunk never comes.
  reader.push(setChunkSize(L - 1));
  let error: unknown;
  let streams = 0;
  try {
    for (let csid = 3; csid < 3 + 63; csid++) {
      reader.push(messageStart(csid, L));
      streams++;
      for (const read of reads(L - 1, 64 * 1024)) {
        reader.push(read);
        assert.ok(reader.bufferedBytes <= 16 * MiB, `${reader.bufferedBytes} bytes buffered`);
      }
    }
  } catch (e) {
    error = e;
  }
  assert.ok(error instanceof RtmpLimitError && error.limit === 'maxBufferedBytes', String(error));
  assert.equal(streams, 3, 'two unfinished 8 MiB messages fill 16 MiB; the third stream is refused');
  const retained = (await settledArrayBuffers()) - before;
  assert.ok(retained <= 24 * MiB, `${(retained / MiB).toFixed(1)} MiB retained (unbounded: 63 × 8 MiB)`);
  assert.ok(reader.bufferedBytes <= 16 * MiB);
});

test('rtmp chunk reader: chunk size 0x7fffffff and a 16 MiB message trickled in are stopped without allocating 16 MiB', async () => {
  // Under the defaults, both the chunk size and the 16 MiB header are refused at once.
  throwsLimit(() => new ChunkReader(READER_LIMITS).push(setChunkSize(MAX_CHUNK_SIZE)), 'maxChunkSize');
  const wide = new ChunkReader({ ...READER_LIMITS, maxChunkSize: MAX_CHUNK_SIZE });
  wide.push(setChunkSize(MAX_CHUNK_SIZE));
  throwsLimit(() => wide.push(messageStart(4, 0xffffff)), 'maxMessageBytes');
  assert.equal(wide.bufferedBytes, 0);

  // With chunk and message limits opened up, the buffer budget stops the trickle.
  const limits: ChunkReaderLimits = {
    ...READER_LIMITS,
    maxChunkSize: MAX_CHUNK_SIZE,
    maxMessageBytes: 0xffffff,
    maxBufferedBytes: MiB,
  };
  const reader = new ChunkReader(limits);
  const before = await settledArrayBuffers();
  reader.push(setChunkSize(MAX_CHUNK_SIZE));
  reader.push(messageStart(4, 0xffffff));
  let sent = 0;
  let error: unknown;
  try {
    for (const read of reads(0xffffff, 1024)) {
      reader.push(read);
      sent += read.length;
      assert.ok(reader.bufferedBytes <= MiB);
    }
  } catch (e) {
    error = e;
  }
  assert.ok(error instanceof RtmpLimitError && error.limit === 'maxBufferedBytes', String(error));
  assert.equal(sent, MiB, 'stopped at the first byte over 1 MiB');
  const retained = (await settledArrayBuffers()) - before;
  assert.ok(retained <= 4 * MiB, `${(retained / MiB).toFixed(1)} MiB retained (preallocated: 16 MiB)`);
  assert.ok(reader.bufferedBytes <= MiB);
});

test('rtmp chunk reader: ffmpeg publish capture parses into commands, metadata and media', () => {
  const capture = readFileSync(new URL('../../../fixtures/rtmp/ffmpeg-publish.bin', import.meta.url));
  const check = (messages: RtmpMessage[]): void => {
    const commands = messages.filter((m) => m.type === MessageType.CommandAmf0).map((m) => decodeCommand(m));
    assert.deepEqual(
      commands.map((c) => c.name),
      ['connect', 'releaseStream', 'FCPublish', 'createStream', 'publish', 'FCUnpublish', 'deleteStream'],
    );
    const connect = commands[0];
    assert.equal((connect?.args[0] as { app?: string }).app, 'live');
    const publish = commands.find((c) => c.name === 'publish');
    assert.deepEqual(publish?.args, [null, 'cam1?token=abc', 'live']);

    assert.ok(
      messages.some((m) => m.type === MessageType.SetChunkSize),
      'ffmpeg announces its chunk size',
    );
    const data = messages.filter((m) => m.type === MessageType.DataAmf0).map((m) => decodeAmf0(m.payload));
    assert.equal(data[0]?.[0], '@setDataFrame');
    assert.equal(data[0]?.[1], 'onMetaData');
    assert.equal((data[0]?.[2] as { width?: number }).width, 320);

    const demux = new FlvToFrames();
    const frames: Frame[] = [];
    for (const m of messages) {
      const result =
        m.type === MessageType.Video
          ? demux.video(m.timestamp, m.payload)
          : m.type === MessageType.Audio
            ? demux.audio(m.timestamp, m.payload)
            : {};
      if (result.frame) frames.push(result.frame);
    }
    const { video, audio } = demux.currentTracks();
    assert.equal(video?.codec, 'h264');
    assert.equal(video?.config[0], 1, 'avcC configurationVersion');
    assert.equal(video?.width, 320);
    assert.equal(video?.height, 240);
    assert.equal(audio?.codec, 'aac');
    assert.equal(audio?.sampleRate, 44100);
    assert.equal(audio?.channels, 1);
    const videoFrames = frames.filter((f) => f.kind === 'video');
    assert.ok(videoFrames.length >= 25, `${videoFrames.length} video frames`);
    assert.ok(frames.filter((f) => f.kind === 'audio').length >= 80);
    assert.equal(videoFrames[0]?.keyframe, true);
    assert.ok(videoFrames.every((f) => f.pts >= f.dts));
  };
  check(new ChunkReader(READER_LIMITS).push(capture));
  const random = prng(7);
  check(pushInSlices(new ChunkReader(READER_LIMITS), capture, () => 1 + Math.floor(random() * 2000)));
});

test('rtmp chunk reader: random, truncated and mutated bytes only ever throw RtmpProtocolError', () => {
  const random = prng(0xc0ffee);
  const { bytes: table } = roundTripStream();
  const capture = readFileSync(
    new URL('../../../fixtures/rtmp/ffmpeg-publish.bin', import.meta.url),
  ).subarray(0, 8000);
  const seeds = [table.subarray(0, 4000), capture];
  for (let i = 0; i < 3000; i++) {
    let input: Buffer;
    const seed = seeds[i % seeds.length] ?? Buffer.alloc(0);
    if (i % 3 === 0) {
      input = Buffer.from(
        Array.from({ length: Math.floor(random() * 300) }, () => Math.floor(random() * 256)),
      );
    } else if (i % 3 === 1) {
      input = seed.subarray(0, Math.floor(random() * seed.length));
    } else {
      input = Buffer.from(seed);
      for (let k = 0; k < 4; k++) input[Math.floor(random() * input.length)] = Math.floor(random() * 256);
    }
    const reader = new ChunkReader({ ...READER_LIMITS, maxMessageBytes: 64 * 1024 });
    try {
      pushInSlices(reader, input, () => 1 + Math.floor(random() * 64));
    } catch (error) {
      assert.ok(error instanceof RtmpProtocolError, `input ${i} threw ${String(error)}`);
    }
  }
});
