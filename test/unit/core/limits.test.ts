/** The limits an operator can change are the ones README documents, with the same defaults. */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { DEFAULT_LIMITS, LIMIT_NAMES, LIMITS } from '../../../src/core/limits.js';

const README = readFileSync(new URL('../../../README.md', import.meta.url), 'utf8');

function shown(name: (typeof LIMIT_NAMES)[number]): string {
  const v = DEFAULT_LIMITS[name];
  const unit = LIMITS[name].unit;
  if (unit === 'seconds') return `${v} s`;
  if (unit === 'bytes' && v % (1024 * 1024) === 0) return `${v / (1024 * 1024)} MiB`;
  if (unit === 'bytes' && v % 1024 === 0) return `${v / 1024} KiB`;
  return String(v);
}

test('README "Limits" lists every limit with its default', () => {
  for (const name of LIMIT_NAMES) {
    const row = README.split('\n').find((l) => l.startsWith(`| \`${name}\` |`));
    assert.ok(row, `README has no row for ${name}`);
    assert.equal(row.split('|')[2]?.trim(), shown(name), `README's default for ${name}`);
  }
});
