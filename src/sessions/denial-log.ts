/**
 * Denial log lines, aggregated: a client that is refused over and over (a flood of bad
 * tokens, a player retrying a banned token) would otherwise write one line per request.
 *
 * The first denial of a (reason, backend detail, address) is logged at once in full as
 * `session_denied`. Further ones are counted, and every `DENIAL_LOG_INTERVAL_MS` one
 * `session_denied_repeated` line per key gives the count since the last line. A key with no
 * denial for a whole interval is forgotten, so its next denial is logged in full again.
 *
 * The detail is part of the key so that a backend's different words (`jwt_expired`,
 * `NO_PRIVILEGE`, …) each get their full first line. At `MAX_TRACKED_KEYS` new keys are
 * counted under their reason with `ip: "*"` and no full line: a flood from many addresses
 * gets one line per reason per interval, and memory stays bounded.
 */
import type { Logger } from 'pino';
import type { Clock, TimerHandle } from '../clock.js';
import type { DenyReason } from '../core/reasons.js';

export const DENIAL_LOG_INTERVAL_MS = 10_000;

/** Keys tracked at once; a key is about 200 bytes, so this stays near 2 MiB. */
export const MAX_TRACKED_KEYS = 10_000;

/** What a full `session_denied` line carries. */
export interface DenialFields {
  kind: string;
  name: string;
  proto: string;
  ip: string;
  idKey: string | undefined;
  token_hash: string | undefined;
  reason: DenyReason;
  detail?: string;
}

interface Repeats {
  reason: DenyReason;
  detail: string | undefined;
  ip: string;
  /** Denials since the last line about this key. */
  count: number;
}

export class DenialLog {
  private readonly recent = new Map<string, Repeats>();
  private timer: TimerHandle | undefined;

  constructor(
    private readonly clock: Clock,
    private readonly log: Logger,
  ) {}

  denied(f: DenialFields): void {
    const key = `${f.reason}\n${f.detail ?? ''}\n${f.ip}`;
    const seen = this.recent.get(key);
    if (seen !== undefined) {
      seen.count++;
      return;
    }
    if (this.recent.size >= MAX_TRACKED_KEYS) {
      const overflowKey = `${f.reason}\n\n*`;
      const overflow = this.recent.get(overflowKey);
      if (overflow !== undefined) overflow.count++;
      else this.recent.set(overflowKey, { reason: f.reason, detail: undefined, ip: '*', count: 1 });
      return;
    }
    this.recent.set(key, { reason: f.reason, detail: f.detail, ip: f.ip, count: 0 });
    this.log.info(
      {
        event: 'session_denied',
        kind: f.kind,
        name: f.name,
        proto: f.proto,
        ip: f.ip,
        idKey: f.idKey,
        token_hash: f.token_hash,
        reason: f.reason,
        ...(f.detail !== undefined ? { detail: f.detail } : {}),
      },
      'session denied',
    );
    this.arm();
  }

  /** Writes the pending counts and stops the timer (shutdown: no count is lost). */
  close(): void {
    if (this.timer !== undefined) this.clock.clearTimeout(this.timer);
    this.timer = undefined;
    this.summarize();
    this.recent.clear();
  }

  private arm(): void {
    if (this.timer !== undefined) return;
    this.timer = this.clock.setTimeout(() => {
      this.timer = undefined;
      this.summarize();
      if (this.recent.size > 0) this.arm();
    }, DENIAL_LOG_INTERVAL_MS);
  }

  /** One line per key denied again since the last line; quiet keys are forgotten. */
  private summarize(): void {
    for (const [key, r] of this.recent) {
      if (r.count === 0) {
        this.recent.delete(key);
        continue;
      }
      this.log.info(
        {
          event: 'session_denied_repeated',
          ip: r.ip,
          reason: r.reason,
          ...(r.detail !== undefined ? { detail: r.detail } : {}),
          count: r.count,
          interval_ms: DENIAL_LOG_INTERVAL_MS,
        },
        `session denied ${r.count} more times`,
      );
      r.count = 0;
    }
  }
}
