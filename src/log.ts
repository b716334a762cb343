/**
 * The server's logger: pino JSON lines, or human-readable lines when stdout is a
 * terminal (pino-pretty, if installed). Tokens and secrets never go in here; use
 * `tokenHash()` (src/sessions/identity.ts) wherever a token would help someone follow a session.
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
