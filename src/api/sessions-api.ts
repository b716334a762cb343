/**
 * The session endpoints of the HTTP API (SPEC §8, AUTH-SPEC §9.1): live sessions, history,
 * kick, forced re-authorization and ban removal. Responses are JSON and show a token only as
 * its short hash. Admin authentication (`edit_auth`) is applied by the HTTP front, not here.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { HttpRouter } from '../http/router.js';
import { pathPattern } from '../http/router.js';
import type { HistoryFilter, HistoryStore } from '../sessions/history.js';
import type { Sessions } from '../sessions/manager.js';
import { isProto } from '../core/proto.js';

/** The manager operations these routes use; `Sessions` provides them. */
export type SessionsApiManager = Pick<Sessions, 'list' | 'get' | 'kick' | 'reauth' | 'unban' | 'bans'>;

function sendJson(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    'content-type': 'application/json; charset=utf-8',
    'content-length': Buffer.byteLength(text),
    'cache-control': 'no-store',
  });
  res.end(text);
}

function noContent(res: ServerResponse): void {
  res.writeHead(204);
  res.end();
}

/** Epoch milliseconds or an ISO 8601 date; undefined when absent, NaN when unparsable. */
export function parseTime(raw: string | null): number | undefined {
  if (raw === null || raw === '') return undefined;
  if (/^\d+$/.test(raw)) return Number(raw);
  return Date.parse(raw);
}

export function registerSessionRoutes(
  router: HttpRouter,
  manager: SessionsApiManager,
  history: HistoryStore,
): void {
  // Fixed paths first: the router takes the first route whose path matches.
  router.add('POST', pathPattern('/api/sessions/reauth'), (_req: IncomingMessage, res, ctx) => {
    const name = ctx.url.searchParams.get('name');
    if (name === null || name === '') {
      sendJson(res, 400, { error: 'name_required' });
      return;
    }
    const n = manager.reauth(name);
    if (n === undefined) sendJson(res, 404, { error: 'stream_not_found' });
    else sendJson(res, 200, { estimated_count: n });
  });

  router.add('GET', pathPattern('/api/sessions'), (_req, res, ctx) => {
    const q = ctx.url.searchParams;
    const proto = q.get('proto');
    if (proto !== null && !isProto(proto)) {
      sendJson(res, 400, { error: 'bad_proto' });
      return;
    }
    const sessions = manager.list({
      name: q.get('name') ?? undefined,
      userId: q.get('user_id') ?? undefined,
      proto: proto ?? undefined,
    });
    sendJson(res, 200, { sessions });
  });

  router.add('GET', pathPattern('/api/sessions/{id}'), (_req, res, ctx) => {
    const s = manager.get(ctx.params['id'] ?? '');
    if (s === undefined) sendJson(res, 404, { error: 'session_not_found' });
    else sendJson(res, 200, s);
  });

  router.add('DELETE', pathPattern('/api/sessions/{id}'), (_req, res, ctx) => {
    if (manager.kick(ctx.params['id'] ?? '')) noContent(res);
    else sendJson(res, 404, { error: 'session_not_found' });
  });

  router.add('GET', pathPattern('/api/history'), (_req, res, ctx) => {
    const q = ctx.url.searchParams;
    const filter: HistoryFilter = {};
    const userId = q.get('user_id');
    const name = q.get('name');
    if (userId !== null) filter.user_id = userId;
    if (name !== null) filter.name = name;
    const from = parseTime(q.get('from'));
    const to = parseTime(q.get('to'));
    const limit = q.get('limit');
    if (Number.isNaN(from) || Number.isNaN(to) || (limit !== null && !/^\d+$/.test(limit))) {
      sendJson(res, 400, { error: 'bad_filter' });
      return;
    }
    if (from !== undefined) filter.from = from;
    if (to !== undefined) filter.to = to;
    if (limit !== null) filter.limit = Number(limit);
    sendJson(res, 200, { history: history.query(filter) });
  });

  router.add('GET', pathPattern('/api/bans'), (_req, res) => {
    const bans = manager.bans().map((b) => ({
      id_key: b.idKey,
      reason: b.reason,
      ban: b.ban,
      name: b.name,
      user_id: b.userId ?? null,
      token_hash: b.tokenHash ?? null,
      created_at: b.createdAt,
      until: b.until,
    }));
    sendJson(res, 200, { bans });
  });

  router.add('DELETE', pathPattern('/api/bans/{key}'), (_req, res, ctx) => {
    if (manager.unban(ctx.params['key'] ?? '')) noContent(res);
    else sendJson(res, 404, { error: 'ban_not_found' });
  });
}
