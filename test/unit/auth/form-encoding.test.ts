/** The HTTP backend's query encoding must stay byte-for-byte what URLSearchParams writes (AUTH-SPEC §1.3). */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { formValue } from '../../../src/auth/http-backend.js';

test('formValue encodes any string exactly as URLSearchParams does', () => {
  for (const v of ['', 'bench/s1', 'a b', '10.0.0.1', '::ffff:1.2.3.4', 'é😀', '*-._~!', 'x=y&z']) {
    assert.equal(formValue(v), new URLSearchParams([['', v]]).toString().slice(1), v);
  }
  fc.assert(
    fc.property(fc.string({ unit: 'binary' }), (v) => {
      assert.equal(formValue(v), new URLSearchParams([['', v]]).toString().slice(1));
    }),
    { seed: 9, numRuns: 2000 },
  );
});
