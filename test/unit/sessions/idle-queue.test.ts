/** The idle deadline queue behind per-request session idle closes (rechecks.ts). */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { FakeClock } from '../../../src/clock.js';
import { IdleQueue, type IdleEntry } from '../../../src/sessions/idle-queue.js';

interface E extends IdleEntry {
  name: string;
}
const entry = (name: string): E => ({ name, idleSlot: -1 });

test('idle queue: entries come due in time order, each at its own time, with one timer', async () => {
  const clock = new FakeClock(0);
  const seen: [string, number][] = [];
  const q = new IdleQueue<E>(clock, (e, now) => seen.push([e.name, now]));
  const [a, b, c, d] = [entry('a'), entry('b'), entry('c'), entry('d')];
  q.push(c, 300);
  q.push(a, 100);
  q.push(d, 400);
  q.push(b, 200);
  q.remove(d);
  assert.equal(d.idleSlot, -1);
  q.push(a, 250); // moved later
  await clock.advance(199);
  assert.deepEqual(seen, []);
  await clock.advance(1);
  assert.deepEqual(seen, [['b', 200]]);
  await clock.advance(1000);
  assert.deepEqual(seen, [
    ['b', 200],
    ['a', 250],
    ['c', 300],
  ]);
  assert.equal(q.size, 0);
  q.close();
});

test('idle queue: an entry re-queued from its own callback comes back; close stops everything', async () => {
  const clock = new FakeClock(0);
  let fired = 0;
  const q: IdleQueue<E> = new IdleQueue<E>(clock, (e, now) => {
    fired++;
    if (fired < 3) q.push(e, now + 50);
  });
  q.push(entry('x'), 50);
  await clock.advance(500);
  assert.equal(fired, 3);
  q.push(entry('y'), 600);
  q.close();
  await clock.advance(500);
  assert.equal(fired, 3);
});

test('idle queue: any pushes and removals pop in deadline order (property)', async () => {
  await fc.assert(
    fc.asyncProperty(
      fc.array(fc.tuple(fc.integer({ min: 0, max: 1000 }), fc.boolean()), { minLength: 1, maxLength: 60 }),
      async (ops) => {
        const clock = new FakeClock(0);
        const popped: number[] = [];
        const due = new Map<E, number>();
        const q = new IdleQueue<E>(clock, (e, now) => {
          assert.ok((due.get(e) as number) <= now);
          popped.push(due.get(e) as number);
        });
        const live: E[] = [];
        ops.forEach(([at, drop], i) => {
          const e = entry(String(i));
          due.set(e, at + 1);
          q.push(e, at + 1);
          live.push(e);
          if (drop) q.remove(live.shift() as E);
        });
        const expected = live.map((e) => due.get(e) as number).sort((x, y) => x - y);
        await clock.advance(2000);
        assert.deepEqual(popped, expected);
        q.close();
      },
    ),
    { seed: 9, numRuns: 100 },
  );
});
