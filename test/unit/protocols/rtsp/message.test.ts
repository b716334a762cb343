import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { RtspLimitError, RtspProtocolError } from '../../../../protocols/rtsp/wire/errors.js';
import {
  interleavedHeader,
  RtspReader,
  writeRequest,
  writeResponse,
  type PartialMessage,
  type RtspItem,
} from '../../../../protocols/rtsp/wire/message.js';
import { DEFAULT_LIMITS } from '../../../../src/core/limits.js';
import { readerLimits } from '../../../../protocols/rtsp/control.js';

/** What the server reads with by default (src/core/limits.ts). */
const READER_LIMITS = readerLimits(DEFAULT_LIMITS);

const capture = readFileSync(new URL('../../../fixtures/rtsp/ffmpeg-publish-tcp.bin', import.meta.url));

function summary(items: RtspItem[]): string[] {
  return items.map((i) =>
    i.kind === 'request'
      ? `${i.request.method} ${i.request.uri} cseq=${i.request.headers.get('cseq') ?? '-'} body=${i.request.body.length}`
      : i.kind === 'response'
        ? `${i.response.status} ${i.response.reason}`
        : `$${i.channel} ${i.payload.length}`,
  );
}

const cases: { name: string; bytes: Buffer; expect: string[] }[] = [
  {
    name: 'OPTIONS from ffmpeg',
    bytes: Buffer.from('OPTIONS rtsp://h/live/cam1 RTSP/1.0\r\nCSeq: 1\r\nUser-Agent: Lavf59.27.100\r\n\r\n'),
    expect: ['OPTIONS rtsp://h/live/cam1 cseq=1 body=0'],
  },
  {
    name: 'request with a body, then an interleaved frame',
    bytes: Buffer.concat([
      Buffer.from('ANNOUNCE rtsp://h/a RTSP/1.0\r\nCSeq: 2\r\nContent-Length: 3\r\n\r\nv=0'),
      Buffer.from([0x24, 2, 0, 3, 9, 9, 9]),
    ]),
    expect: ['ANNOUNCE rtsp://h/a cseq=2 body=3', '$2 3'],
  },
  {
    name: 'a response (a pull client reads these)',
    bytes: Buffer.from('RTSP/1.0 200 OK\r\nCSeq: 5\r\n\r\n'),
    expect: ['200 OK'],
  },
  {
    name: 'bare LF line ends and a stray CRLF between messages',
    bytes: Buffer.from('\r\nGET_PARAMETER rtsp://h/a RTSP/1.0\nCSeq: 7\n\n'),
    expect: ['GET_PARAMETER rtsp://h/a cseq=7 body=0'],
  },
  {
    name: 'lower-case method is upper-cased; repeated headers are joined',
    bytes: Buffer.from('options * RTSP/1.0\r\nCSeq: 1\r\nX-A: 1\r\nx-a: 2\r\n\r\n'),
    expect: ['OPTIONS * cseq=1 body=0'],
  },
];

for (const c of cases) {
  test(`rtsp reader: ${c.name} (whole, and fed byte by byte)`, () => {
    assert.deepEqual(summary(new RtspReader(READER_LIMITS).push(c.bytes)), c.expect);
    const r = new RtspReader(READER_LIMITS);
    const items: RtspItem[] = [];
    for (let i = 0; i < c.bytes.length; i++) items.push(...r.push(c.bytes.subarray(i, i + 1)));
    assert.deepEqual(summary(items), c.expect);
    assert.equal(r.buffered, 0);
  });
}

test('rtsp reader: folded header lines are joined (RFC 2616 §2.2)', () => {
  const [item] = new RtspReader(READER_LIMITS).push(
    Buffer.from('OPTIONS * RTSP/1.0\r\nCSeq: 1\r\nX-Long: a\r\n b\r\n\r\n'),
  );
  assert.equal(item?.kind === 'request' && item.request.headers.get('x-long'), 'a b');
});

test('rtsp reader: the whole ffmpeg publish capture, in 1000-byte slices', () => {
  const r = new RtspReader(READER_LIMITS);
  const items: RtspItem[] = [];
  for (let i = 0; i < capture.length; i += 1000) items.push(...r.push(capture.subarray(i, i + 1000)));
  const requests = items.flatMap((i) => (i.kind === 'request' ? [i.request.method] : []));
  assert.deepEqual(requests, ['OPTIONS', 'ANNOUNCE', 'SETUP', 'SETUP', 'RECORD', 'TEARDOWN']);
  const channels = new Map<number, number>();
  for (const i of items) {
    if (i.kind === 'interleaved') channels.set(i.channel, (channels.get(i.channel) ?? 0) + 1);
  }
  assert.deepEqual([...channels.keys()].sort(), [0, 1, 2, 3]);
  assert.ok((channels.get(0) ?? 0) > 100, 'video packets');
  assert.equal(r.buffered, 0);
});

const errors: { name: string; bytes: Buffer; status: number }[] = [
  { name: 'HTTP request line', bytes: Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n'), status: 400 },
  { name: 'TLS client hello', bytes: Buffer.from([0x16, 3, 1, 2, 0, 1, 0, 1, 0xfc, 3, 3]), status: 400 },
  {
    name: 'header line without colon',
    bytes: Buffer.from('OPTIONS * RTSP/1.0\r\nCSeq 1\r\n\r\n'),
    status: 400,
  },
  {
    name: 'non-numeric Content-Length',
    bytes: Buffer.from('ANNOUNCE * RTSP/1.0\r\nCSeq: 1\r\nContent-Length: -5\r\n\r\n'),
    status: 400,
  },
  {
    name: 'body over the limit',
    bytes: Buffer.from(
      `ANNOUNCE * RTSP/1.0\r\nCSeq: 1\r\nContent-Length: ${DEFAULT_LIMITS.request_body_bytes + 1}\r\n\r\n`,
    ),
    status: 413,
  },
  {
    name: 'head over the limit without a blank line',
    bytes: Buffer.from(`OPTIONS * RTSP/1.0\r\nX: ${'a'.repeat(DEFAULT_LIMITS.request_head_bytes)}`),
    status: 431,
  },
];

for (const e of errors) {
  test(`rtsp reader: ${e.name} → RtspProtocolError ${e.status}`, () => {
    assert.throws(
      () => new RtspReader(READER_LIMITS).push(e.bytes),
      (err: unknown) => err instanceof RtspProtocolError && err.status === e.status,
    );
  });
}

test('rtsp reader: limits are the ones given — a head or body over them throws RtspLimitError naming it', () => {
  const small = new RtspReader({ maxHeadBytes: 64, maxBodyBytes: 10 });
  assert.throws(
    () => small.push(Buffer.from(`OPTIONS * RTSP/1.0\r\nCSeq: 1\r\nX: ${'a'.repeat(60)}`)),
    (e: unknown) => e instanceof RtspLimitError && e.limit === 'maxHeadBytes' && e.status === 431,
  );
  assert.throws(
    () =>
      new RtspReader({ maxHeadBytes: 64, maxBodyBytes: 10 }).push(
        Buffer.from('ANNOUNCE * RTSP/1.0\r\nCSeq: 1\r\nContent-Length: 11\r\n\r\n'),
      ),
    (e: unknown) => e instanceof RtspLimitError && e.limit === 'maxBodyBytes' && e.status === 413,
  );
  const [item] = new RtspReader({ maxHeadBytes: 64, maxBodyBytes: 10 }).push(
    Buffer.from('ANNOUNCE * RTSP/1.0\r\nCSeq: 1\r\nContent-Length: 10\r\n\r\n0123456789'),
  );
  assert.equal(item?.kind === 'request' && item.request.body.toString(), '0123456789');
});

test('rtsp reader: partial tells where the message being read started, so the caller can time it', () => {
  const r = new RtspReader(READER_LIMITS);
  // A function, not the getter: assertions would otherwise narrow it for good.
  const partial = (): PartialMessage | undefined => r.partial;
  const first = 'OPTIONS * RTSP/1.0\r\nCSeq: 1\r\n\r\n';
  assert.equal(partial(), undefined);
  r.push(Buffer.from('\r\n'));
  assert.equal(partial(), undefined, 'stray line ends start nothing');
  r.push(Buffer.from(first.slice(0, 5)));
  assert.deepEqual(partial(), { start: 2, bytes: 5 });
  r.push(Buffer.from(first.slice(5, 10)));
  assert.deepEqual(partial(), { start: 2, bytes: 10 }, 'the same message: the same start');
  // The rest of the first request and the beginning of the next in one read.
  assert.equal(r.push(Buffer.from(first.slice(10) + 'DESCR')).length, 1);
  assert.deepEqual(partial(), { start: 2 + first.length, bytes: 5 }, 'a new message: a new start');
  r.push(Buffer.from('IBE * RTSP/1.0\r\nCSeq: 2\r\nContent-Length: 4\r\n\r\nab'));
  assert.equal(partial()?.start, 2 + first.length, 'the body is part of the message');
  r.push(Buffer.from('cd'));
  assert.equal(partial(), undefined);
  r.push(Buffer.from([0x24, 0, 0, 10, 1, 2]));
  assert.equal(partial(), undefined, 'interleaved frames are not requests');
});

test('rtsp reader: random bytes only ever yield items or an RtspProtocolError', () => {
  let seed = 7;
  const rand = (): number => ((seed = (seed * 1103515245 + 12345) >>> 0) >>> 8) & 0xff;
  for (let n = 0; n < 500; n++) {
    const bytes = Buffer.from(Array.from({ length: 1 + (rand() % 64) }, rand));
    try {
      new RtspReader(READER_LIMITS).push(bytes);
    } catch (err) {
      assert.ok(err instanceof RtspProtocolError, String(err));
    }
  }
});

test('rtsp writer: response and request round-trip through the reader', () => {
  const res = writeResponse(
    200,
    [
      ['CSeq', 3],
      ['Session', undefined],
      ['Content-Type', 'application/sdp'],
    ],
    'v=0\r\n',
  );
  assert.equal(
    res.toString(),
    'RTSP/1.0 200 OK\r\nCSeq: 3\r\nContent-Type: application/sdp\r\nContent-Length: 5\r\n\r\nv=0\r\n',
  );
  const [item] = new RtspReader(READER_LIMITS).push(res);
  assert.ok(item?.kind === 'response' && item.response.body.toString() === 'v=0\r\n');
  const req = writeRequest('SETUP', 'rtsp://h/a/trackID=0', [
    ['CSeq', 4],
    ['Transport', 'RTP/AVP/TCP;interleaved=0-1'],
  ]);
  const [r2] = new RtspReader(READER_LIMITS).push(req);
  assert.ok(r2?.kind === 'request' && r2.request.headers.get('transport') === 'RTP/AVP/TCP;interleaved=0-1');
  assert.throws(() => writeResponse(200, [['X', 'a\r\nInjected: 1']]), TypeError);
});

test('rtsp writer: interleaved header (RFC 2326 §10.12)', () => {
  assert.deepEqual([...interleavedHeader(3, 0x1234)], [0x24, 3, 0x12, 0x34]);
  assert.throws(() => interleavedHeader(0, 70000), RangeError);
});
