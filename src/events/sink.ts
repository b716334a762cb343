/**
 * Lifecycle events to an operator's receiver (`events URL secret=S;`, README "Events"): a
 * bounded FIFO of JSON events posted in batches, one POST at a time, so a receiver sees
 * every session's events in the order they happened. A failed POST is retried with
 * exponential back-off (the same batch, re-signed with a fresh timestamp); while the receiver
 * is down the queue fills up to `max_queue` and then the oldest events are dropped and counted.
 *
 * Each POST carries `X-Streamgate-Timestamp` (Unix seconds) and `X-Streamgate-Signature:
 * v1=<hex HMAC-SHA256(secret, timestamp + "." + body)>`; `verifyEvents` is the receiver's side,
 * refusing a signature that does not match or a timestamp outside the replay window. Every
 * event has a unique `id` so a receiver can drop a batch it already stored (a retry after a
 * lost answer).
 */
import { createHmac, randomUUID, timingSafeEqual } from 'node:crypto';
import type { Logger } from 'pino';
import type { EventsConfig } from '../config/types.js';

export type EventType =
  'session.opened' | 'session.denied' | 'session.closed' | 'stream.started' | 'stream.stopped';

export const EVENT_TYPES: readonly EventType[] = [
  'session.opened',
  'session.denied',
  'session.closed',
  'stream.started',
  'stream.stopped',
];

export interface LifecycleEvent {
  id: string;
  type: EventType;
  /** Epoch milliseconds. */
  time: number;
  data: Record<string, unknown>;
}

export const TIMESTAMP_HEADER = 'x-streamgate-timestamp';
export const SIGNATURE_HEADER = 'x-streamgate-signature';
/** Receivers refuse a batch whose timestamp is further than this from their clock. */
export const REPLAY_WINDOW_SEC = 300;

/** Back-off after a failed POST: 1 s doubling to a minute. */
const RETRY_BASE_MS = 1000;
const RETRY_MAX_MS = 60_000;
/** A receiver that has not answered in this long has failed this attempt. */
const POST_TIMEOUT_MS = 5000;

export function signBatch(secret: string, timestampSec: number, body: string): string {
  return 'v1=' + createHmac('sha256', secret).update(`${timestampSec}.${body}`).digest('hex');
}

/**
 * The receiver's check: the signature matches the body and the timestamp is within
 * `windowSec` of `nowSec`. Returns why not, or undefined when the batch is genuine.
 */
export function verifyEvents(
  secret: string,
  headers: { timestamp: string | undefined; signature: string | undefined },
  body: string,
  nowSec: number = Math.floor(Date.now() / 1000),
  windowSec = REPLAY_WINDOW_SEC,
): string | undefined {
  const ts = Number(headers.timestamp);
  if (headers.timestamp === undefined || !/^\d+$/.test(headers.timestamp)) return 'missing timestamp';
  if (Math.abs(nowSec - ts) > windowSec) return 'timestamp outside the replay window';
  const want = Buffer.from(signBatch(secret, ts, body));
  const got = Buffer.from(headers.signature ?? '');
  if (got.length !== want.length || !timingSafeEqual(got, want)) return 'bad signature';
  return undefined;
}

export interface EventSinkStats {
  queued: number;
  sent: number;
  dropped: number;
  failedPosts: number;
}

export interface EventSinkDeps {
  log: Logger;
  /** Tests pass a fake; the default is the global fetch. */
  post?: (url: string, init: { headers: Record<string, string>; body: string }) => Promise<number>;
  now?: () => number;
}

async function defaultPost(
  url: string,
  init: { headers: Record<string, string>; body: string },
): Promise<number> {
  const res = await fetch(url, {
    method: 'POST',
    headers: init.headers,
    body: init.body,
    signal: AbortSignal.timeout(POST_TIMEOUT_MS),
  });
  await res.arrayBuffer().catch(() => undefined);
  return res.status;
}

export class EventSink {
  private readonly queue: LifecycleEvent[] = [];
  private inflight: LifecycleEvent[] | undefined;
  private failures = 0;
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;
  private readonly post: NonNullable<EventSinkDeps['post']>;
  private readonly now: () => number;
  readonly stats: EventSinkStats = { queued: 0, sent: 0, dropped: 0, failedPosts: 0 };

  constructor(
    private config: EventsConfig,
    private readonly deps: EventSinkDeps,
  ) {
    this.post = deps.post ?? defaultPost;
    this.now = deps.now ?? Date.now;
  }

  /** A reloaded config's receiver and bounds apply from the next batch on. */
  reconfigure(config: EventsConfig): void {
    this.config = config;
  }

  emit(type: EventType, data: Record<string, unknown>): void {
    if (this.stopped) return;
    this.queue.push({ id: randomUUID(), type, time: this.now(), data });
    while (this.queue.length > this.config.maxQueue) {
      this.queue.shift();
      this.stats.dropped++;
    }
    this.stats.queued = this.queue.length;
    if (this.inflight === undefined && this.timer === undefined) {
      this.timer = setTimeout(() => this.flush(), 0);
    }
  }

  private flush(): void {
    this.timer = undefined;
    if (this.inflight !== undefined || this.queue.length === 0) return;
    this.inflight = this.queue.splice(0, this.config.maxBatch);
    this.stats.queued = this.queue.length;
    void this.send(this.inflight);
  }

  private async send(batch: LifecycleEvent[]): Promise<void> {
    const body = JSON.stringify({ events: batch });
    const ts = Math.floor(this.now() / 1000);
    let ok = false;
    let why = '';
    try {
      const status = await this.post(this.config.url, {
        headers: {
          'content-type': 'application/json',
          [TIMESTAMP_HEADER]: String(ts),
          [SIGNATURE_HEADER]: signBatch(this.config.secret, ts, body),
        },
        body,
      });
      ok = status >= 200 && status < 300;
      why = `status ${status}`;
    } catch (err) {
      why = err instanceof Error ? err.name : 'error';
    }
    if (ok) {
      this.stats.sent += batch.length;
      this.failures = 0;
      this.inflight = undefined;
      if (!this.stopped && this.queue.length > 0) this.timer = setTimeout(() => this.flush(), 0);
      return;
    }
    this.stats.failedPosts++;
    this.failures++;
    const delay = Math.min(RETRY_MAX_MS, RETRY_BASE_MS * 2 ** Math.min(this.failures - 1, 16));
    if (this.failures === 1 || this.failures % 10 === 0) {
      this.deps.log.warn(
        {
          event: 'events_post_failed',
          why,
          failures: this.failures,
          retry_ms: delay,
          queued: this.queue.length,
        },
        'event receiver did not accept a batch; retrying',
      );
    }
    if (this.stopped) {
      this.inflight = undefined;
      return;
    }
    // The same batch again, ahead of everything queued since: order per session holds.
    this.timer = setTimeout(() => {
      this.timer = undefined;
      void this.send(batch);
    }, delay);
    this.timer.unref();
  }

  /** Whether every emitted event has been accepted by the receiver. */
  get idle(): boolean {
    return this.inflight === undefined && this.queue.length === 0;
  }

  /** Waits until the receiver has everything or `ms` passed (shutdown: the last closes get out). */
  async drain(ms: number): Promise<void> {
    const until = Date.now() + ms;
    if (this.timer !== undefined && this.inflight === undefined) {
      clearTimeout(this.timer);
      this.flush();
    }
    while (!this.idle && Date.now() < until && this.failures === 0) {
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  /** Stops retrying; what is still queued is given up (and counted as dropped). */
  stop(): void {
    this.stopped = true;
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
    this.stats.dropped += this.queue.length + (this.inflight?.length ?? 0);
    this.queue.length = 0;
    this.stats.queued = 0;
  }
}
