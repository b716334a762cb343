/**
 * Where the installed package lives and what version it is. The same code runs from `src/`
 * (tsx, tests) and from `dist/src/` (the built server), so files that ship beside the code
 * (package.json, the admin page) are found from the package root, not by a fixed number of
 * `../` from this file.
 */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

function findRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    if (existsSync(join(dir, 'package.json'))) return dir;
    const up = dirname(dir);
    if (up === dir) {
      throw new Error('streamgate: package.json not found above ' + fileURLToPath(import.meta.url));
    }
    dir = up;
  }
}

/** The directory holding streamgate's package.json. */
export const PACKAGE_ROOT = findRoot();

export function packageVersion(): string {
  try {
    const pkg = JSON.parse(readFileSync(join(PACKAGE_ROOT, 'package.json'), 'utf8')) as { version?: unknown };
    return typeof pkg.version === 'string' ? pkg.version : '0.0.0';
  } catch {
    return '0.0.0';
  }
}
