/**
 * Reads a config file and hands it to the pure parser; the only config module that
 * touches the filesystem. Also the logic behind `streamgate check-config FILE`.
 */
import { readFile } from 'node:fs/promises';
import { formatConfigError, parseConfig } from './parse.js';
import type { ParseResult } from './parse.js';

export async function loadConfigFile(path: string): Promise<ParseResult> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (e) {
    // Reported like a parse error so start-up and check-config print one format.
    const message = e instanceof Error ? e.message : String(e);
    return { errors: [{ file: path, line: 1, col: 1, message: `cannot read config: ${message}` }] };
  }
  return parseConfig(text, path);
}

/**
 * `check-config`: the lines to print and the exit code (0 valid, 2 invalid, SPEC §1).
 * Errors go to stderr as `FILE:LINE:COL: message`; the summary goes to stdout.
 */
export async function checkConfigFile(
  path: string,
): Promise<{ exitCode: 0 | 2; stdout: string[]; stderr: string[] }> {
  const r = await loadConfigFile(path);
  if ('errors' in r) {
    const n = r.errors.length;
    return {
      exitCode: 2,
      stdout: [],
      stderr: [...r.errors.map(formatConfigError), `${path}: ${n} error${n === 1 ? '' : 's'}`],
    };
  }
  const c = r.config;
  const count = (n: number, what: string): string => `${n} ${what}${n === 1 ? '' : 's'}`;
  return {
    exitCode: 0,
    stdout: [
      `${path}: OK (${count(c.streams.length, 'stream')}, ${count(c.templates.length, 'template')}, ${count(c.authBackends.size, 'auth backend')})`,
    ],
    stderr: [],
  };
}
