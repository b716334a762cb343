/**
 * The short fuzz run of `npm test`: every target of test/fuzz/ with a fixed seed and a small
 * number of runs (the long, freshly seeded runs are `npm run fuzz`), and the saved inputs of
 * the bugs fuzzing found (test/fixtures/fuzz/<target>/) replayed through their target.
 */
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { describe, test } from 'node:test';
import fc from 'fast-check';
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
