/**
 * The short fuzz run of `npm test`: every target of test/fuzz/ with a fixed seed and a small
 * number of runs (the long, freshly seeded runs are `npm run fuzz`), and the saved inputs of
 * the bugs fuzzing found (test/fixtures/fuzz/<target>/) replayed through their target.
 */
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { checkJwt } from '../../src/tokens/jwt.js';
import { propertyOf, targets } from '../fuzz/registry.js';

const SEED = 20240611;
const FIXTURES = new URL('../fixtures/fuzz/', import.meta.url);

describe('fuzz targets, fixed seed', () => {
  for (const target of targets) {
    test(target.name, () => {
      fc.assert(propertyOf(target), { seed: SEED, numRuns: target.unitRuns ?? 100 });
    });
  }
});

describe('fuzz regression inputs', () => {
  for (const target of targets) {
    const dir = new URL(`${target.name}/`, FIXTURES);
    if (!existsSync(dir)) continue;
    for (const name of readdirSync(dir)
      .filter((f) => !f.endsWith('.md'))
      .sort()) {
      test(`${target.name}: ${name}`, () => {
        assert.ok(target.replay, `${target.name} has saved inputs but no replay`);
        target.replay(readFileSync(new URL(name, dir)));
      });
    }
  }
});

/** What each saved input must now produce (test/fixtures/fuzz/README.md tells the story of each). */
describe('fuzz findings', () => {
  const text = (path: string): string => readFileSync(new URL(path, FIXTURES), 'utf8');

  test('jwt: an alg naming an Object.prototype member is refused, not a TypeError from createHmac', () => {
    const r = checkJwt(text('jwt/alg-constructor.txt'), { secrets: ['s3cret'] }, { now: 0 });
    assert.deepEqual(r.ok ? 'ok' : r.reason, 'alg_not_allowed');
  });

  test('jwt: an alg object whose toString is data is malformed, not a TypeError from String()', () => {
    const r = checkJwt(text('jwt/alg-object-tostring.txt'), { secrets: ['s3cret'] }, { now: 0 });
    assert.deepEqual(r.ok ? 'ok' : r.reason, 'malformed');
  });
});
