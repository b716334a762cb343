/**
 * `POST /api/tokens` (SPEC §8): mints an admin view token for the admin UI (AUTH-SPEC §7.5,
 * Flussonic's `admin_view_token_generate`). It sits under `/api`, so the HTTP front has already
 * required `edit_auth` (or loopback) — the "only minted for an authenticated admin" rule. When
 * admin view is disabled the answer is 405, as in the reference API.
 */
import type { Config } from '../config/types.js';
import type { HttpRouter } from '../http/router.js';
import { pathPattern } from '../http/router.js';
import { apiRoute, readJsonObject, sendError, sendJson } from '../http/api.js';
import type { AdminView } from '../tokens/admin-view.js';

export function registerTokenRoutes(
  router: HttpRouter,
  adminView: Pick<AdminView, 'mint'>,
  config: () => Pick<Config, 'adminViewDisabled' | 'limits'>,
): void {
  router.add(
    'POST',
    pathPattern('/api/tokens'),
    apiRoute(async (req, res) => {
      const body = await readJsonObject(req, config().limits);
      const kind = body['kind'] ?? 'admin';
      if (kind !== 'admin') {
        // KS, JWT and securetoken secrets belong to the entitlement system, which mints with the CLI.
        sendError(
          res,
          400,
          'unsupported_kind',
          'only kind "admin" is minted here; use `streamgate token mint`',
        );
        return;
      }
      const minted = adminView.mint(config());
      if (minted === undefined) {
        sendError(res, 405, 'admin_view_disabled', 'admin view tokens are disabled', { allow: '' });
        return;
      }
      sendJson(res, 200, { token: minted.token, expires_at: minted.expiresAt });
    }),
  );
}
