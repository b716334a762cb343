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
  /** The entry's index in the heap, -1 when not queued; kept by the queue. */
  idleSlot: number;
}

export class IdleQueue<T extends IdleEntry> {
  private readonly items: T[] = [];
  /** Due times (epoch ms) beside `items`, slot for slot: a plain double array, no box per entry. */
  private readonly at: number[] = [];
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
    return this.items.length;
  }

  /** Queues `e` for `at` (epoch ms), or moves it there when it is queued already. */
  push(e: T, at: number): void {
    if (this.stopped) return;
    if (e.idleSlot >= 0) this.remove(e);
    const i = this.items.length;
    this.items.push(e);
    this.at.push(at);
    e.idleSlot = i;
    this.up(i);
    this.arm();
  }

  remove(e: T): void {
    const i = e.idleSlot;
    if (i < 0 || this.items[i] !== e) return;
    e.idleSlot = -1;
    const last = this.items.pop() as T;
    const lastAt = this.at.pop() as number;
    if (i < this.items.length) {
      this.place(last, lastAt, i);
      this.down(i);
      this.up(last.idleSlot);
    }
  }

  close(): void {
    this.stopped = true;
    if (this.timer !== undefined) this.clock.clearTimeout(this.timer);
    this.timer = undefined;
    for (const e of this.items) e.idleSlot = -1;
    this.items.length = 0;
    this.at.length = 0;
  }

  private arm(): void {
    const first = this.at[0];
    if (this.firing || first === undefined || first >= this.timerAt) return;
    if (this.timer !== undefined) this.clock.clearTimeout(this.timer);
    this.timerAt = first;
    this.timer = this.clock.setTimeout(() => this.fire(), first - this.clock.now());
  }

  private fire(): void {
    this.timer = undefined;
    this.timerAt = Infinity;
    const now = this.clock.now();
    this.firing = true;
    try {
      while (!this.stopped && this.items.length > 0 && (this.at[0] as number) <= now) {
        const e = this.items[0] as T;
        this.remove(e);
        this.due(e, now);
      }
    } finally {
      this.firing = false;
    }
    if (!this.stopped) this.arm();
  }

  private place(e: T, at: number, i: number): void {
    this.items[i] = e;
    this.at[i] = at;
    e.idleSlot = i;
  }

  private up(i: number): void {
    const e = this.items[i] as T;
    const at = this.at[i] as number;
    while (i > 0) {
      const p = (i - 1) >> 1;
      const pAt = this.at[p] as number;
      if (pAt <= at) break;
      this.place(this.items[p] as T, pAt, i);
      i = p;
    }
    this.place(e, at, i);
  }

  private down(i: number): void {
    const n = this.items.length;
    const e = this.items[i] as T;
    const at = this.at[i] as number;
    for (;;) {
      const l = 2 * i + 1;
      if (l >= n) break;
      const r = l + 1;
      const c = r < n && (this.at[r] as number) < (this.at[l] as number) ? r : l;
      const cAt = this.at[c] as number;
      if (cAt >= at) break;
      this.place(this.items[c] as T, cAt, i);
      i = c;
    }
    this.place(e, at, i);
  }
}
