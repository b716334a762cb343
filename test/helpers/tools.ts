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
