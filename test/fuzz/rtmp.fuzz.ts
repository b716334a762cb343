/**
 * RTMP wire layer (protocols/rtmp/wire): the chunk reader, the chunk writer → reader round
 * trip, the server handshake and the command decoder. Their one allowed exception is
 * RtmpProtocolError (wire/errors.ts); the connection turns it into a close.
 */
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { encodeAmf0 } from '../../src/media/amf0.js';
import type { RtmpMessage } from '../../protocols/rtmp/wire/chunk-reader.js';
import { encodeMessage } from '../../protocols/rtmp/wire/chunk-writer.js';
import { RtmpProtocolError } from '../../protocols/rtmp/wire/errors.js';
import { HANDSHAKE_PACKET_BYTES, ServerHandshake } from '../../protocols/rtmp/wire/handshake.js';
import { command, decodeCommand, MessageType, setChunkSize } from '../../protocols/rtmp/wire/messages.js';
import { amf0ValueArb } from './amf0.fuzz.js';
import { newChunkReader } from './readers.js';
import {
  type Chunking,
  assertBounded,
  chunkingArb,
  defineTarget,
  expectOnly,
  fixture,
  mutated,
  pieces,
  prefixOf,
  rawBytes,
  spliced,
  withinBudget,
} from './support.js';

const PUBLISH = fixture('test/fixtures/rtmp/ffmpeg-publish.bin');
const PLAY = fixture('test/fixtures/rtmp/ffmpeg-play.bin');

/** The messages of the ffmpeg captures: real payloads (AMF0 commands, FLV tag bodies) to re-chunk. */
const CAPTURED: readonly RtmpMessage[] = [...newChunkReader().push(PUBLISH), ...newChunkReader().push(PLAY)];

// ---------------------------------------------------------------------------------------------
// A test-side chunk stream writer that uses every header type (the server's own writer only
// emits type 0 + type 3) and interleaves the chunks of messages on different chunk streams, as
// OBS and ffmpeg do with audio and video.

interface CsidState {
  streamId: number;
  length: number;
  type: number;
  timestamp: number;
  /** What the reader will treat as the delta of a following type-3 header. */
  delta: number;
  extended: boolean;
}

const EXTENDED = 0xffffff;
const MOD = 2 ** 32;

function basicHeader(fmt: number, csid: number): Buffer {
  if (csid <= 63) return Buffer.of((fmt << 6) | csid);
  if (csid <= 319) return Buffer.of(fmt << 6, csid - 64);
  return Buffer.of((fmt << 6) | 1, (csid - 64) & 0xff, (csid - 64) >> 8);
}

/** The header starting message `m` on its chunk stream, with the header type a compressing sender picks. */
function messageHeader(m: RtmpMessage, states: Map<number, CsidState>): Buffer {
  const prev = states.get(m.csid);
  const delta = prev ? m.timestamp - prev.timestamp : 0;
  let fmt: number;
  if (!prev || m.streamId !== prev.streamId || delta < 0) fmt = 0;
  else if (m.payload.length !== prev.length || m.type !== prev.type) fmt = 1;
  else if (delta === prev.delta) fmt = 3;
  else fmt = 2;
  const field = fmt === 0 ? m.timestamp : fmt === 3 ? (prev?.delta ?? 0) : delta;
  const extended = fmt === 3 ? (prev?.extended ?? false) : field >= EXTENDED;
  const parts: Buffer[] = [basicHeader(fmt, m.csid)];
  if (fmt !== 3) {
    const h = Buffer.alloc([11, 7, 3][fmt] ?? 0);
    h.writeUIntBE(extended ? EXTENDED : field, 0, 3);
    if (fmt <= 1) {
      h.writeUIntBE(m.payload.length, 3, 3);
      h[6] = m.type;
    }
    if (fmt === 0) h.writeUInt32LE(m.streamId, 7);
    parts.push(h);
  }
  if (extended) {
    const x = Buffer.alloc(4);
    x.writeUInt32BE(field);
    parts.push(x);
  }
  states.set(m.csid, {
    streamId: m.streamId,
    length: m.payload.length,
    type: m.type,
    timestamp: m.timestamp,
    delta: field,
    extended,
  });
  return Buffer.concat(parts);
}

/**
 * Chunks `messages` (kept in order per chunk stream) with chunk headers of all four types,
 * interleaving chunk streams as `choices` says. Returns the bytes and the messages in the
 * order a reader completes them. Set Chunk Size messages in the list take effect as they would.
 */
function writeInterleaved(
  messages: readonly RtmpMessage[],
  choices: readonly number[],
): { bytes: Buffer; completed: RtmpMessage[] } {
  const queues = new Map<number, RtmpMessage[]>();
  for (const m of messages) queues.set(m.csid, [...(queues.get(m.csid) ?? []), m]);
  const states = new Map<number, CsidState>();
  const sent = new Map<number, number>();
  const out: Buffer[] = [];
  const completed: RtmpMessage[] = [];
  let chunkSize = 128;
  for (let step = 0; queues.size > 0; step++) {
    const csids = [...queues.keys()];
    const csid = csids[(choices[step % Math.max(1, choices.length)] ?? 0) % csids.length] ?? 0;
    const queue = queues.get(csid) ?? [];
    const m = queue[0];
    if (!m) break;
    const offset = sent.get(csid) ?? 0;
    if (offset === 0) {
      out.push(messageHeader(m, states));
    } else {
      out.push(basicHeader(3, csid));
      const state = states.get(csid);
      if (state?.extended) {
        const x = Buffer.alloc(4);
        x.writeUInt32BE(state.delta);
        out.push(x);
      }
    }
    const end = Math.min(m.payload.length, offset + chunkSize);
    out.push(m.payload.subarray(offset, end));
    if (end < m.payload.length) {
      sent.set(csid, end);
      continue;
    }
    sent.delete(csid);
    queue.shift();
    if (queue.length === 0) queues.delete(csid);
    completed.push(m);
    if (m.type === MessageType.SetChunkSize) chunkSize = m.payload.readUInt32BE(0) & 0x7fffffff || chunkSize;
  }
  return { bytes: Buffer.concat(out), completed };
}

// ---------------------------------------------------------------------------------------------
// Arbitraries

const CSIDS = [3, 4, 5, 6, 7, 8, 63, 64, 65, 319, 320, 1000, 65599];

function setChunkSizeMessage(size: number): RtmpMessage {
  const payload = Buffer.alloc(4);
  payload.writeUInt32BE(size);
  return { csid: 2, type: MessageType.SetChunkSize, streamId: 0, timestamp: 0, payload };
}

const payloadArb = fc.oneof(
  { weight: 3, arbitrary: fc.constantFrom(...CAPTURED.map((m) => m.payload)) },
  { weight: 2, arbitrary: rawBytes(600) },
  { weight: 1, arbitrary: fc.constant(Buffer.alloc(0)) },
);

/** Media and command messages, no protocol control (Set Chunk Size and Abort change the reader). */
const plainMessageArb = fc.record({
  csid: fc.constantFrom(...CSIDS),
  type: fc.integer({ min: 3, max: 255 }),
  streamId: fc.oneof(fc.constantFrom(0, 1), fc.nat({ max: 0xffffffff })),
  deltaKind: fc.constantFrom('same', 'small', 'large', 'absolute'),
  delta: fc.oneof(fc.integer({ min: 0, max: 100 }), fc.integer({ min: EXTENDED - 2, max: EXTENDED + 2 })),
  absolute: fc.nat({ max: 0xffffffff }),
  payload: payloadArb,
});

/** A message list with timestamps that mostly grow per chunk stream, so types 1, 2 and 3 all occur. */
const messagesArb = fc
  .tuple(
    fc.array(plainMessageArb, { minLength: 1, maxLength: 24 }),
    fc.array(
      fc.tuple(fc.nat({ max: 23 }), fc.oneof(fc.integer({ min: 1, max: 300 }), fc.constantFrom(4096, 65536))),
      {
        maxLength: 3,
      },
    ),
  )
  .map(([plain, sizeChanges]) => {
    const last = new Map<number, { ts: number; delta: number }>();
    const messages: RtmpMessage[] = plain.map((p) => {
      const prev = last.get(p.csid) ?? { ts: 0, delta: 0 };
      let delta = p.deltaKind === 'same' ? prev.delta : p.deltaKind === 'small' ? p.delta % 101 : p.delta;
      let ts = prev.ts + delta;
      if (p.deltaKind === 'absolute' || ts < 0 || ts >= MOD) {
        ts = p.absolute;
        delta = ts - prev.ts;
      }
      last.set(p.csid, { ts, delta });
      return { csid: p.csid, type: p.type, streamId: p.streamId, timestamp: ts, payload: p.payload };
    });
    for (const [at, size] of sizeChanges.sort((a, b) => b[0] - a[0])) {
      messages.splice(Math.min(at, messages.length), 0, setChunkSizeMessage(size));
    }
    return messages;
  });

const interleavedArb = fc
  .tuple(messagesArb, fc.array(fc.nat({ max: 64 }), { maxLength: 64 }))
  .map(([messages, choices]) => ({ messages, choices }));

/** Bytes of a chunk stream: captures, streams of all header types, garbage, and mutations and splices of them. */
const streamBytesArb = (() => {
  const valid = fc.oneof(
    prefixOf(PUBLISH, 40_000),
    fc.constant(PLAY),
    interleavedArb.map(({ messages, choices }) => writeInterleaved(messages, choices).bytes),
  );
  return fc.oneof(
    { weight: 1, arbitrary: rawBytes(1024) },
    { weight: 2, arbitrary: valid },
    { weight: 6, arbitrary: mutated(valid) },
    { weight: 2, arbitrary: spliced(valid, valid) },
  );
})();

// ---------------------------------------------------------------------------------------------
// Checks

function sameMessage(a: RtmpMessage, b: RtmpMessage): boolean {
  return (
    a.csid === b.csid &&
    a.type === b.type &&
    a.streamId === b.streamId &&
    a.timestamp === b.timestamp &&
    a.payload.equals(b.payload)
  );
}

function assertSameMessages(
  actual: readonly RtmpMessage[],
  expected: readonly RtmpMessage[],
  what: string,
): void {
  assert.equal(actual.length, expected.length, `${what}: message count`);
  actual.forEach((m, i) => {
    const e = expected[i] as RtmpMessage;
    assert.ok(
      sameMessage(m, e),
      `${what}: message ${i} differs: got csid ${m.csid} type ${m.type} stream ${m.streamId} ts ${m.timestamp} ` +
        `${m.payload.length} B, want csid ${e.csid} type ${e.type} stream ${e.streamId} ts ${e.timestamp} ${e.payload.length} B`,
    );
  });
}

/** Pushes `chunks` until the reader refuses; the messages before that and whether it refused. */
function readAll(chunks: readonly Buffer[]): { messages: RtmpMessage[]; refused: boolean } {
  const reader = newChunkReader();
  const messages: RtmpMessage[] = [];
  const done = expectOnly([RtmpProtocolError], () => {
    for (const c of chunks) messages.push(...reader.push(c));
    assert.ok(reader.incomingChunkSize >= 1, 'chunk size below 1');
    return true;
  });
  return { messages, refused: done === undefined };
}

function checkReader(bytes: Buffer, chunking: Chunking): void {
  const chunked = withinBudget(bytes.length, () => readAll(pieces(bytes, chunking)));
  // Each message costs at least one header byte, and payload bytes are never invented.
  assertBounded('message count', chunked.messages.length, bytes.length, 1, 0);
  const payloadBytes = chunked.messages.reduce((n, m) => n + m.payload.length, 0);
  assertBounded('payload bytes', payloadBytes, bytes.length, 1, 0);
  // Packet boundaries must not matter: the same bytes in one piece give the same answer.
  const whole = readAll([bytes]);
  assert.equal(chunked.refused, whole.refused, 'refusal depends on how the bytes were cut');
  if (!whole.refused) assertSameMessages(chunked.messages, whole.messages, 'chunked vs whole');
}

export const rtmpTargets = [
  defineTarget({
    name: 'rtmp-chunk-reader',
    property:
      'ChunkReader: any bytes in any slicing → only RtmpProtocolError, same result as one push, output ≤ input, bounded CPU',
    arbitrary: fc.record({ bytes: streamBytesArb, chunking: chunkingArb }),
    check: ({ bytes, chunking }) => checkReader(bytes, chunking),
    unitRuns: 150,
    replay: (file) => checkReader(file, { every: 7 }),
  }),
  defineTarget({
    name: 'rtmp-chunk-roundtrip',
    property:
      'chunk writers → ChunkReader: every message comes back (type 0 writer with Set Chunk Size, and types 0-3 interleaved)',
    arbitrary: fc.record({
      stream: interleavedArb,
      writerSizes: fc.array(fc.oneof(fc.integer({ min: 1, max: 200 }), fc.constantFrom(128, 4096, 60000)), {
        minLength: 1,
        maxLength: 3,
      }),
      chunking: chunkingArb,
    }),
    check: ({ stream, writerSizes, chunking }) => {
      // Types 0-3, interleaved chunk streams.
      const { bytes, completed } = writeInterleaved(stream.messages, stream.choices);
      const interleaved = withinBudget(bytes.length, () => readAll(pieces(bytes, chunking)));
      assert.ok(!interleaved.refused, 'the reader refused a valid interleaved stream');
      assertSameMessages(interleaved.messages, completed, 'interleaved');

      // The server's writer: type 0 + type 3 per message, after Set Chunk Size.
      const plain = stream.messages.filter((m) => m.type !== MessageType.SetChunkSize);
      const parts: Buffer[] = [];
      const expected: RtmpMessage[] = [];
      plain.forEach((m, i) => {
        if (i % Math.ceil(plain.length / writerSizes.length) === 0) {
          const size = writerSizes[Math.floor(i / Math.ceil(plain.length / writerSizes.length))] ?? 128;
          // The setChunkSize() builder chunks at 128, right for the server's single announcement
          // at 4096; a later change under a chunk size below 4 goes through encodeMessage.
          parts.push(
            i === 0 ? setChunkSize(size) : encodeMessage(setChunkSizeMessage(size), chunkSizeAt(expected)),
          );
          expected.push(setChunkSizeMessage(size));
        }
        parts.push(encodeMessage(m, chunkSizeAt(expected)));
        expected.push(m);
      });
      const written = Buffer.concat(parts);
      const back = readAll(pieces(written, chunking));
      assert.ok(!back.refused, 'the reader refused the writer output');
      assertSameMessages(back.messages, expected, 'encodeMessage');
    },
    unitRuns: 80,
  }),
  defineTarget({
    name: 'rtmp-handshake',
    property:
      'ServerHandshake: any bytes in any slicing → only RtmpProtocolError; one 3073-byte reply echoing C1; remainder = bytes after C2',
    arbitrary: fc.record({
      bytes: fc.oneof(
        rawBytes(64),
        mutated(
          fc
            .tuple(rawBytes(2 * HANDSHAKE_PACKET_BYTES), rawBytes(300))
            .map(([c1c2, tail]) =>
              Buffer.concat([
                Buffer.of(3),
                c1c2,
                Buffer.alloc(2 * HANDSHAKE_PACKET_BYTES - c1c2.length, 7),
                tail,
              ]),
            ),
          2,
        ),
      ),
      chunking: chunkingArb,
    }),
    check: ({ bytes, chunking }) => {
      const hs = new ServerHandshake((n) => Buffer.alloc(n, 0xab));
      const replies: Buffer[] = [];
      const remainder: Buffer[] = [];
      let complete = false;
      const ok = withinBudget(bytes.length, () =>
        expectOnly([RtmpProtocolError], () => {
          for (const piece of pieces(bytes, chunking)) {
            const p = hs.push(piece);
            if (p.reply) replies.push(p.reply);
            if (complete) assert.ok(p.complete, 'handshake went back to incomplete');
            complete = p.complete;
            remainder.push(p.remainder);
            if (!p.complete) assert.equal(p.remainder.length, 0, 'remainder before completion');
          }
          return true;
        }),
      );
      const total = 1 + 2 * HANDSHAKE_PACKET_BYTES;
      if (bytes.length > 0 && bytes[0] !== 3) {
        assert.equal(ok, undefined, 'a wrong version byte was accepted');
        return;
      }
      assert.equal(ok, true, 'version 3 refused');
      assert.ok(replies.length <= 1, 'more than one reply');
      if (bytes.length >= 1 + HANDSHAKE_PACKET_BYTES) {
        const reply = replies[0];
        assert.ok(reply, 'no reply after C0+C1');
        assert.equal(reply.length, total);
        assert.ok(
          reply.subarray(1 + HANDSHAKE_PACKET_BYTES).equals(bytes.subarray(1, 1 + HANDSHAKE_PACKET_BYTES)),
          'S2 ≠ C1',
        );
      } else {
        assert.equal(replies.length, 0, 'reply before C1 was complete');
      }
      assert.equal(complete, bytes.length >= total, 'completion');
      if (complete) assert.ok(Buffer.concat(remainder).equals(bytes.subarray(total)), 'remainder');
    },
    unitRuns: 60,
  }),
  defineTarget({
    name: 'rtmp-command',
    property:
      'decodeCommand: any payload → only RtmpProtocolError; command() → ChunkReader → decodeCommand gives name, txId, args back',
    arbitrary: fc.oneof(
      fc.record({
        kind: fc.constant('bytes' as const),
        type: fc.constantFrom(MessageType.CommandAmf0, MessageType.CommandAmf3, MessageType.DataAmf0),
        payload: fc.oneof(
          rawBytes(256),
          mutated(
            fc
              .tuple(fc.string(), fc.double(), fc.array(amf0ValueArb, { maxLength: 3 }))
              .map(([name, tx, args]) => encodeAmf0(name, tx, ...args)),
          ),
          mutated(
            fc.constantFrom(
              ...CAPTURED.filter((m) => m.type === MessageType.CommandAmf0).map((m) => m.payload),
            ),
          ),
        ),
      }),
      fc.record({
        kind: fc.constant('roundtrip' as const),
        name: fc.string({ unit: 'grapheme', maxLength: 30 }),
        txId: fc.double(),
        args: fc.array(amf0ValueArb, { maxLength: 4 }),
        chunkSize: fc.integer({ min: 1, max: 4096 }),
        csid: fc.constantFrom(...CSIDS),
        streamId: fc.nat({ max: 0xffffffff }),
      }),
    ),
    check: (input) => {
      if (input.kind === 'bytes') {
        const msg: RtmpMessage = {
          csid: 3,
          type: input.type,
          streamId: 0,
          timestamp: 0,
          payload: input.payload,
        };
        withinBudget(input.payload.length, () => expectOnly([RtmpProtocolError], () => decodeCommand(msg)));
        return;
      }
      const { name, txId, args, chunkSize, csid, streamId } = input;
      const bytes = Buffer.concat([
        setChunkSize(chunkSize),
        command(csid, streamId, chunkSize, name, txId, ...args),
      ]);
      const { messages, refused } = readAll([bytes]);
      assert.ok(!refused && messages.length === 2, 'the command did not come back as one message');
      const decoded = decodeCommand(messages[1] as RtmpMessage);
      assert.deepStrictEqual(decoded, { name, txId, args });
    },
  }),
];

function chunkSizeAt(expected: readonly RtmpMessage[]): number {
  for (let i = expected.length - 1; i >= 0; i--) {
    const m = expected[i] as RtmpMessage;
    if (m.type === MessageType.SetChunkSize) return m.payload.readUInt32BE(0);
  }
  return 128;
}
