/**
 * Parser and validator for the Flussonic-style config file (SPEC §2, AUTH-SPEC §8.3): the
 * entry point the rest of the server imports.
 *
 * Hand-written: Flussonic's config syntax has no grammar published as a library, and the
 * errors matter more than the happy path — `check-config` and start-up must point at
 * `FILE:LINE:COL` for every problem in one pass, so the parser recovers after each error
 * instead of stopping. Three stages: tokens (lexer.ts), a generic statement/block tree
 * (syntax.ts), then a per-context walk that builds the typed Config (build.ts, with
 * auth-spec.ts and stream-block.ts). Pure: text in, value out.
 */
import { buildConfig } from './build.js';
import { Checker } from './check.js';
import { tokenize } from './lexer.js';
import { parseStatements } from './syntax.js';
import type { Config, ConfigError } from './types.js';

export type { ConfigError } from './types.js';

export type ParseResult = { config: Config } | { errors: ConfigError[] };

/** A runaway input (random bytes) would otherwise print thousands of lines nobody reads. */
const MAX_ERRORS = 100;

export function formatConfigError(e: ConfigError): string {
  return `${e.file}:${e.line}:${e.col}: ${e.message}`;
}

/**
 * Parses and validates a config file's text. `file` is used only in messages and
 * `Config.source`. Never throws on bad input: every problem comes back as a ConfigError,
 * sorted by position.
 */
export function parseConfig(text: string, file: string): ParseResult {
  const errors: ConfigError[] = [];
  const { tokens, errors: lexErrors } = tokenize(text);
  for (const e of lexErrors) errors.push({ file, ...e });
  const stmts = parseStatements(tokens, (line, col, message) => errors.push({ file, line, col, message }));
  const chk = new Checker(file);
  const config = buildConfig(stmts, chk);
  errors.push(...chk.errors);
  if (errors.length === 0) return { config };
  errors.sort((a, b) => a.line - b.line || a.col - b.col);
  if (errors.length > MAX_ERRORS) {
    const last = errors[MAX_ERRORS - 1] as ConfigError;
    const dropped = errors.length - MAX_ERRORS;
    errors.length = MAX_ERRORS;
    errors.push({ ...last, message: `too many errors; ${dropped} more not shown` });
  }
  return { errors };
}
