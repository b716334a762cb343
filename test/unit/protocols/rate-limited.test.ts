/**
 * How each adapter answers a client over its new-session budget (a 429 `rate_limited`
 * denial): HTTP 429 with Retry-After, RTSP 503 with Retry-After (RTSP has no 429). RTMP's
 * answer (NetStream.Play.Failed with the reason) is in rtmp/session.test.ts.
 */
import assert from 'node:assert/strict';
import type { ServerResponse } from 'node:http';
import { test } from 'node:test';
import { refusal } from '../../../protocols/rtsp/control.js';
import { sendDenial } from '../../../src/http/playback.js';
import type { Denial } from '../../../src/sessions/types.js';

const limited: Denial = { allow: false, status: 429, reason: 'rate_limited', retryAfterSec: 3 };

/** Just enough of a ServerResponse to see what sendDenial writes. */
function response(): {
  res: ServerResponse;
  sent: { status?: number; headers?: Record<string, unknown>; body?: string };
} {
  const sent: { status?: number; headers?: Record<string, unknown>; body?: string } = {};
  const res = {
    headersSent: false,
    writeHead(status: number, headers: Record<string, unknown>) {
      sent.status = status;
      sent.headers = headers;
      return this;
    },
    end(body: string) {
      sent.body = body;
      return this;
    },
  } as unknown as ServerResponse;
  return { res, sent };
}

test('HTTP (HLS, MPEG-TS): 429 with Retry-After and the reason', () => {
  const { res, sent } = response();
  sendDenial(res, limited, { 'Access-Control-Allow-Origin': '*' });
  assert.equal(sent.status, 429);
  assert.equal(sent.headers?.['Retry-After'], '3');
  assert.equal(sent.headers?.['Access-Control-Allow-Origin'], '*');
  assert.equal(sent.body, '429 rate_limited\n');

  const other = response();
  sendDenial(other.res, { allow: false, status: 403, reason: 'banned' });
  assert.equal(other.sent.status, 403);
  assert.equal(other.sent.headers?.['Retry-After'], undefined, 'only a 429 says when to come back');
});

test('RTSP: 503 with Retry-After, and the connection closes', () => {
  assert.deepEqual(refusal(limited, true), {
    status: 503,
    headers: [['Retry-After', '3']],
    challenge: false,
  });
});
