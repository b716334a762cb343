import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  formatRtpInfo,
  parseBasicAuth,
  parseCSeq,
  parseSession,
} from '../../../../protocols/rtsp/wire/headers.js';

test('session, cseq, basic auth, rtp-info', () => {
  assert.equal(parseSession('12345678;timeout=60'), '12345678');
  assert.equal(parseSession(' '), undefined);
  assert.equal(parseCSeq(' 42 '), 42);
  assert.equal(parseCSeq('x'), undefined);
  assert.deepEqual(parseBasicAuth(`Basic ${Buffer.from('pub:s3:cret').toString('base64')}`), {
    user: 'pub',
    pass: 's3:cret',
  });
  assert.equal(parseBasicAuth('Digest username="a"'), undefined);
  assert.equal(parseBasicAuth(`Basic ${Buffer.from('nocolon').toString('base64')}`), undefined);
  assert.equal(
    formatRtpInfo([
      { url: 'rtsp://h/a/trackID=0', seq: 5, rtptime: 900 },
      { url: 'rtsp://h/a/trackID=1', seq: 7 },
    ]),
    'url=rtsp://h/a/trackID=0;seq=5;rtptime=900,url=rtsp://h/a/trackID=1;seq=7',
  );
});
