/**
 * The server's logger: pino JSON lines, or human-readable lines when stdout is a
 * terminal (pino-pretty, if installed). Tokens and secrets never go in here; use
 * `tokenHash()` (src/core/secrets.ts) wherever a token would help someone follow a session.
 */
import { pino, type Logger, type LoggerOptions } from 'pino';

export type { Logger } from 'pino';

export function createLogger(options: { level?: string; pretty?: boolean } = {}): Logger {
  const base: LoggerOptions = {
    level: options.level ?? process.env['LOG_LEVEL'] ?? 'info',
    base: undefined,
    // Belt and braces: even if a caller passes one of these by mistake it is not printed.
    redact: {
      paths: ['token', '*.token', 'password', '*.password', 'bearer', '*.bearer', 'secret'],
      censor: '[redacted]',
    },
  };
  const pretty = options.pretty ?? (process.stdout.isTTY && process.env['NODE_ENV'] !== 'production');
  if (pretty) {
    try {
      return pino({
        ...base,
        transport: { target: 'pino-pretty', options: { colorize: true, translateTime: 'HH:MM:ss.l' } },
      });
    } catch {
      // pino-pretty is a dev dependency; a production install logs JSON.
    }
  }
  return pino(base);
}

/**
 * A URL or ffmpeg message with credentials and token-like query values masked, for logs:
 * pulled inputs (`rtmp://user:pass@host/app?token=…`) and ffmpeg's errors quote them.
 */
export function redactSecrets(text: string): string {
  return text
    .replace(/\/\/[^/@\s]+@/g, '//[redacted]@')
    .replace(
      /([?&](?:token|password|pass|secret|secrets|key|sign|signature|ks|bearer|auth)=)[^&\s]*/gi,
      '$1[redacted]',
    );
}

/**
 * Warns about one kind of event at most once per interval: the first one at once (`count: 1`),
 * the ones that follow within the interval as one line with their `count` when it ends. A
 * flood of refusals costs a line per interval per key, not a line per refusal; past `maxKeys`
 * distinct keys in flight, the rest share the key `*`.
 */
export class ThrottledWarn {
  private readonly pending = new Map<string, { count: number; fields: object; timer: NodeJS.Timeout }>();

  constructor(
    private readonly log: Logger,
    private readonly intervalMs: number,
    private readonly maxKeys = 1_000,
  ) {}

  warn(key: string, fields: object, msg: string): void {
    const k = this.pending.has(key) || this.pending.size < this.maxKeys ? key : '*';
    const p = this.pending.get(k);
    if (p) {
      p.count++;
      p.fields = fields;
      return;
    }
    this.log.warn({ ...fields, kind: k, count: 1 }, msg);
    const entry = {
      count: 0,
      fields,
      timer: setTimeout(() => {
        this.pending.delete(k);
        if (entry.count > 0) {
          this.log.warn({ ...entry.fields, kind: k, count: entry.count }, `${msg} (repeated)`);
        }
      }, this.intervalMs),
    };
    entry.timer.unref();
    this.pending.set(k, entry);
  }

  stop(): void {
    for (const p of this.pending.values()) clearTimeout(p.timer);
    this.pending.clear();
  }
}
