/**
 * `POST /api/tokens` (SPEC §8): mints an admin view token for the admin UI (AUTH-SPEC §7.5,
 * Flussonic's `admin_view_token_generate`). It sits under `/api`, so the HTTP front has already
 * required `edit_auth` (or loopback) — the "only minted for an authenticated admin" rule. When
 * admin view is disabled the answer is 405, as in the reference API.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Config } from '../config/types.js';
import type { Limits } from '../core/limits.js';
import type { HttpRouter } from '../http/router.js';
import { HttpError, pathPattern } from '../http/router.js';
import { readBody } from '../http/bounds.js';
import type { AdminView } from '../tokens/admin-view.js';

function sendJson(
  res: ServerResponse,
  status: number,
  body: unknown,
  headers: Record<string, string> = {},
): void {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    'content-type': 'application/json; charset=utf-8',
    'content-length': Buffer.byteLength(text),
    'cache-control': 'no-store',
    ...headers,
  });
  res.end(text);
}

/** The JSON body, `{}` when empty, undefined when unparsable; HttpError when too large or too slow. */
async function readJson(req: IncomingMessage, limits: Limits): Promise<unknown> {
  const text = (await readBody(req, limits)).toString('utf8').trim();
  if (text === '') return {};
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return undefined;
  }
}

export function registerTokenRoutes(
  router: HttpRouter,
  adminView: Pick<AdminView, 'mint'>,
  config: () => Pick<Config, 'adminViewDisabled' | 'limits'>,
): void {
  router.add('POST', pathPattern('/api/tokens'), async (req, res) => {
    let body: unknown;
    try {
      body = await readJson(req, config().limits);
    } catch (err) {
      if (!(err instanceof HttpError)) throw err;
      sendJson(res, err.status, { error: err.status === 413 ? 'body_too_large' : 'body_unreadable' });
      return;
    }
    if (typeof body !== 'object' || body === null || Array.isArray(body)) {
      sendJson(res, 400, { error: 'bad_json' });
      return;
    }
    const kind = (body as { kind?: unknown }).kind ?? 'admin';
    if (kind !== 'admin') {
      // KS, JWT and securetoken secrets belong to the entitlement system, which mints with the CLI.
      sendJson(res, 400, { error: 'unsupported_kind', supported: ['admin'] });
      return;
    }
    const minted = adminView.mint(config());
    if (minted === undefined) {
      sendJson(res, 405, { error: 'admin_view_disabled' }, { allow: '' });
      return;
    }
    sendJson(res, 200, { token: minted.token, expires_at: minted.expiresAt });
  });
}
