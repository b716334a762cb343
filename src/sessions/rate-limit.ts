/**
 * A token bucket per client address on new-session backend calls (`new_sessions_per_ip_burst`,
 * `new_sessions_per_ip_per_second`). Every distinct bad token is a new identity and so a
 * backend call; without a budget one client can make the backend answer as fast as it can
 * send requests. Admission takes a token only when it is about to call the backend: cached
 * answers, reuse of a granted HLS identity and single-flight joins cost nothing.
 *
 * The map of buckets is bounded two ways: a bucket that has refilled to full says nothing a
 * missing bucket would not, so `sweep` drops it; and at `MAX_TRACKED_ADDRESSES` the least
 * recently used bucket makes room. Evicting resets that address's budget, which only matters
 * to a client already spread over that many addresses — each of which has its own burst.
 *
 * IPv6 clients are bucketed per /64: one subscriber gets a whole /64, so a per-address
 * bucket would give it 2^64 budgets.
 */
import { isIP } from 'node:net';

/**
 * Addresses with a bucket at once. A bucket costs about 150 bytes (its key, the object, the
 * Map slot), so this caps the map near 8 MiB; a bucket refills within burst / rate seconds
 * (5 s by default), so this many addresses would all have to be asking within that time.
 */
export const MAX_TRACKED_ADDRESSES = 50_000;

export interface RateParams {
  /** Bucket size: calls an address may make at once. */
  burst: number;
  /** Refill: sustained calls per second. */
  perSecond: number;
}

interface Bucket {
  tokens: number;
  /** Epoch ms `tokens` was computed at. */
  at: number;
}

export class IpRateLimiter {
  /** In least-recently-used order: `take` moves a bucket to the end. */
  private readonly buckets = new Map<string, Bucket>();

  constructor(
    private readonly params: () => RateParams,
    private readonly maxAddresses = MAX_TRACKED_ADDRESSES,
  ) {}

  /**
   * Spends one call of `ip`'s budget. Returns 0 when it was there to spend, else the
   * milliseconds until it will be (nothing is spent then).
   */
  take(ip: string, now: number): number {
    const { burst, perSecond } = this.params();
    const key = bucketKey(ip);
    const b = this.buckets.get(key);
    let tokens = burst;
    if (b !== undefined) {
      tokens = refilled(b, now, burst, perSecond);
      this.buckets.delete(key);
    } else if (this.buckets.size >= this.maxAddresses) {
      const oldest = this.buckets.keys().next();
      if (oldest.done !== true) this.buckets.delete(oldest.value);
    }
    if (tokens < 1) {
      this.buckets.set(key, { tokens, at: now });
      return Math.ceil(((1 - tokens) / perSecond) * 1000);
    }
    this.buckets.set(key, { tokens: tokens - 1, at: now });
    return 0;
  }

  /** Drops buckets that have refilled (an idle address); returns how many. */
  sweep(now: number): number {
    const { burst, perSecond } = this.params();
    let n = 0;
    for (const [key, b] of this.buckets) {
      if (refilled(b, now, burst, perSecond) >= burst) {
        this.buckets.delete(key);
        n++;
      }
    }
    return n;
  }

  /** Addresses (IPv6: /64 prefixes) with a bucket now. */
  get size(): number {
    return this.buckets.size;
  }
}

function refilled(b: Bucket, now: number, burst: number, perSecond: number): number {
  return Math.min(burst, b.tokens + (Math.max(0, now - b.at) / 1000) * perSecond);
}

/** The address a bucket is kept for: IPv4 as is, IPv6 as its /64 prefix. */
export function bucketKey(ip: string): string {
  // Every new session passes here; an address without a colon is IPv4 and is its own key.
  if (!ip.includes(':')) return ip;
  const addr = ip.split('%')[0] ?? ip;
  if (isIP(addr) !== 6) return ip;
  const [head = '', tail] = addr.split('::');
  const groups = (s: string): string[] =>
    s === '' ? [] : s.split(':').flatMap((g) => (g.includes('.') ? ['0', '0'] : [g]));
  const h = groups(head);
  const t = tail === undefined ? [] : groups(tail);
  const all = [...h, ...new Array<string>(Math.max(0, 8 - h.length - t.length)).fill('0'), ...t];
  return (
    all
      .slice(0, 4)
      .map((g) => parseInt(g, 16).toString(16))
      .join(':') + '::/64'
  );
}
