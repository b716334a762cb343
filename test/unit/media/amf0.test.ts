import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  Amf0Error,
  MAX_AMF0_DEPTH,
  decodeAmf0,
  encodeAmf0,
  encodeAmf0EcmaArray,
} from '../../../src/media/amf0.js';
import type { Amf0Value } from '../../../src/media/amf0.js';

/** One case table: decode tests, encode tests and fuzz seeds all use it. */
const cases: { name: string; hex: string; value: Amf0Value }[] = [
  { name: 'number', hex: '00 3ff0000000000000', value: 1 },
  { name: 'negative number', hex: '00 c004000000000000', value: -2.5 },
  { name: 'boolean true', hex: '01 01', value: true },
  { name: 'boolean false', hex: '01 00', value: false },
  { name: 'string', hex: '02 0007 636f6e6e656374', value: 'connect' },
  { name: 'empty string', hex: '02 0000', value: '' },
  { name: 'utf-8 string', hex: '02 0002 c3a9', value: 'é' },
  { name: 'null', hex: '05', value: null },
  { name: 'undefined', hex: '06', value: undefined },
  {
    name: 'object',
    hex: '03 0003 617070 02 0004 6c697665 0001 78 00 4000000000000000 000009',
    value: { app: 'live', x: 2 },
  },
  { name: 'empty object', hex: '03 000009', value: {} },
  { name: 'strict array', hex: '0a 00000002 05 01 01', value: [null, true] },
  { name: 'nested object', hex: '03 0001 61 03 0001 62 05 000009 000009', value: { a: { b: null } } },
];

function hex(text: string): Buffer {
  return Buffer.from(text.replace(/\s+/g, ''), 'hex');
}

for (const c of cases) {
  test(`amf0: decodes ${c.name}`, () => {
    assert.deepEqual(decodeAmf0(hex(c.hex)), [c.value]);
  });
  test(`amf0: encodes ${c.name}`, () => {
    assert.equal(encodeAmf0(c.value).toString('hex'), hex(c.hex).toString('hex'));
  });
}

test('amf0: decodes several values back to back, as a command carries them', () => {
  const values: Amf0Value[] = ['connect', 1, { app: 'live', tcUrl: 'rtmp://h/live' }, null, 'x'];
  assert.deepEqual(decodeAmf0(encodeAmf0(...values)), values);
});

test('amf0: ECMA array decodes to an object and its count is only a hint', () => {
  const encoded = encodeAmf0EcmaArray({ width: 320, stereo: true, encoder: 'Lavf' });
  assert.equal(encoded[0], 0x08);
  assert.equal(encoded.readUInt32BE(1), 3);
  assert.deepEqual(decodeAmf0(encoded), [{ width: 320, stereo: true, encoder: 'Lavf' }]);
  const wrongCount = Buffer.from(encoded);
  wrongCount.writeUInt32BE(0, 1);
  assert.deepEqual(decodeAmf0(wrongCount), [{ width: 320, stereo: true, encoder: 'Lavf' }]);
});

test('amf0: ECMA array without an end marker at the end of input is accepted', () => {
  const encoded = encodeAmf0EcmaArray({ a: 1 });
  assert.deepEqual(decodeAmf0(encoded.subarray(0, encoded.length - 3)), [{ a: 1 }]);
});

test('amf0: long string round-trips with marker 0x0c', () => {
  const long = 'x'.repeat(70_000);
  const encoded = encodeAmf0(long);
  assert.equal(encoded[0], 0x0c);
  assert.deepEqual(decodeAmf0(encoded), [long]);
});

test('amf0: date decodes to milliseconds and ignores the time zone', () => {
  const buf = Buffer.alloc(11);
  buf[0] = 0x0b;
  buf.writeDoubleBE(1_700_000_000_000, 1);
  buf.writeInt16BE(-60, 9);
  assert.deepEqual(decodeAmf0(buf), [1_700_000_000_000]);
});

test('amf0: typed object decodes to its properties', () => {
  assert.deepEqual(decodeAmf0(hex('10 0003 466f6f 0001 61 05 000009')), [{ a: null }]);
});

test('amf0: a "__proto__" key stays a plain property', () => {
  const decoded = decodeAmf0(hex('03 0009 5f5f70726f746f5f5f 03 0001 61 01 01 000009 000009'))[0] as object;
  assert.equal(Object.getPrototypeOf(decoded), Object.prototype);
  assert.deepEqual(Object.keys(decoded), ['__proto__']);
  assert.equal(({} as { a?: unknown }).a, undefined);
});

const malformed: { name: string; hex: string }[] = [
  { name: 'truncated number', hex: '00 3ff0' },
  { name: 'truncated string', hex: '02 0010 6162' },
  { name: 'truncated long string length', hex: '0c 0000' },
  { name: 'object without end', hex: '03 0001 61 05' },
  { name: 'truncated object key', hex: '03 00' },
  { name: 'strict array count beyond input', hex: '0a ffffffff 05' },
  { name: 'unknown marker', hex: '0e' },
  { name: 'reference', hex: '07 0001' },
  { name: 'amf3 switch', hex: '11 02' },
  { name: 'stray object end', hex: '09' },
  { name: 'truncated date', hex: '0b 0000000000000000' },
];

for (const c of malformed) {
  test(`amf0: malformed input (${c.name}) throws Amf0Error`, () => {
    assert.throws(() => decodeAmf0(hex(c.hex)), Amf0Error);
  });
}

test(`amf0: nesting deeper than ${MAX_AMF0_DEPTH} throws Amf0Error, not a stack overflow`, () => {
  // 20k nested one-element strict arrays: 0a 00000001 0a 00000001 ...
  const nestedArrays = Buffer.concat(Array.from({ length: 20_000 }, () => hex('0a 00000001')));
  assert.throws(() => decodeAmf0(nestedArrays), Amf0Error);
  const nestedObjects = Buffer.concat(Array.from({ length: 10_000 }, () => hex('03 0001 61')));
  assert.throws(() => decodeAmf0(nestedObjects), Amf0Error);
});

test('amf0: nesting at the limit decodes', () => {
  let value: Amf0Value = 1;
  for (let i = 0; i < MAX_AMF0_DEPTH; i++) value = [value];
  assert.deepEqual(decodeAmf0(encodeAmf0(value)), [value]);
});

test('amf0: encoding a cyclic object throws Amf0Error', () => {
  const cyclic: { [k: string]: Amf0Value } = {};
  cyclic.self = cyclic;
  assert.throws(() => encodeAmf0(cyclic), Amf0Error);
});

/** Small seeded PRNG (mulberry32) so fuzz failures reproduce. */
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

test('amf0: random, truncated and mutated bytes only ever throw Amf0Error', () => {
  const random = prng(0xa3f0);
  const seeds = cases.map((c) => hex(c.hex));
  seeds.push(encodeAmf0('connect', 1, { app: 'live', nested: { list: [1, 'a', null] } }));
  for (let i = 0; i < 5000; i++) {
    let input: Buffer;
    const seed = seeds[i % seeds.length] ?? Buffer.alloc(0);
    if (i % 3 === 0) {
      input = Buffer.from(
        Array.from({ length: Math.floor(random() * 40) }, () => Math.floor(random() * 256)),
      );
    } else if (i % 3 === 1) {
      input = seed.subarray(0, Math.floor(random() * seed.length));
    } else {
      input = Buffer.from(seed);
      for (let k = 0; k < 3 && input.length > 0; k++) {
        input[Math.floor(random() * input.length)] = Math.floor(random() * 256);
      }
    }
    try {
      decodeAmf0(input);
    } catch (error) {
      assert.ok(error instanceof Amf0Error, `input ${input.toString('hex')} threw ${String(error)}`);
    }
  }
});
