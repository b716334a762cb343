/**
 * AMF0 (src/media/amf0.ts): the decoder throws nothing but Amf0Error, and encode → decode is
 * the identity for every value AMF0 can carry, nesting limit included.
 */
import assert from 'node:assert/strict';
import fc from 'fast-check';
import {
  Amf0Error,
  MAX_AMF0_DEPTH,
  decodeAmf0,
  encodeAmf0,
  encodeAmf0EcmaArray,
  type Amf0Object,
  type Amf0Value,
} from '../../src/media/amf0.js';
import { FlvReader } from '../../src/media/flv.js';
import {
  assertBounded,
  defineTarget,
  expectOnly,
  fixture,
  mutated,
  rawBytes,
  withinBudget,
} from './support.js';
import { newChunkReader } from './readers.js';

const stringArb = fc.oneof(
  { weight: 8, arbitrary: fc.string({ unit: 'grapheme', maxLength: 20 }) },
  // Over 65535 UTF-8 bytes: the long-string form.
  { weight: 1, arbitrary: fc.constantFrom('x'.repeat(0x10000), 'é'.repeat(0x8000)) },
);

/** Any value AMF0 carries, nested a few levels. */
export const amf0ValueArb: fc.Arbitrary<Amf0Value> = fc.letrec<{ value: Amf0Value }>((tie) => ({
  value: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    fc.double(),
    fc.boolean(),
    stringArb,
    fc.constant(null),
    fc.constant(undefined),
    fc.array(tie('value'), { maxLength: 4 }),
    fc.dictionary(fc.string({ unit: 'grapheme', maxLength: 8 }), tie('value'), {
      maxKeys: 4,
      noNullPrototype: true,
    }),
  ),
})).value;

const objectArb: fc.Arbitrary<Amf0Object> = fc.dictionary(
  fc.string({ unit: 'grapheme', maxLength: 8 }),
  amf0ValueArb,
  {
    maxKeys: 6,
    noNullPrototype: true,
  },
);

/** A value nested `levels` deep in arrays and objects: around the nesting limit. */
const deepArb: fc.Arbitrary<Amf0Value> = fc
  .tuple(fc.integer({ min: 1, max: MAX_AMF0_DEPTH + 4 }), fc.array(fc.boolean(), { maxLength: 40 }))
  .map(([levels, kinds]) => {
    let v: Amf0Value = 1;
    for (let i = 0; i < levels; i++) v = kinds[i] ? [v] : { k: v };
    return v;
  });

/** Containers on the deepest path (a scalar is 0). */
function depthOf(v: Amf0Value): number {
  if (v === null || typeof v !== 'object') return 0;
  const children = Array.isArray(v) ? v : Object.values(v);
  return 1 + Math.max(0, ...children.map(depthOf));
}

function nodeCount(v: Amf0Value): number {
  if (v === null || typeof v !== 'object') return 1;
  const children = Array.isArray(v) ? v : Object.values(v);
  return 1 + children.reduce((n: number, c) => n + nodeCount(c), 0);
}

/** AMF0 the peers really send: RTMP commands, onMetaData of the captures and of the FLV fixture. */
const CAPTURED: readonly Buffer[] = [
  ...newChunkReader().push(fixture('test/fixtures/rtmp/ffmpeg-publish.bin')),
  ...newChunkReader().push(fixture('test/fixtures/rtmp/ffmpeg-play.bin')),
]
  .filter((m) => m.type === 20 || m.type === 18)
  .map((m) => m.payload)
  .concat(
    new FlvReader()
      .push(fixture('test/fixtures/flv/h264-aac-1s.flv'))
      .filter((t) => t.type === 18)
      .map((t) => t.data),
  );

function checkDecode(bytes: Buffer): void {
  const values = withinBudget(bytes.length, () => expectOnly([Amf0Error], () => decodeAmf0(bytes)));
  // Every decoded value or property costs at least one input byte: no amplification.
  if (values) {
    assertBounded(
      'decoded values',
      values.reduce((n: number, v) => n + nodeCount(v), 0),
      bytes.length,
      1,
      0,
    );
  }
}

export const amf0Targets = [
  defineTarget({
    name: 'amf0-decode',
    property: 'decodeAmf0: any bytes → only Amf0Error, decoded nodes ≤ input bytes, bounded CPU',
    arbitrary: fc.oneof(
      { weight: 1, arbitrary: rawBytes(512) },
      { weight: 3, arbitrary: mutated(fc.constantFrom(...CAPTURED)) },
      {
        weight: 3,
        arbitrary: mutated(fc.array(amf0ValueArb, { maxLength: 4 }).map((vs) => encodeAmf0(...vs))),
      },
      { weight: 1, arbitrary: mutated(objectArb.map((o) => encodeAmf0EcmaArray(o))) },
    ),
    check: checkDecode,
    replay: checkDecode,
  }),
  defineTarget({
    name: 'amf0-roundtrip',
    property:
      'decodeAmf0(encodeAmf0(...vs)) = vs and ECMA arrays decode to their object; deeper than the limit → Amf0Error both ways',
    arbitrary: fc.record({
      values: fc.array(fc.oneof(amf0ValueArb, deepArb), { maxLength: 4 }),
      ecma: objectArb,
    }),
    check: ({ values, ecma }) => {
      const tooDeep = values.some((v) => depthOf(v) > MAX_AMF0_DEPTH);
      const encoded = expectOnly([Amf0Error], () => encodeAmf0(...values));
      assert.equal(encoded === undefined, tooDeep, 'the encoder and the nesting limit disagree');
      if (encoded) assert.deepStrictEqual(decodeAmf0(encoded), values);
      assert.deepStrictEqual(decodeAmf0(encodeAmf0EcmaArray(ecma)), [ecma]);
      if (tooDeep) {
        // What the encoder refuses, the decoder must refuse too: build the bytes by hand.
        const deep = values.find((v) => depthOf(v) > MAX_AMF0_DEPTH) ?? null;
        assert.throws(() => decodeAmf0(encodeUnbounded(deep)), Amf0Error);
      }
    },
  }),
];

/** The nesting the encoder refuses, written anyway (arrays and objects only, as deepArb builds). */
function encodeUnbounded(v: Amf0Value): Buffer {
  if (Array.isArray(v)) {
    const head = Buffer.alloc(5);
    head[0] = 0x0a;
    head.writeUInt32BE(v.length, 1);
    return Buffer.concat([head, ...v.map(encodeUnbounded)]);
  }
  if (v !== null && typeof v === 'object') {
    const parts: Buffer[] = [Buffer.of(0x03)];
    for (const [k, child] of Object.entries(v)) {
      const key = Buffer.from(k, 'utf8');
      const len = Buffer.alloc(2);
      len.writeUInt16BE(key.length);
      parts.push(len, key, encodeUnbounded(child));
    }
    parts.push(Buffer.of(0, 0, 9));
    return Buffer.concat(parts);
  }
  return encodeAmf0(v);
}
