import assert from 'node:assert/strict';
import { test } from 'node:test';
import { RecordPortPool, type RecordPair } from '../../../../protocols/rtsp/udp-record.js';

test('record ports: pairs come from the range, even RTP then RTCP; a full range or maxPairs gives none; close frees', async () => {
  // Four free ports at a random even base (other processes on this machine use ports too: retry).
  let base = 0;
  let pool: RecordPortPool | undefined;
  let a: RecordPair | undefined;
  let b: RecordPair | undefined;
  for (let i = 0; i < 20 && !(a && b); i++) {
    a?.close();
    base = 40000 + 2 * Math.floor(Math.random() * 5000);
    pool = new RecordPortPool('127.0.0.1', { min: base, max: base + 3 });
    a = await pool.allocate();
    b = a && (await pool.allocate());
  }
  assert.ok(pool && a && b, 'two pairs fit in four ports');
  assert.deepEqual(
    [a.rtpPort, a.rtcpPort, b.rtpPort, b.rtcpPort].sort((x, y) => x - y),
    [base, base + 1, base + 2, base + 3],
  );
  assert.equal(a.rtpPort % 2, 0);
  assert.equal(a.rtcpPort, a.rtpPort + 1);
  assert.equal(await pool.allocate(), undefined, 'the range is used up');
  assert.equal(pool.inUse, 2);
  a.close();
  a.close();
  assert.equal(pool.inUse, 1, 'close is idempotent');
  const c = await pool.allocate();
  assert.equal(c?.rtpPort, a.rtpPort, 'a freed pair is used again');
  b.close();
  c?.close();

  const capped = new RecordPortPool('127.0.0.1', undefined, 1);
  const only = await capped.allocate();
  assert.ok(only);
  assert.equal(await capped.allocate(), undefined, 'maxPairs bounds ephemeral pairs too');
  only.close();
  assert.throws(() => new RecordPortPool(undefined, { min: 80, max: 90 }), RangeError);
});

test('record ports: datagrams on either port reach onPacket, marked rtp or rtcp', async () => {
  const pool = new RecordPortPool('127.0.0.1', undefined);
  const pair = await pool.allocate();
  assert.ok(pair);
  const got: [boolean, string][] = [];
  pair.onPacket((rtcp, msg) => got.push([rtcp, msg.toString()]));
  pair.sendRtcp(Buffer.from('rtcp'), '127.0.0.1', pair.rtcpPort);
  pair.sendRtcp(Buffer.from('rtp'), '127.0.0.1', pair.rtpPort);
  for (let i = 0; i < 50 && got.length < 2; i++) await new Promise((r) => setTimeout(r, 10));
  assert.deepEqual(got.sort(), [
    [false, 'rtp'],
    [true, 'rtcp'],
  ]);
  pair.close();
});
