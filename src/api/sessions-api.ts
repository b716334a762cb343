/**
 * The session endpoints of the HTTP API (SPEC §8, AUTH-SPEC §9.1): live sessions, history,
 * kick, ban, forced re-authorization and ban removal. Responses follow src/http/api.ts (JSON,
 * `{error:{code,message}}`, paged lists) and show a token only as its short hash. Admin
 * authentication (`edit_auth`) is applied by the HTTP front, not here.
 */
import type { HttpRouter } from '../http/router.js';
import { pathPattern } from '../http/router.js';
import {
  ApiError,
  apiRoute,
  MAX_PAGE,
  noContent,
  page,
  pageRequest,
  readJsonObject,
  sendError,
  sendJson,
} from '../http/api.js';
import type { HistoryFilter, HistoryStore } from '../sessions/history.js';
import type { Sessions } from '../sessions/manager.js';
import type { BanEntry } from '../sessions/store.js';
import { isProto, PROTOS } from '../core/proto.js';
import { DEFAULT_LIMITS, type Limits } from '../core/limits.js';

/** The manager operations these routes use; `Sessions` provides them. */
export type SessionsApiManager = Pick<Sessions, 'list' | 'get' | 'kick' | 'reauth' | 'unban' | 'bans'> &
  Partial<Pick<Sessions, 'ban'>>;

/** A ban from the admin UI lasts this long unless the request says otherwise (seconds). */
export const DEFAULT_BAN_SECONDS = 3600;
const MAX_BAN_SECONDS = 30 * 86_400;

/** Epoch milliseconds or an ISO 8601 date; undefined when absent, NaN when unparsable. */
export function parseTime(raw: string | null): number | undefined {
  if (raw === null || raw === '') return undefined;
  if (/^\d+$/.test(raw)) return Number(raw);
  return Date.parse(raw);
}

/** A ban or cached denial as `GET /api/bans` lists it. */
export function banView(b: BanEntry): Record<string, unknown> {
  return {
    id_key: b.idKey,
    reason: b.reason,
    ban: b.ban,
    name: b.name,
    user_id: b.userId ?? null,
    token_hash: b.tokenHash ?? null,
    created_at: b.createdAt,
    until: b.until,
  };
}

export function registerSessionRoutes(
  router: HttpRouter,
  manager: SessionsApiManager,
  history: HistoryStore,
  limits: () => Limits = () => DEFAULT_LIMITS,
): void {
  // Fixed paths first: the router takes the first route whose path matches.
  router.add(
    'POST',
    pathPattern('/api/sessions/reauth'),
    apiRoute((_req, res, ctx) => {
      const name = ctx.url.searchParams.get('name');
      if (name === null || name === '') {
        sendError(res, 400, 'name_required', 'the name query parameter names the stream');
        return;
      }
      const n = manager.reauth(name);
      if (n === undefined) sendError(res, 404, 'stream_not_found', `no stream ${name}`);
      else sendJson(res, 200, { estimated_count: n });
    }),
  );

  router.add(
    'GET',
    pathPattern('/api/sessions'),
    apiRoute((_req, res, ctx) => {
      const q = ctx.url.searchParams;
      const p = pageRequest(q);
      const proto = q.get('proto');
      if (proto !== null && !isProto(proto)) {
        sendError(res, 400, 'bad_proto', `proto must be one of ${PROTOS.join(', ')}`);
        return;
      }
      const sessions = manager.list({
        name: q.get('name') ?? undefined,
        userId: q.get('user_id') ?? undefined,
        proto: proto ?? undefined,
      });
      sendJson(res, 200, page('sessions', sessions, p));
    }),
  );

  router.add(
    'GET',
    pathPattern('/api/sessions/{id}'),
    apiRoute((_req, res, ctx) => {
      const s = manager.get(ctx.params['id'] ?? '');
      if (s === undefined) sendError(res, 404, 'session_not_found', 'no open session with this id');
      else sendJson(res, 200, s);
    }),
  );

  router.add(
    'DELETE',
    pathPattern('/api/sessions/{id}'),
    apiRoute((_req, res, ctx) => {
      if (manager.kick(ctx.params['id'] ?? '')) noContent(res);
      else sendError(res, 404, 'session_not_found', 'no open session with this id');
    }),
  );

  router.add(
    'GET',
    pathPattern('/api/history'),
    apiRoute((_req, res, ctx) => {
      const q = ctx.url.searchParams;
      const filter: HistoryFilter = {};
      const userId = q.get('user_id');
      const name = q.get('name');
      if (userId !== null) filter.user_id = userId;
      if (name !== null) filter.name = name;
      const from = parseTime(q.get('from'));
      const to = parseTime(q.get('to'));
      if (Number.isNaN(from) || Number.isNaN(to)) {
        sendError(res, 400, 'bad_filter', 'from and to are epoch milliseconds or ISO 8601 dates');
        return;
      }
      const p = pageRequest(q);
      if (p.offset + p.limit > MAX_PAGE) {
        throw new ApiError(
          400,
          'bad_page',
          `history pages reach back ${MAX_PAGE} rows at most (offset + limit)`,
        );
      }
      if (from !== undefined) filter.from = from;
      if (to !== undefined) filter.to = to;
      // One row more than the page tells whether there is a next one.
      filter.limit = Math.min(MAX_PAGE, p.offset + p.limit + 1);
      const rows = history.query(filter);
      const slice = rows.slice(p.offset, p.offset + p.limit);
      const more = rows.length > p.offset + p.limit;
      sendJson(res, 200, {
        history: slice,
        limit: p.limit,
        offset: p.offset,
        next_offset: more ? p.offset + slice.length : null,
      });
    }),
  );

  router.add(
    'GET',
    pathPattern('/api/bans'),
    apiRoute((_req, res, ctx) => {
      const p = pageRequest(ctx.url.searchParams);
      const bans = manager.bans().map(banView);
      sendJson(res, 200, page('bans', bans, p));
    }),
  );

  router.add(
    'POST',
    pathPattern('/api/bans'),
    apiRoute(async (req, res) => {
      const body = await readJsonObject(req, limits());
      const id = body['session_id'];
      const seconds = body['seconds'] ?? DEFAULT_BAN_SECONDS;
      if (typeof id !== 'string' || id === '') {
        sendError(res, 400, 'session_id_required', 'session_id names the open session whose identity to ban');
        return;
      }
      if (
        typeof seconds !== 'number' ||
        !Number.isInteger(seconds) ||
        seconds < 1 ||
        seconds > MAX_BAN_SECONDS
      ) {
        sendError(res, 400, 'bad_seconds', `seconds must be a whole number from 1 to ${MAX_BAN_SECONDS}`);
        return;
      }
      const s = manager.get(id);
      if (s === undefined || manager.ban === undefined || !manager.ban(id, seconds)) {
        sendError(res, 404, 'session_not_found', 'no open session with this id');
        return;
      }
      sendJson(res, 201, { id_key: s.idKey, until: Date.now() + seconds * 1000 });
    }),
  );

  router.add(
    'DELETE',
    pathPattern('/api/bans/{key}'),
    apiRoute((_req, res, ctx) => {
      if (manager.unban(ctx.params['key'] ?? '')) noContent(res);
      else sendError(res, 404, 'ban_not_found', 'no ban or cached denial with this identity key');
    }),
  );
}
