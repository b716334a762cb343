/**
 * The config parser (src/config/parse.ts): "Never throws on bad input: every problem comes
 * back as a ConfigError, sorted by position", at most 100 of them plus a summary line.
 */
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { DIRECTIVES, PROTOCOL_SWITCHES } from '../../src/config/directives.js';
import { parseConfig } from '../../src/config/parse.js';
import {
  defineTarget,
  expectNoThrow,
  fixture,
  mutatedText,
  textArb,
  tokenSoup,
  withinBudget,
} from './support.js';

const SEEDS = [
  'test/fixtures/config/spec-example.conf',
  'samples/streamgate.conf',
  'samples/http-backend.conf',
  'samples/script-backend.conf',
].map((p) => fixture(p).toString('utf8'));

/** Every directive, the value shapes they take, and the punctuation that structures them. */
const WORDS = [
  ...new Set(Object.values(DIRECTIVES).flat()),
  ...PROTOCOL_SWITCHES,
  '8080',
  '127.0.0.1:8080',
  '[::1]:8554',
  '0',
  '-1',
  '99999999999999999999',
  '1.5',
  'true',
  'false',
  'live',
  'publish://',
  'fake://fake',
  'file://vod/a.mp4',
  'http://127.0.0.1:9000/auth',
  'auth://mw',
  'ks://123',
  'jwt://?secret=s',
  'securetoken://KEY?no_check_ip=true',
  'redis://127.0.0.1:6379',
  'sqlite://data/h.db',
  'ip',
  'token',
  'ua',
  'default',
  '10.0.0.0/8',
  '::1',
  'session_keys=ip,name',
  'max_sessions=3',
  'domains=example.com',
  '"a b"',
  '"unterminated',
  '\\"',
  '{',
  '}',
  ';',
  '#',
];

function checkConfig(text: string): void {
  const r = withinBudget(text.length, () => expectNoThrow(() => parseConfig(text, 'fuzz.conf')));
  if ('config' in r) return;
  assert.ok(r.errors.length > 0 && r.errors.length <= 101, `${r.errors.length} errors`);
  const lines = text.split(/\r\n|\r|\n/).length;
  let previous = { line: 1, col: 1 };
  for (const e of r.errors.slice(0, 100)) {
    assert.ok(Number.isInteger(e.line) && e.line >= 1 && e.line <= lines + 1, `line ${e.line} of ${lines}`);
    assert.ok(Number.isInteger(e.col) && e.col >= 1, `col ${e.col}`);
    assert.ok(e.message.length > 0, 'empty message');
    assert.ok(
      e.line > previous.line || (e.line === previous.line && e.col >= previous.col),
      'errors not sorted',
    );
    previous = e;
  }
}

export const configTargets = [
  defineTarget({
    name: 'config-parse',
    property:
      'parseConfig: any text → never throws; ≤ 100 errors (+1 summary), each positioned inside the text and sorted; bounded CPU',
    arbitrary: fc.oneof(
      { weight: 3, arbitrary: mutatedText(fc.constantFrom(...SEEDS)) },
      { weight: 3, arbitrary: tokenSoup(WORDS, [' ', ' ', ';\n', '\n', '\t', '\r\n', '']) },
      { weight: 1, arbitrary: textArb('stream{};" \\#\n\r\t=,/:[]abc0123', 400) },
      { weight: 1, arbitrary: fc.string({ unit: 'binary', maxLength: 300 }) },
    ),
    check: checkConfig,
    unitRuns: 80,
    replay: (file) => checkConfig(file.toString('utf8')),
  }),
];
