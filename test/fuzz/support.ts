/**
 * What every fuzz target shares: the target shape, the checks behind the common properties
 * (only the documented error type escapes, bounded CPU per input byte, bounded output), and
 * the structured arbitraries (valid inputs mutated, random chunkings) that get the fuzzing
 * past the first header check of each parser.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import fc from 'fast-check';

export interface FuzzTarget {
  readonly name: string;
  /** The property, one line. */
  readonly property: string;
  readonly arbitrary: fc.Arbitrary<unknown>;
  /** Throws when the property does not hold for `input`. */
  readonly check: (input: unknown) => void;
  /** Weight in the fixed-seed unit test, which scales it to a run count; heavy targets ask for less. Default 100. */
  readonly unitRuns?: number;
  /**
   * Replays a saved input file (test/fixtures/fuzz/<name>/*) through the same check, for the
   * regression tests of bugs this target found.
   */
  readonly replay?: (file: Buffer) => void;
}

/** Types a target's pieces together, then erases the input type for the registry. */
export function defineTarget<T>(t: {
  name: string;
  property: string;
  arbitrary: fc.Arbitrary<T>;
  check: (input: T) => void;
  unitRuns?: number;
  replay?: (file: Buffer) => void;
}): FuzzTarget {
  return {
    ...t,
    arbitrary: t.arbitrary as fc.Arbitrary<unknown>,
    check: (input) => t.check(input as T),
  };
}

// ---------------------------------------------------------------------------------------------
// Property checks

type ErrorClass = abstract new (...args: never[]) => Error;

/**
 * Runs `fn`; an exception of one of `allowed` is the parser refusing the input, which is its
 * contract, and yields undefined. Anything else (a RangeError from a Buffer read, a TypeError)
 * is a bug and fails the property with the original error as cause.
 */
export function expectOnly<T>(allowed: readonly ErrorClass[], fn: () => T): T | undefined {
  try {
    return fn();
  } catch (err) {
    if (allowed.some((c) => err instanceof c)) return undefined;
    throw new Error(
      `threw ${describeError(err)}; only ${allowed.map((c) => c.name).join(', ') || 'nothing'} is allowed`,
      {
        cause: err,
      },
    );
  }
}

/** Runs `fn`, which is documented never to throw. */
export function expectNoThrow<T>(fn: () => T): T {
  return expectOnly([], fn) as T;
}

function describeError(err: unknown): string {
  if (err instanceof Error) return `${err.name}: ${err.message}`;
  return String(err);
}

/**
 * CPU allowance for one execution: a fixed part for start-up and GC, plus a per-byte part far
 * above any linear parser (they run at well under 1 µs per byte) and far below what a
 * quadratic one needs on the larger inputs. CPU time rather than wall time, so the other
 * processes on a shared machine do not make it flaky.
 */
const BASE_CPU_MS = 300;
const CPU_MS_PER_BYTE = 0.02;

export function cpuBudgetMs(bytes: number): number {
  return BASE_CPU_MS + bytes * CPU_MS_PER_BYTE;
}

/** Runs `fn` and fails when it used more CPU than `cpuBudgetMs(bytes)`: "never hangs". */
export function withinBudget<T>(bytes: number, fn: () => T): T {
  const start = process.cpuUsage();
  let ok = false;
  try {
    const result = fn();
    ok = true;
    return result;
  } finally {
    const used = process.cpuUsage(start);
    const ms = (used.user + used.system) / 1000;
    // Only when fn returned: an exception already in flight is the more useful report.
    if (ok && ms > cpuBudgetMs(bytes)) {
      assert.fail(
        `used ${ms.toFixed(0)} ms of CPU for ${bytes} input bytes (budget ${cpuBudgetMs(bytes)} ms)`,
      );
    }
  }
}

/** "Memory bounded relative to input": what a parser returns or holds is at most `factor`× its input plus `slack`. */
export function assertBounded(what: string, size: number, inputBytes: number, factor = 1, slack = 64): void {
  assert.ok(
    size <= inputBytes * factor + slack,
    `${what} is ${size} bytes for ${inputBytes} input bytes (bound ${factor}× + ${slack})`,
  );
}

// ---------------------------------------------------------------------------------------------
// Inputs

/** Reads a fixture once, at module load. */
export function fixture(relativeToRepo: string): Buffer {
  return readFileSync(new URL(`../../${relativeToRepo}`, import.meta.url));
}

/** Values that hit length and flag boundaries in binary formats. */
const INTERESTING = [
  0, 1, 0x7f, 0x80, 0xfe, 0xff, 0x100, 0x7fff, 0x8000, 0xffff, 0xffffff, 0x7fffffff, 0xffffffff,
];

export type Mutation =
  | { readonly kind: 'set'; readonly at: number; readonly value: number }
  | { readonly kind: 'flip'; readonly at: number; readonly bit: number }
  | { readonly kind: 'word'; readonly at: number; readonly width: 1 | 2 | 3 | 4; readonly value: number }
  | { readonly kind: 'truncate'; readonly at: number }
  | { readonly kind: 'insert'; readonly at: number; readonly bytes: Uint8Array }
  | { readonly kind: 'delete'; readonly at: number; readonly length: number }
  | { readonly kind: 'copy'; readonly from: number; readonly length: number; readonly to: number };

const position = fc.nat({ max: 0x7fffffff });

export const mutationArb: fc.Arbitrary<Mutation> = fc.oneof(
  {
    weight: 4,
    arbitrary: fc.record({ kind: fc.constant('set'), at: position, value: fc.integer({ min: 0, max: 255 }) }),
  },
  {
    weight: 3,
    arbitrary: fc.record({ kind: fc.constant('flip'), at: position, bit: fc.integer({ min: 0, max: 7 }) }),
  },
  {
    weight: 3,
    arbitrary: fc.record({
      kind: fc.constant('word'),
      at: position,
      width: fc.constantFrom(1 as const, 2 as const, 3 as const, 4 as const),
      value: fc.constantFrom(...INTERESTING),
    }),
  },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('truncate'), at: position }) },
  {
    weight: 2,
    arbitrary: fc.record({
      kind: fc.constant('insert'),
      at: position,
      bytes: fc.uint8Array({ maxLength: 16 }),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      kind: fc.constant('delete'),
      at: position,
      length: fc.integer({ min: 1, max: 64 }),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      kind: fc.constant('copy'),
      from: position,
      length: fc.integer({ min: 1, max: 256 }),
      to: position,
    }),
  },
);

/** Applies mutations in order; positions wrap around the current length. */
export function applyMutations(input: Buffer, mutations: readonly Mutation[]): Buffer {
  let buf = Buffer.from(input);
  for (const m of mutations) {
    const len = buf.length;
    switch (m.kind) {
      case 'set':
        if (len > 0) buf[m.at % len] = m.value;
        break;
      case 'flip':
        if (len > 0) buf[m.at % len] = (buf[m.at % len] ?? 0) ^ (1 << m.bit);
        break;
      case 'word':
        if (len >= m.width) {
          buf.writeUIntBE(m.value % 2 ** (8 * m.width), m.at % (len - m.width + 1), m.width);
        }
        break;
      case 'truncate':
        buf = buf.subarray(0, m.at % (len + 1));
        break;
      case 'insert': {
        const at = m.at % (len + 1);
        buf = Buffer.concat([buf.subarray(0, at), m.bytes, buf.subarray(at)]);
        break;
      }
      case 'delete': {
        const at = m.at % (len + 1);
        buf = Buffer.concat([buf.subarray(0, at), buf.subarray(at + m.length)]);
        break;
      }
      case 'copy': {
        if (len === 0) break;
        const from = m.from % len;
        const piece = Buffer.from(buf.subarray(from, from + m.length));
        const to = m.to % (len + 1);
        buf = Buffer.concat([buf.subarray(0, to), piece, buf.subarray(to)]);
        break;
      }
    }
  }
  return buf;
}

/** A valid input from `base`, then a few mutations: most executions get past the parser's first checks. */
export function mutated(base: fc.Arbitrary<Buffer>, maxMutations = 6): fc.Arbitrary<Buffer> {
  return fc
    .tuple(base, fc.array(mutationArb, { maxLength: maxMutations }))
    .map(([buf, mutations]) => applyMutations(buf, mutations));
}

/** The head of one input joined to the tail of another: reaches states no single valid input has. */
export function spliced(a: fc.Arbitrary<Buffer>, b: fc.Arbitrary<Buffer>): fc.Arbitrary<Buffer> {
  return fc
    .tuple(a, b, position, position)
    .map(([x, y, i, j]) =>
      Buffer.concat([x.subarray(0, i % (x.length + 1)), y.subarray(j % (y.length + 1))]),
    );
}

/** A prefix of a capture, so the large fixtures are explored from their start without always costing the whole file. */
export function prefixOf(capture: Buffer, maxBytes = capture.length): fc.Arbitrary<Buffer> {
  return fc.integer({ min: 0, max: Math.min(maxBytes, capture.length) }).map((n) => capture.subarray(0, n));
}

/**
 * Random bytes. fast-check draws every element of a uint8Array separately, which makes long
 * arrays the slowest part of an execution; past SMALL_BYTES the bytes come from a seeded PRNG
 * instead (still reproducible, and the length still shrinks).
 */
export const rawBytes = (maxLength = 2048): fc.Arbitrary<Buffer> => {
  const small = fc.uint8Array({ maxLength: Math.min(maxLength, SMALL_BYTES) }).map((a) => Buffer.from(a));
  if (maxLength <= SMALL_BYTES) return small;
  const large = fc
    .tuple(fc.integer({ min: 0, max: maxLength }), fc.integer())
    .map(([length, seed]) => prngBytes(length, seed));
  return fc.oneof(small, large);
};

const SMALL_BYTES = 64;

/** mulberry32: fast, seeded, good enough for filler bytes. */
function prngBytes(length: number, seed: number): Buffer {
  const out = Buffer.allocUnsafe(length);
  let a = seed >>> 0;
  for (let i = 0; i < length; i++) {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    out[i] = (t ^ (t >>> 14)) & 0xff;
  }
  return out;
}

/** How a push parser's input is cut into `push()` calls: arbitrary cut points, or fixed-size pieces. */
export type Chunking = { readonly cuts: readonly number[] } | { readonly every: number };

export const chunkingArb: fc.Arbitrary<Chunking> = fc.oneof(
  { weight: 3, arbitrary: fc.record({ cuts: fc.array(position, { maxLength: 24 }) }) },
  { weight: 1, arbitrary: fc.record({ every: fc.integer({ min: 1, max: 64 }) }) },
);

export function pieces(buf: Buffer, chunking: Chunking): Buffer[] {
  if ('every' in chunking) {
    const out: Buffer[] = [];
    for (let pos = 0; pos < buf.length; pos += chunking.every) {
      out.push(buf.subarray(pos, pos + chunking.every));
    }
    return out;
  }
  const cuts = [...new Set(chunking.cuts.map((c) => c % (buf.length + 1)))].sort((a, b) => a - b);
  const out: Buffer[] = [];
  let start = 0;
  for (const cut of [...cuts, buf.length]) {
    out.push(buf.subarray(start, cut));
    start = cut;
  }
  return out;
}

/** Printable-ish text with the syntax characters of line-based formats over-represented. */
export function textArb(alphabet: string, maxLength = 400): fc.Arbitrary<string> {
  const chars = [...alphabet];
  return fc
    .array(
      fc.oneof(
        { weight: 6, arbitrary: fc.constantFrom(...chars) },
        { weight: 1, arbitrary: fc.string({ unit: 'binary', maxLength: 2 }) },
      ),
      { maxLength },
    )
    .map((parts) => parts.join(''));
}

/** A text fixture with text-level mutations (its bytes mutated, decoded back as UTF-8 or latin1). */
export function mutatedText(
  base: fc.Arbitrary<string>,
  encoding: BufferEncoding = 'utf8',
): fc.Arbitrary<string> {
  return mutated(base.map((s) => Buffer.from(s, encoding))).map((b) => b.toString(encoding));
}

/** Joins a few words from a vocabulary with separators: syntax-aware inputs for text parsers. */
export function tokenSoup(
  words: readonly string[],
  separators: readonly string[],
  maxTokens = 60,
): fc.Arbitrary<string> {
  return fc
    .array(fc.tuple(fc.constantFrom(...words), fc.constantFrom(...separators)), { maxLength: maxTokens })
    .map((pairs) => pairs.map(([w, s]) => w + s).join(''));
}
