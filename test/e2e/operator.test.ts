/**
 * The operator surface on the real server process with real clients: an ffmpeg publisher and
 * an ffmpeg viewer show up in `/metrics` (viewers, bytes, bitrate, keyframe interval, the
 * backend's latency) and as signed lifecycle events at a receiver, in order; on SIGTERM the
 * closing sessions' and stopping stream's events still reach the receiver before the exit.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { startStreamgate } from '../helpers/streamgate.js';
import { skipWithout } from '../helpers/tools.js';
import { ffmpegPublish, sleep, stopProcess } from '../helpers/clients.js';
import { startBackend } from '../helpers/backend.js';
import {
  SIGNATURE_HEADER,
  TIMESTAMP_HEADER,
  verifyEvents,
  type LifecycleEvent,
} from '../../src/events/sink.js';
import { sample } from '../unit/http/harness.js';

const skip = skipWithout(['ffmpeg']);
const SECRET = 'e2e-hook';

test(
  'operator e2e: metrics and signed events follow a real publisher and viewer through shutdown',
  { skip, timeout: 90_000 },
  async () => {
    const events: LifecycleEvent[] = [];
    const rejected: string[] = [];
    const receiver = createServer((req, res) => {
      let body = '';
      req.on('data', (c: Buffer) => (body += c.toString()));
      req.on('end', () => {
        const why = verifyEvents(
          SECRET,
          {
            timestamp: req.headers[TIMESTAMP_HEADER] as string | undefined,
            signature: req.headers[SIGNATURE_HEADER] as string | undefined,
          },
          body,
        );
        if (why === undefined) events.push(...(JSON.parse(body) as { events: LifecycleEvent[] }).events);
        else rejected.push(why);
        res.writeHead(why === undefined ? 204 : 401).end();
      });
    });
    receiver.listen(0, '127.0.0.1');
    await once(receiver, 'listening');
    const backend = await startBackend();
    const hook = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/hook`;
    const server = await startStreamgate(
      `events ${hook} secret=${SECRET};\ntemplate live { prefix live; input publish://; on_play ${backend.url}; }`,
    );
    const http = server.ports['http'] ?? 0;
    const publisher = ffmpegPublish(`rtmp://127.0.0.1:${server.ports['rtmp']}/live/cam1`);
    let viewer: ReturnType<typeof spawn> | undefined;
    try {
      const until = async (
        what: string,
        cond: () => boolean | Promise<boolean>,
        ms = 20_000,
      ): Promise<void> => {
        const end = Date.now() + ms;
        while (!(await cond())) {
          if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
          await sleep(200);
        }
      };
      await until('stream.started', () => events.some((e) => e.type === 'stream.started'));
      viewer = spawn(
        'ffmpeg',
        [
          '-hide_banner',
          '-loglevel',
          'error',
          '-i',
          `http://127.0.0.1:${http}/live/cam1/mpegts?token=good-viewer`,
          '-c',
          'copy',
          '-f',
          'null',
          '-',
        ],
        { stdio: 'ignore' },
      );
      const scrape = async (): Promise<string> => (await fetch(`http://127.0.0.1:${http}/metrics`)).text();
      let text = '';
      await until('viewer bytes in /metrics', async () => {
        text = await scrape();
        return (
          (sample(text, 'streamgate_stream_bytes_out_total', { stream: 'live/cam1', proto: 'tshttp' }) ?? 0) >
          50_000
        );
      });
      assert.equal(sample(text, 'streamgate_stream_viewers', { stream: 'live/cam1', proto: 'tshttp' }), 1);
      assert.equal(sample(text, 'streamgate_stream_publishers', { stream: 'live/cam1', proto: 'rtmp' }), 1);
      assert.equal(
        sample(text, 'streamgate_stream_input_state', { stream: 'live/cam1', state: 'publishing' }),
        1,
      );
      assert.ok((sample(text, 'streamgate_stream_bytes_in_total', { stream: 'live/cam1' }) ?? 0) > 50_000);
      // ffmpegPublish sends a keyframe every 25 frames at 25 fps.
      const gop = sample(text, 'streamgate_stream_keyframe_interval_seconds', { stream: 'live/cam1' }) ?? 0;
      assert.ok(Math.abs(gop - 1) < 0.1, `keyframe interval ${gop}`);
      assert.equal(
        sample(text, 'streamgate_auth_backend_request_duration_seconds_count', { backend: backend.url }),
        1,
      );
      assert.equal(sample(text, 'streamgate_auth_decisions_total', { kind: 'play', result: 'allow' }), 1);
      assert.equal(sample(text, 'streamgate_auth_decisions_total', { kind: 'publish', result: 'allow' }), 1);

      assert.equal(await server.stop(), 0);
      assert.deepEqual(rejected, []);
      const types = events.map((e) => `${e.type}:${String(e.data['kind'] ?? e.data['input'])}`);
      for (const want of [
        'stream.started:publish',
        'session.opened:publish',
        'session.opened:play',
        'session.closed:play',
        'session.closed:publish',
        'stream.stopped:publish',
      ]) {
        assert.ok(types.includes(want), `${want} in ${types.join(', ')}`);
      }
      const closedPlay = events.find((e) => e.type === 'session.closed' && e.data['kind'] === 'play');
      assert.equal(closedPlay?.data['reason'], 'server_shutdown');
      assert.ok(Number(closedPlay?.data['bytes']) > 50_000);
      const opened = events.findIndex((e) => e.type === 'session.opened' && e.data['kind'] === 'play');
      assert.ok(opened < events.indexOf(closedPlay as LifecycleEvent), 'opened before closed');
      assert.doesNotMatch(JSON.stringify(events), /good-viewer/, 'no raw token in events');
    } finally {
      await server.stop();
      await stopProcess(publisher);
      if (viewer) await stopProcess(viewer);
      receiver.closeAllConnections();
      receiver.close();
      await backend.close();
    }
  },
);
