/**
 * One timer for every per-request session's idle check (AUTH-SPEC §3.5): an indexed binary
 * min-heap of sessions ordered by `idleAt`, and one clock timer armed for the earliest.
 *
 * Why not a timer per session: a Node timer and its closure cost about 200 bytes and an
 * allocation per session, and a server may hold 100 000 HLS sessions
 * (bench/session-memory.bench.ts). Here a session costs one array slot, and its slot index
 * lives on the session so that a close removes it at once (no closed session lingers until
 * its deadline).
 */
import type { Clock, TimerHandle } from '../clock.js';

export interface IdleEntry {
  /** When the entry is due (epoch ms); set by `push`. */
  idleAt: number;
  /** The entry's index in the heap, -1 when not queued; kept by the queue. */
  idleSlot: number;
}

export class IdleQueue<T extends IdleEntry> {
  private readonly heap: T[] = [];
  private timer: TimerHandle | undefined;
  /** The due time the timer is armed for. */
  private timerAt = Infinity;
  private stopped = false;
  /** While due entries run: they may re-queue themselves; the timer is armed once, after. */
  private firing = false;

  /** `due` runs for each entry whose time has come, already removed from the queue. */
  constructor(
    private readonly clock: Clock,
    private readonly due: (entry: T, now: number) => void,
  ) {}

  get size(): number {
    return this.heap.length;
  }

  /** Queues `e` for `at`, or moves it there when it is queued already. */
  push(e: T, at: number): void {
    if (this.stopped) return;
    if (e.idleSlot >= 0) this.remove(e);
    e.idleAt = at;
    e.idleSlot = this.heap.length;
    this.heap.push(e);
    this.up(e.idleSlot);
    this.arm();
  }

  remove(e: T): void {
    const i = e.idleSlot;
    if (i < 0 || this.heap[i] !== e) return;
    e.idleSlot = -1;
    const last = this.heap.pop() as T;
    if (i < this.heap.length) {
      this.place(last, i);
      this.down(i);
      this.up(last.idleSlot);
    }
  }

  close(): void {
    this.stopped = true;
    if (this.timer !== undefined) this.clock.clearTimeout(this.timer);
    this.timer = undefined;
    for (const e of this.heap) e.idleSlot = -1;
    this.heap.length = 0;
  }

  private arm(): void {
    const first = this.heap[0];
    if (this.firing || first === undefined || first.idleAt >= this.timerAt) return;
    if (this.timer !== undefined) this.clock.clearTimeout(this.timer);
    this.timerAt = first.idleAt;
    this.timer = this.clock.setTimeout(() => this.fire(), first.idleAt - this.clock.now());
  }

  private fire(): void {
    this.timer = undefined;
    this.timerAt = Infinity;
    const now = this.clock.now();
    this.firing = true;
    try {
      for (let e = this.heap[0]; e !== undefined && e.idleAt <= now && !this.stopped; e = this.heap[0]) {
        this.remove(e);
        this.due(e, now);
      }
    } finally {
      this.firing = false;
    }
    if (!this.stopped) this.arm();
  }

  private place(e: T, i: number): void {
    this.heap[i] = e;
    e.idleSlot = i;
  }

  private up(i: number): void {
    const h = this.heap;
    const e = h[i] as T;
    while (i > 0) {
      const p = (i - 1) >> 1;
      const parent = h[p] as T;
      if (parent.idleAt <= e.idleAt) break;
      this.place(parent, i);
      i = p;
    }
    this.place(e, i);
  }

  private down(i: number): void {
    const h = this.heap;
    const n = h.length;
    const e = h[i] as T;
    for (;;) {
      const l = 2 * i + 1;
      if (l >= n) break;
      const r = l + 1;
      const c = r < n && (h[r] as T).idleAt < (h[l] as T).idleAt ? r : l;
      const child = h[c] as T;
      if (child.idleAt >= e.idleAt) break;
      this.place(child, i);
      i = c;
    }
    this.place(e, i);
  }
}
