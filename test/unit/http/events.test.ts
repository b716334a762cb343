/**
 * Lifecycle events: a real receiver on loopback gets signed JSON batches of every event type,
 * in order per session, never with a raw token; the signature and replay window hold; a
 * receiver that fails is retried with back-off; while it is down the queue is bounded and
 * what is dropped is counted; the `events` directive is validated.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { parseConfig } from '../../../src/config/parse.js';
import {
  EventSink,
  EVENT_TYPES,
  SIGNATURE_HEADER,
  signBatch,
  TIMESTAMP_HEADER,
  verifyEvents,
  type LifecycleEvent,
} from '../../../src/events/sink.js';
import type { Sessions } from '../../../src/sessions/manager.js';
import type { ClientRequest } from '../../../src/sessions/types.js';
import { captureLog } from '../sessions/helpers.js';
import { sample, startRunning } from './harness.js';

const SECRET = 'hook-secret';

interface Receiver {
  url: string;
  events: LifecycleEvent[];
  rejected: string[];
  status: number;
  close(): void;
}

async function startReceiver(): Promise<Receiver> {
  const r: Receiver = { url: '', events: [], rejected: [], status: 200, close: () => undefined };
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8');
      const why = verifyEvents(
        SECRET,
        {
          timestamp: req.headers[TIMESTAMP_HEADER] as string | undefined,
          signature: req.headers[SIGNATURE_HEADER] as string | undefined,
        },
        body,
      );
      if (why !== undefined) r.rejected.push(why);
      else if (r.status === 200) r.events.push(...(JSON.parse(body) as { events: LifecycleEvent[] }).events);
      res.writeHead(why !== undefined ? 401 : r.status).end();
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  r.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`;
  r.close = () => {
    server.closeAllConnections();
    server.close();
  };
  return r;
}

function req(name: string, token: string, kind: ClientRequest['kind'] = 'play'): ClientRequest {
  return {
    kind,
    proto: 'rtmp',
    name,
    ip: '127.0.0.1',
    token,
    qs: `token=${token}`,
    query: new URLSearchParams({ token }),
  };
}

async function until(what: string, cond: () => boolean, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

test('every event type reaches a receiver, signed, in order per session, without raw tokens', async (t) => {
  const rx = await startReceiver();
  t.after(() => rx.close());
  const s = await startRunning(
    t,
    `events ${rx.url} secret=${SECRET};\nstream demo { input publish://; on_play true; }\ntemplate live { prefix live; input publish://; on_play securetoken://k3y; }`,
  );
  const sessions = s.server.core.sessions as Sessions;
  const stream = s.server.core.registry.resolve('demo');
  assert.ok(stream);
  const pub = await sessions.open(req('demo', 'pubtoken-secret', 'publish'));
  assert.ok(pub.allow);
  const publisher = stream.claimPublisher();
  assert.ok(publisher);
  const viewer = await sessions.open(req('demo', 'viewtoken-secret'));
  assert.ok(viewer.allow);
  viewer.session.addBytes(4242);
  const denied = await sessions.open(req('live/x', 'denytoken-secret'));
  assert.ok(!denied.allow);
  await until('stream.started', () => rx.events.some((e) => e.type === 'stream.started'));
  viewer.session.close('client_closed');
  publisher.release();
  pub.session.close('publish_ended');
  await until('stream.stopped', () => rx.events.some((e) => e.type === 'stream.stopped'));

  assert.deepEqual(rx.rejected, []);
  assert.deepEqual([...new Set(rx.events.map((e) => e.type))].sort(), [...EVENT_TYPES].sort());
  const ofViewer = rx.events.filter((e) => e.data['session_id'] === viewer.session.id);
  assert.deepEqual(
    ofViewer.map((e) => e.type),
    ['session.opened', 'session.closed'],
  );
  const closed = ofViewer[1]?.data ?? {};
  assert.equal(closed['bytes'], 4242);
  assert.equal(closed['reason'], 'client_closed');
  assert.equal(typeof closed['duration_ms'], 'number');
  assert.ok('user_id' in closed);
  const deniedEvent = rx.events.find((e) => e.type === 'session.denied');
  assert.equal(deniedEvent?.data['reason'], 'backend_denied');
  assert.equal(deniedEvent?.data['name'], 'live/x');
  assert.equal(rx.events.find((e) => e.type === 'stream.started')?.data['name'], 'demo');
  assert.equal(new Set(rx.events.map((e) => e.id)).size, rx.events.length, 'ids are unique');
  const wire = JSON.stringify(rx.events);
  assert.doesNotMatch(wire, /-secret/, 'no raw token in any event');
  assert.match(wire, /token_hash/);
  const metrics = (await s.call('GET', '/metrics')).text;
  assert.equal(sample(metrics, 'streamgate_events_sent_total'), rx.events.length);
  assert.equal(sample(metrics, 'streamgate_events_dropped_total'), 0);
  assert.equal(sample(metrics, 'streamgate_events_queued'), 0);
  assert.equal(sample(metrics, 'streamgate_events_failed_posts_total'), 0);
});

test('verifyEvents: wrong secret, altered body and stale or future timestamps are refused', () => {
  const body = '{"events":[]}';
  const now = 1_700_000_000;
  const sig = signBatch(SECRET, now, body);
  const h = { timestamp: String(now), signature: sig };
  assert.equal(verifyEvents(SECRET, h, body, now), undefined);
  assert.equal(verifyEvents(SECRET, h, body, now + 299), undefined);
  assert.equal(verifyEvents('other', h, body, now), 'bad signature');
  assert.equal(verifyEvents(SECRET, h, '{"events":[{}]}', now), 'bad signature');
  assert.equal(verifyEvents(SECRET, h, body, now + 301), 'timestamp outside the replay window');
  assert.equal(verifyEvents(SECRET, h, body, now - 301), 'timestamp outside the replay window');
  assert.equal(
    verifyEvents(SECRET, { timestamp: undefined, signature: sig }, body, now),
    'missing timestamp',
  );
  // The timestamp is signed: moving it forward to pass the window breaks the signature.
  assert.equal(
    verifyEvents(SECRET, { timestamp: String(now + 1000), signature: sig }, body, now + 1000),
    'bad signature',
  );
});

test('a failing receiver is retried with back-off, the same batch first, re-signed each time', async () => {
  const posts: { body: string; ts: string; at: number }[] = [];
  let fail = 2;
  const { log } = captureLog();
  const sink = new EventSink(
    { url: 'http://receiver.test/', secret: SECRET, maxQueue: 100, maxBatch: 2 },
    {
      log,
      post: (_url, init) => {
        posts.push({ body: init.body, ts: init.headers[TIMESTAMP_HEADER] ?? '', at: Date.now() });
        if (fail > 0) {
          fail--;
          return Promise.resolve(503);
        }
        return Promise.resolve(200);
      },
    },
  );
  for (let i = 0; i < 5; i++) sink.emit('session.opened', { session_id: `s${i}` });
  await until('delivery', () => sink.idle, 10_000);
  const ids = posts.map((p) =>
    (JSON.parse(p.body) as { events: LifecycleEvent[] }).events.map((e) => e.data['session_id']),
  );
  assert.deepEqual(ids, [['s0', 's1'], ['s0', 's1'], ['s0', 's1'], ['s2', 's3'], ['s4']]);
  // 1 s, then 2 s: exponential.
  const gap1 = (posts[1]?.at ?? 0) - (posts[0]?.at ?? 0);
  const gap2 = (posts[2]?.at ?? 0) - (posts[1]?.at ?? 0);
  assert.ok(gap1 >= 900 && gap2 >= 1800, `back-off ${gap1} ms then ${gap2} ms`);
  assert.notEqual(posts[0]?.ts, posts[2]?.ts, 'a retry carries a fresh timestamp (and signature)');
  assert.deepEqual(sink.stats, { queued: 0, sent: 5, dropped: 0, failedPosts: 2 });
  sink.stop();
});

test('while the receiver is down the queue is bounded; the oldest are dropped and counted', async () => {
  const { log } = captureLog();
  const sink = new EventSink(
    { url: 'http://receiver.test/', secret: SECRET, maxQueue: 3, maxBatch: 10 },
    { log, post: () => new Promise<number>(() => undefined) },
  );
  sink.emit('session.opened', { n: 0 });
  await new Promise((r) => setTimeout(r, 10)); // the first batch is now in flight (and hangs)
  for (let i = 1; i <= 6; i++) sink.emit('session.opened', { n: i });
  assert.deepEqual(sink.stats, { queued: 3, sent: 0, dropped: 3, failedPosts: 0 });
  sink.stop();
  assert.equal(sink.stats.dropped, 7, 'what was queued or in flight at stop is counted too');
});

test('the events directive: receiver URL, secret required, options checked', () => {
  const parse = (line: string) => parseConfig(`${line}\n`, 'e.conf');
  const ok = parse('events https://hooks.example.com/sg secret=s3 max_queue=50 max_batch=5;');
  assert.ok('config' in ok);
  assert.deepEqual(ok.config.events, {
    url: 'https://hooks.example.com/sg',
    secret: 's3',
    maxQueue: 50,
    maxBatch: 5,
  });
  for (const bad of [
    'events https://h/x;',
    'events ftp://h/x secret=s;',
    'events https://h/x secret=s max_queue=0;',
    'events https://h/x secret=s color=red;',
  ]) {
    assert.ok(!('config' in parse(bad)), bad);
  }
});
