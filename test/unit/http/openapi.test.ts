/**
 * `/api/openapi.json` is the HTTP contract: walked against the router of a real server in
 * both directions — every documented path and method reaches a route, and every route and
 * method is documented — and served as JSON.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { OPENAPI } from '../../../src/http/openapi.js';
import { startRunning } from './harness.js';

/** A concrete request path for a documented template. */
function example(path: string): string {
  return path
    .replace('{name}', 'live/cam1')
    .replace('{id}', 'some-id')
    .replace('{key}', 'some-key')
    .replace('{seq}', '7')
    .replace('{from}', '1700000000')
    .replace('{duration}', '60')
    .replace('{start}', '1700000000123');
}

const documented = (): [path: string, method: string][] =>
  Object.entries(OPENAPI['paths'] as Record<string, Record<string, unknown>>).flatMap(([path, ops]) =>
    Object.keys(ops).map((m): [string, string] => [path, m.toUpperCase()]),
  );

test('every documented path and method is routed', async (t) => {
  const { server } = await startRunning(t, 'template live { prefix live; input publish://; }');
  const router = server.core.router;
  const paths = documented();
  assert.ok(paths.length >= 25, `documented ${paths.length} operations`);
  for (const [path, method] of paths) {
    const found = router.find(method, example(path));
    assert.ok('handler' in found, `${method} ${path} is documented but not routed`);
  }
});

test('every route and method is documented', async (t) => {
  const { server } = await startRunning(t, 'template live { prefix live; input publish://; }');
  const docs = documented();
  const routes = server.core.router.list();
  assert.ok(routes.length >= 20);
  for (const [i, r] of routes.entries()) {
    for (const method of r.methods) {
      const covered = docs.some(([path, m]) => m === method && r.match(example(path)) !== undefined);
      assert.ok(covered, `route #${i} (${method}) is not documented in /api/openapi.json`);
    }
  }
});

test('GET /api/openapi.json serves the document as JSON', async (t) => {
  const s = await startRunning(t, '');
  const r = await s.call('GET', '/api/openapi.json');
  assert.equal(r.status, 200);
  assert.match(r.type, /^application\/json/);
  const doc = r.body as { openapi: string; paths: Record<string, unknown> };
  assert.equal(doc.openapi, '3.1.0');
  assert.deepEqual(Object.keys(doc.paths), Object.keys(OPENAPI['paths'] as object));
});
