/**
 * The HTTP MPEG-TS play route end to end in-process: real HTTP on loopback against the real
 * session manager (with a scripted backend) and the stream's bus fed with synthetic frames.
 * An allowed viewer gets exactly the TS one muxer makes of the frames; a denied one gets a
 * refusal and not one media byte; a session the manager kills has its response cut off.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { IncomingMessage } from 'node:http';
import { createMpegtsAdapter } from '../../../../protocols/mpegts/index.js';
import { TsMuxer } from '../../../../src/media/mpegts/index.js';
import { denyD } from '../../sessions/helpers.js';
import { TRACKS, media, pidAt } from '../hls/synthetic.js';
import { get, isTs, open, refusal, startHttpCore } from '../http-harness.js';

const NAME = 'live/cam1';
const PATH = `/${NAME}/mpegts`;

/** Reads the endless body until at least `n` bytes arrived. */
function readAtLeast(res: IncomingMessage, n: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let length = 0;
  return new Promise((resolve, reject) => {
    const onData = (c: Buffer): void => {
      chunks.push(c);
      length += c.length;
      if (length < n) return;
      res.off('data', onData);
      res.pause();
      resolve(Buffer.concat(chunks));
    };
    res.on('data', onData);
    res.once('error', reject);
    res.once('end', () => reject(new Error(`body ended after ${length} bytes`)));
  });
}

test('http mpegts: an allowed viewer receives the stream as the TS bytes one muxer makes', async (t) => {
  const core = await startHttpCore(createMpegtsAdapter);
  t.after(() => core.stop());
  const bus = core.bus(NAME);
  bus.startSource(TRACKS);

  const res = await open(core.url(`${PATH}?token=good1`));
  t.after(() => res.destroy());
  assert.equal(res.statusCode, 200);
  assert.equal(res.headers['content-type'], 'video/mp2t');
  assert.equal(bus.viewers, 1, 'subscribed by the time the head arrives');

  const frames = media(3);
  for (const f of frames) bus.push(f);
  const reference = new TsMuxer(TRACKS);
  const expected = Buffer.concat(frames.map((f) => reference.mux(f)));
  const body = await readAtLeast(res, expected.length);
  assert.ok(isTs(body));
  assert.equal(pidAt(body, 0), 0, 'starts with the PAT');
  assert.ok(body.equals(expected), 'byte-exact with one TsMuxer over the same frames');

  const [session] = core.manager.list({ name: NAME });
  assert.equal(session?.proto, 'tshttp');
  assert.equal(session.bytes, expected.length);
  assert.equal(core.backend.calls.length, 1);
});

test('http mpegts: a viewer the backend denies gets 403 and not one media byte', async (t) => {
  const core = await startHttpCore(createMpegtsAdapter);
  t.after(() => core.stop());
  core.backend.answer = () => denyD();
  const bus = core.bus(NAME);
  bus.startSource(TRACKS);
  // A cached GOP: a viewer wrongly subscribed would be sent TS at once.
  for (const f of media(2)) bus.push(f);

  const r = await get(core.url(`${PATH}?token=bad`));
  assert.equal(r.status, 403);
  assert.match(refusal(r), /^403 /);
  assert.equal(core.backend.calls.length, 1);
  assert.equal(bus.listenerCount, 0, 'the egress never listened');
  assert.equal(bus.viewers, 0);
  assert.deepEqual(core.manager.list(), []);
});

test('http mpegts: a session kicked mid-play has its TS response cut off and lets go of the bus', async (t) => {
  const core = await startHttpCore(createMpegtsAdapter);
  t.after(() => core.stop());
  const bus = core.bus(NAME);
  bus.startSource(TRACKS);
  const res = await open(core.url(`${PATH}?token=good1`));
  assert.equal(res.statusCode, 200);
  for (const f of media(1)) bus.push(f);
  await readAtLeast(res, 188);

  const [session] = core.manager.list({ name: NAME });
  assert.ok(session);
  const closed = new Promise<void>((resolve) => res.once('close', resolve));
  res.on('error', () => {}); // the cut-off surfaces as "aborted"; the close is what we wait for
  res.resume();
  assert.equal(core.manager.kick(session.id), true);
  await closed;
  assert.equal(res.complete, false, 'the body was cut off, not finished');
  assert.equal(session.closed, true);
  assert.deepEqual(core.manager.list(), []);
  assert.equal(bus.viewers, 0);
  assert.equal(bus.listenerCount, 0);
});
