#!/usr/bin/env node
// The `streamgate` command. It runs the compiled server (`npm run build` writes dist/) when
// that build is newer than every source file, so production carries no runtime transpiler;
// otherwise (a fresh clone, or sources edited since the last build) it runs the TypeScript
// sources through tsx, so a stale build is never what runs.
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const stamp = join(root, 'dist', '.built');

function newestSource(dir, newest = 0) {
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) newest = newestSource(path, newest);
    else newest = Math.max(newest, statSync(path).mtimeMs);
  }
  return newest;
}

function builtIsFresh() {
  let built;
  try {
    built = statSync(stamp).mtimeMs;
  } catch {
    return false;
  }
  const sources = Math.max(
    newestSource(join(root, 'src')),
    newestSource(join(root, 'protocols')),
    statSync(join(root, 'package.json')).mtimeMs,
    statSync(join(root, 'tsconfig.json')).mtimeMs,
  );
  return built >= sources;
}

if (builtIsFresh()) {
  await import('../dist/src/main.js');
} else {
  const { register } = await import('tsx/esm/api');
  register();
  await import('../src/main.ts');
}
