/**
 * Real client tools for end-to-end tests. A missing tool skips the test on a laptop
 * (with the reason printed) but fails it when CI=true, so CI never passes by skipping.
 */
import { spawnSync } from 'node:child_process';
import type { TestContext } from 'node:test';

const found = new Map<string, boolean>();

export function haveTool(cmd: string, args: string[] = ['-version']): boolean {
  let ok = found.get(cmd);
  if (ok === undefined) {
    ok = spawnSync(cmd, args, { stdio: 'ignore', timeout: 10_000 }).status === 0;
    found.set(cmd, ok);
  }
  return ok;
}

/** Returns false (and skips) when the tool is missing on a dev machine; throws in CI. */
export function requireTool(t: TestContext, cmd: string, args?: string[]): boolean {
  if (haveTool(cmd, args)) return true;
  const why = `${cmd} is not installed (bash .ci/run installs it)`;
  if (process.env['CI'] === 'true') throw new Error(`CI=true but ${why}`);
  t.skip(why);
  return false;
}

/**
 * The `skip` option for a file of end-to-end tests that need these tools: false when they
 * are all installed, the reason otherwise; throws at load time when CI=true.
 */
export function skipWithout(...tools: [cmd: string, args?: string[]][]): false | string {
  const missing = tools.filter(([cmd, args]) => !haveTool(cmd, args)).map(([cmd]) => cmd);
  if (missing.length === 0) return false;
  const why = `${missing.join(', ')} not installed`;
  if (process.env['CI'] === 'true') throw new Error(`CI=true but ${why} (bash .ci/run installs them)`);
  return why;
}

/** Whether missing clients must fail rather than skip (CI=true). */
export const inCI = process.env['CI'] === 'true';
