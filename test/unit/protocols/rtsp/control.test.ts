import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  admission,
  answerHeaders,
  precheck,
  readerLimits,
  refusal,
} from '../../../../protocols/rtsp/control.js';
import { rtspTarget } from '../../../../protocols/rtsp/credentials.js';
import { RtspReader, writeResponse, type RtspRequest } from '../../../../protocols/rtsp/wire/message.js';
import { DEFAULT_LIMITS } from '../../../../src/core/limits.js';

/** What the server reads with by default (src/core/limits.ts). */
const READER_LIMITS = readerLimits(DEFAULT_LIMITS);

/** Parses one request as it came off the wire. */
function req(text: string): RtspRequest {
  const [item] = new RtspReader(READER_LIMITS).push(Buffer.from(text, 'latin1'));
  if (item?.kind !== 'request') throw new Error('not a request');
  return item.request;
}

// Requests as ffmpeg 5.1 (Lavf59.27.100) sends them, see test/fixtures/rtsp.
const DESCRIBE = req(
  'DESCRIBE rtsp://127.0.0.1:8554/paid/cam?token=abc RTSP/1.0\r\nAccept: application/sdp\r\nCSeq: 2\r\nUser-Agent: Lavf59.27.100\r\n\r\n',
);
const PLAY = req(
  'PLAY rtsp://127.0.0.1:8554/paid/cam?token=abc/ RTSP/1.0\r\nRange: npt=0.000-\r\nCSeq: 5\r\nUser-Agent: Lavf59.27.100\r\nSession: 0123456789abcdef\r\n\r\n',
);
const NO_CSEQ = req('OPTIONS rtsp://127.0.0.1:8554/x RTSP/1.0\r\nUser-Agent: raw\r\n\r\n');

test('precheck: a request without CSeq is a 400; a foreign Session id a 454', () => {
  assert.equal(precheck(NO_CSEQ, undefined), 400);
  assert.equal(precheck(DESCRIBE, undefined), undefined);
  assert.equal(precheck(PLAY, '0123456789abcdef'), undefined);
  assert.equal(precheck(PLAY, 'fedcba9876543210'), 454);
  assert.equal(precheck(PLAY, undefined), undefined, 'no session here yet: nothing to compare with');
});

test('answer headers: CSeq echoed; Session with its timeout on success only', () => {
  assert.equal(
    writeResponse(200, answerHeaders(PLAY, 200, '0123456789abcdef', [['Range', 'npt=0.000-']])).toString(),
    'RTSP/1.0 200 OK\r\nCSeq: 5\r\nServer: streamgate\r\nSession: 0123456789abcdef;timeout=60\r\nRange: npt=0.000-\r\n\r\n',
  );
  assert.equal(
    writeResponse(455, answerHeaders(PLAY, 455, '0123456789abcdef')).toString(),
    'RTSP/1.0 455 Method Not Valid in This State\r\nCSeq: 5\r\nServer: streamgate\r\n\r\n',
  );
  assert.equal(
    writeResponse(200, answerHeaders(DESCRIBE, 200, undefined)).toString(),
    'RTSP/1.0 200 OK\r\nCSeq: 2\r\nServer: streamgate\r\n\r\n',
  );
});

test('admission: a play request carries the token, query, user agent and host of the URL', () => {
  const a = admission('play', DESCRIBE, rtspTarget(DESCRIBE.uri), '10.0.0.7');
  assert.deepEqual(
    { ...a.request, query: a.request.query.toString() },
    {
      kind: 'play',
      proto: 'rtsp',
      name: 'paid/cam',
      ip: '10.0.0.7',
      qs: 'token=abc',
      query: 'token=abc',
      token: 'abc',
      userAgent: 'Lavf59.27.100',
      host: '127.0.0.1:8554',
    },
  );
  assert.equal(a.mayChallenge, false);
});

test('admission: the publish password comes from ?password= or Basic auth; without either a challenge may follow', () => {
  const announce = (auth?: string, query = ''): RtspRequest =>
    req(
      `ANNOUNCE rtsp://127.0.0.1:8554/secret/cam${query} RTSP/1.0\r\nCSeq: 2\r\n${auth ? `Authorization: ${auth}\r\n` : ''}\r\n`,
    );
  const none = announce();
  const bare = admission('publish', none, rtspTarget(none.uri), '127.0.0.1');
  assert.equal(bare.request.query.get('password'), null);
  assert.equal(bare.mayChallenge, true);

  const basic = announce(`Basic ${Buffer.from('pub:s3cret').toString('base64')}`);
  const withBasic = admission('publish', basic, rtspTarget(basic.uri), '127.0.0.1');
  assert.equal(withBasic.request.query.get('password'), 's3cret');
  assert.equal(withBasic.request.qs, '', 'qs stays what the client sent');
  assert.equal(withBasic.mayChallenge, false);

  const both = announce(`Basic ${Buffer.from('pub:other').toString('base64')}`, '?password=q');
  assert.equal(
    admission('publish', both, rtspTarget(both.uri), '127.0.0.1').request.query.get('password'),
    'q',
  );
  const query = announce(undefined, '?password=nope');
  assert.equal(admission('publish', query, rtspTarget(query.uri), '127.0.0.1').mayChallenge, false);

  const play = admission('play', basic, rtspTarget(basic.uri), '127.0.0.1');
  assert.equal(
    play.request.query.get('password'),
    null,
    'a player’s Basic credentials are not a publish password',
  );
  assert.equal(play.mayChallenge, false);
});

test('refusal: 302 with Location, a Basic challenge for a missing password, else the status', () => {
  assert.deepEqual(
    refusal(
      { allow: false, status: 302, reason: 'redirect', location: 'rtsp://elsewhere.example/backup' },
      false,
    ),
    { status: 302, headers: [['Location', 'rtsp://elsewhere.example/backup']], challenge: false },
  );
  assert.deepEqual(refusal({ allow: false, status: 403, reason: 'wrong_password' }, true), {
    status: 401,
    headers: [['WWW-Authenticate', 'Basic realm="streamgate"']],
    challenge: true,
  });
  assert.deepEqual(refusal({ allow: false, status: 403, reason: 'wrong_password' }, false), {
    status: 403,
    headers: [],
    challenge: false,
  });
  assert.deepEqual(refusal({ allow: false, status: 404, reason: 'stream_not_found' }, true), {
    status: 404,
    headers: [],
    challenge: false,
  });
});
