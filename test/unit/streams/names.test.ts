// Stream names (SPEC §4) as every adapter checks them: RTMP, RTSP and both HTTP ones call isValidStreamName.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MAX_STREAM_NAME_BYTES } from '../../../src/config/stream-fields.js';
import { isValidStreamName } from '../../../src/streams/names.js';

test('stream names: the SPEC §4 characters, at most 255 of them', () => {
  assert.equal(MAX_STREAM_NAME_BYTES, 255);
  for (const ok of ['demo', 'live/cam1', 'a.b_c-d/E9', `live/${'x'.repeat(250)}`]) {
    assert.ok(isValidStreamName(ok), ok.slice(0, 40));
  }
  for (const bad of [
    '',
    `live/${'x'.repeat(251)}`,
    'x'.repeat(200_000),
    `${'a/'.repeat(100_000)}a`,
    'live//cam1',
    '/live',
    'live/',
    'live/../admin',
    'live/./x',
    'live/cam 1',
    'live/cam%201',
    'live/cam\u00001',
    'live/кам',
    'live\\cam',
    'api/x',
    'admin',
  ]) {
    assert.equal(isValidStreamName(bad), false, JSON.stringify(bad.slice(0, 40)));
  }
});
