/**
 * The admin web UI (SPEC §8 `/admin/`): one static page that reads the JSON API (streams,
 * live sessions with kick, bans with unban, per-stream auth settings) and plays a stream
 * with hls.js. Access control is the HTTP front's: `edit_auth`, or loopback only.
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import type { HttpRouter } from '../http/router.js';
import { pathPattern } from '../http/router.js';
// The page ships as source files beside this module; the built server reads them from there too.
import { PACKAGE_ROOT } from '../package-info.js';

interface Asset {
  body: Buffer;
  type: string;
}

function load(): Record<string, Asset> {
  const require = createRequire(import.meta.url);
  return {
    '/admin/': {
      body: readFileSync(join(PACKAGE_ROOT, 'src/admin/admin.html')),
      type: 'text/html; charset=utf-8',
    },
    '/admin/admin.js': {
      body: readFileSync(join(PACKAGE_ROOT, 'src/admin/admin.js')),
      type: 'text/javascript; charset=utf-8',
    },
    '/admin/hls.min.js': {
      body: readFileSync(require.resolve('hls.js/dist/hls.min.js')),
      type: 'text/javascript; charset=utf-8',
    },
  };
}

export function registerAdminRoutes(router: HttpRouter): void {
  let assets: Record<string, Asset> | undefined;
  router.add('GET', pathPattern('/admin'), (_req, res) => {
    res.writeHead(301, { Location: '/admin/', 'Content-Length': 0 }).end();
  });
  router.add(
    'GET',
    (p) =>
      p === '/admin/' || p === '/admin/admin.js' || p === '/admin/hls.min.js' ? { path: p } : undefined,
    (req, res, ctx) => {
      // Read on first use: a server that nobody administers never loads hls.js into memory.
      assets ??= load();
      const asset = assets[ctx.params['path'] ?? ''];
      if (!asset) return;
      res.writeHead(200, {
        'Content-Type': asset.type,
        'Content-Length': asset.body.length,
        'Cache-Control': 'no-cache',
      });
      res.end(req.method === 'HEAD' ? undefined : asset.body);
    },
  );
}
