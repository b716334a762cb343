import assert from 'node:assert/strict';
import { test } from 'node:test';
import { RequestQueue } from '../../../../protocols/rtsp/request-queue.js';

/** A promise and the functions that settle it, for answers the test releases by hand. */
function deferred(): { promise: Promise<void>; resolve: () => void; reject: (err: unknown) => void } {
  let resolve: () => void = () => undefined;
  let reject: (err: unknown) => void = () => undefined;
  const promise = new Promise<void>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

const settle = (): Promise<void> => new Promise((r) => setImmediate(r));

test('request queue: synchronous answers go out in order at once', () => {
  const seen: string[] = [];
  const q = new RequestQueue<string>(
    (r) => {
      seen.push(r);
      return undefined;
    },
    () => assert.fail('nothing fails'),
    16,
  );
  for (const r of ['OPTIONS', 'GET_PARAMETER', 'TEARDOWN']) assert.equal(q.push(r), true);
  assert.deepEqual(seen, ['OPTIONS', 'GET_PARAMETER', 'TEARDOWN']);
  assert.equal(q.pending, 0);
});

test('request queue: an answer that waits holds every pipelined request behind it', async () => {
  const seen: string[] = [];
  const describe = deferred();
  const q = new RequestQueue<string>(
    (r) => {
      seen.push(r);
      return r === 'DESCRIBE' ? describe.promise : undefined;
    },
    () => assert.fail('nothing fails'),
    16,
  );
  // ffmpeg-style pipelining in one write: the decision on DESCRIBE comes first.
  q.push('DESCRIBE');
  q.push('SETUP');
  q.push('PLAY');
  assert.deepEqual(seen, ['DESCRIBE']);
  assert.equal(q.pending, 2);
  describe.resolve();
  await settle();
  assert.deepEqual(seen, ['DESCRIBE', 'SETUP', 'PLAY']);
});

test('request queue: stop() during a pending answer (a denial closed the connection) drops what waits', async () => {
  const seen: string[] = [];
  const describe = deferred();
  const q = new RequestQueue<string>(
    (r) => {
      seen.push(r);
      return r === 'DESCRIBE' ? describe.promise : undefined;
    },
    () => assert.fail('nothing fails'),
    16,
  );
  q.push('DESCRIBE');
  q.push('SETUP');
  q.push('PLAY');
  q.stop();
  describe.resolve();
  await settle();
  q.push('PLAY');
  assert.deepEqual(seen, ['DESCRIBE'], 'nothing after the denied DESCRIBE is handled');
});

test('request queue: a throw or a rejection goes to `failed`, never unhandled, and the queue carries on', async () => {
  const failures: [string, string][] = [];
  const q = new RequestQueue<string>(
    (r) => {
      if (r === 'sync') throw new TypeError('sync bug');
      if (r === 'async') return Promise.reject(new Error('async bug'));
      return undefined;
    },
    (r, err) => failures.push([r, (err as Error).message]),
    16,
  );
  q.push('sync');
  q.push('async');
  q.push('after');
  await settle();
  assert.deepEqual(failures, [
    ['sync', 'sync bug'],
    ['async', 'async bug'],
  ]);
  assert.equal(q.pending, 0, "'after' was handled once the rejection was reported");
});

test('request queue: more than `limit` waiting requests is refused', () => {
  const q = new RequestQueue<number>(
    () => new Promise<void>(() => undefined),
    () => undefined,
    2,
  );
  assert.equal(q.push(1), true, 'handled, pending forever');
  assert.equal(q.push(2), true);
  assert.equal(q.push(3), true);
  assert.equal(q.push(4), false);
  assert.equal(q.pending, 2);
});
