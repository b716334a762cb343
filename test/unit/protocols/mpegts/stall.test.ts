/**
 * An HTTP MPEG-TS player that stops reading: once its send queue has stayed over
 * viewer_send_queue_bytes for viewer_stall_timeout, the egress drops it and the adapter closes
 * its response and session, while a player that reads keeps receiving.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { IncomingMessage } from 'node:http';
import { createMpegtsAdapter } from '../../../../protocols/mpegts/index.js';
import { limitHits } from '../../../../src/core/limits.js';
import type { Frame } from '../../../../src/media/types.js';
import { TRACKS } from '../hls/synthetic.js';
import { open, startHttpCore } from '../http-harness.js';

const NAME = 'live/cam1';

/** A 25 fps video frame of about 100 KB, a keyframe every 25. */
function bigFrame(i: number): Frame {
  const nal = Buffer.alloc(100_000, i & 0xff);
  nal[0] = i % 25 === 0 ? 0x65 : 0x41;
  const len = Buffer.alloc(4);
  len.writeUInt32BE(nal.length);
  const dts = i * 3600;
  return { kind: 'video', dts, pts: dts, keyframe: i % 25 === 0, data: Buffer.concat([len, nal]) };
}

test('http mpegts: a player that stops reading is closed after viewer_stall_timeout; a reading one goes on', async (t) => {
  const core = await startHttpCore(
    createMpegtsAdapter,
    'limits { viewer_send_queue_bytes 65536; viewer_stall_timeout 0.3; }',
  );
  t.after(() => core.stop());
  const bus = core.bus(NAME);
  bus.startSource(TRACKS);
  const stallsBefore = limitHits().get('viewer_stall_timeout') ?? 0;

  const stuck = await open(core.url(`/${NAME}/mpegts?token=stuck`));
  t.after(() => stuck.destroy());
  // Never read: the kernel buffers fill, then the server's send queue grows. (Not reading,
  // this client would not even notice the close; the server's side is what is checked.)
  stuck.pause();
  const stuckId = core.manager.list({ name: NAME })[0]?.id;
  const stuckOpen = (): boolean => core.manager.list({ name: NAME }).some((s) => s.id === stuckId);

  const reader: IncomingMessage = await open(core.url(`/${NAME}/mpegts?token=reader`));
  t.after(() => reader.destroy());
  let read = 0;
  reader.on('data', (c: Buffer) => (read += c.length));
  assert.equal(core.manager.list({ name: NAME }).length, 2);

  let i = 0;
  const started = Date.now();
  // One frame per tick, so what the socket takes leaves the send queue before the next frame
  // and only a player that really stopped reading is seen over the cap.
  while (stuckOpen() && Date.now() - started < 10_000) {
    bus.push(bigFrame(i++));
    await new Promise((r) => setTimeout(r, 2));
  }
  assert.ok(!stuckOpen(), 'the stalled player was cut off and its session closed');
  assert.ok(Date.now() - started >= 300, 'not before viewer_stall_timeout');
  assert.equal(limitHits().get('viewer_stall_timeout'), stallsBefore + 1);
  assert.equal(core.manager.list({ name: NAME }).length, 1, 'the reader is still there');
  assert.equal(bus.viewers, 1);

  const before = read;
  for (let k = 0; k < 25; k++) bus.push(bigFrame(i++));
  await new Promise((r) => setTimeout(r, 200));
  assert.ok(read > before, 'the reading player still receives');
});
