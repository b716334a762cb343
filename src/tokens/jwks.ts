/**
 * Where `jwt://?jwks=…` gets its public keys: a local file, or an http(s) JWKS endpoint fetched
 * with undici and cached. A verifier must not fetch per request (one slow identity provider
 * would stall every new session), so keys are cached for `ttlMs` and an unknown `kid` triggers
 * at most one refresh per `minRefreshMs` — the usual key-rotation story without letting forged
 * kids turn the origin into a request amplifier.
 */
import type { JsonWebKey } from 'node:crypto';
import { readFile } from 'node:fs/promises';

const DEFAULT_TTL_MS = 10 * 60_000;
const MIN_REFRESH_MS = 30_000;
const FETCH_TIMEOUT_MS = 3_000;
const MAX_JWKS_BYTES = 256 * 1024;

/** Extracts the keys of a JWKS document (`{"keys":[…]}`) or a single JWK. */
export function parseJwks(text: string): JsonWebKey[] {
  const doc = JSON.parse(text) as unknown;
  if (typeof doc !== 'object' || doc === null) throw new Error('JWKS is not a JSON object');
  const keys = (doc as { keys?: unknown }).keys;
  if (Array.isArray(keys)) {
    return keys.filter((k): k is JsonWebKey => typeof k === 'object' && k !== null && !Array.isArray(k));
  }
  if (typeof (doc as { kty?: unknown }).kty === 'string') return [doc as JsonWebKey];
  throw new Error('JWKS has no keys');
}

export function isJwksUrl(source: string): boolean {
  return /^https?:\/\//i.test(source);
}

export interface JwksSourceOptions {
  now?: () => number;
  ttlMs?: number;
  minRefreshMs?: number;
  /** Replaces the file or network read (tests). */
  load?: (source: string) => Promise<string>;
}

async function defaultLoad(source: string): Promise<string> {
  if (!isJwksUrl(source)) return readFile(source, 'utf8');
  // undici is loaded on the first network fetch: most servers never make one.
  const { request } = await import('undici');
  const res = await request(source, {
    method: 'GET',
    headers: { accept: 'application/json' },
    headersTimeout: FETCH_TIMEOUT_MS,
    bodyTimeout: FETCH_TIMEOUT_MS,
  });
  if (res.statusCode !== 200) {
    await res.body.dump();
    throw new Error(`JWKS endpoint answered ${res.statusCode}`);
  }
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of res.body) {
    const b = chunk as Buffer;
    size += b.length;
    if (size > MAX_JWKS_BYTES) {
      res.body.destroy();
      throw new Error('JWKS document too large');
    }
    chunks.push(b);
  }
  return Buffer.concat(chunks).toString('utf8');
}

/** A cached JWKS. `keys()` rejects only when nothing was ever loaded. */
export class JwksSource {
  private cached: JsonWebKey[] | undefined;
  private loadedAt = 0;
  private lastAttempt = -Infinity;
  private inflight: Promise<JsonWebKey[]> | undefined;
  private lastError: Error | undefined;
  private readonly now: () => number;
  private readonly ttlMs: number;
  private readonly minRefreshMs: number;
  private readonly load: (source: string) => Promise<string>;

  constructor(
    readonly source: string,
    opts: JwksSourceOptions = {},
  ) {
    this.now = opts.now ?? Date.now;
    this.ttlMs = opts.ttlMs ?? DEFAULT_TTL_MS;
    this.minRefreshMs = opts.minRefreshMs ?? MIN_REFRESH_MS;
    this.load = opts.load ?? defaultLoad;
  }

  /**
   * The current keys. `kid` names the key the token wants: when the cache lacks it, a refresh is
   * attempted (rate-limited), because the provider may have rotated keys since the last load.
   */
  async keys(kid?: string): Promise<JsonWebKey[]> {
    const now = this.now();
    const due = now - this.lastAttempt >= this.minRefreshMs;
    if (this.cached === undefined) {
      // Nothing loaded yet: retry at most once per minRefreshMs, failing fast in between.
      if (!due && this.inflight === undefined) throw this.lastError ?? new Error('JWKS not loaded');
      return this.refresh();
    }
    const stale = now - this.loadedAt >= this.ttlMs;
    const missingKid = kid !== undefined && !this.cached.some((k) => k['kid'] === kid);
    if ((stale || missingKid) && due) {
      try {
        return await this.refresh();
      } catch {
        // A failed refresh keeps serving the keys we have; the provider may be briefly down.
      }
    }
    return this.cached;
  }

  private refresh(): Promise<JsonWebKey[]> {
    if (this.inflight !== undefined) return this.inflight;
    this.lastAttempt = this.now();
    const p = this.load(this.source)
      .then((text) => {
        const keys = parseJwks(text);
        this.cached = keys;
        this.loadedAt = this.now();
        return keys;
      })
      .catch((err: unknown) => {
        this.lastError = err instanceof Error ? err : new Error(String(err));
        throw this.lastError;
      })
      .finally(() => {
        this.inflight = undefined;
      });
    this.inflight = p;
    return p;
  }
}
