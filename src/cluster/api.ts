/**
 * The session API across workers (`workers N`): `/api/sessions` (list, one, kick, re-auth) and
 * `/api/bans` (list, remove) answer for every worker, whichever worker took the request. The
 * worker asks the primary, which runs the operation in every worker and returns their answers
 * (`fanout`/`call` in messages.ts). These routes are registered before the single-process ones
 * (src/api/sessions-api.ts) and answer in the same shapes; a worker that does not answer in
 * time is left out, and when the primary does not answer the worker answers for itself.
 */
import { isProto, PROTOS } from '../core/proto.js';
import type { HttpRouter } from '../http/router.js';
import { pathPattern } from '../http/router.js';
import { banView } from '../api/sessions-api.js';
import { apiRoute, noContent, page, pageRequest, sendError, sendJson } from '../http/api.js';
import type { Sessions } from '../sessions/manager.js';
import type { BanEntry } from '../sessions/store.js';
import type { ApiArg, ApiOp } from './messages.js';

export type ApiManager = Pick<Sessions, 'list' | 'get' | 'kick' | 'reauth' | 'unban' | 'bans'>;

/** Runs one operation against this worker's manager; the value crosses IPC as JSON. */
export function runApiOp(manager: ApiManager, op: ApiOp, arg: ApiArg): unknown {
  const text = typeof arg === 'string' ? arg : '';
  switch (op) {
    case 'list': {
      const f = typeof arg === 'object' && arg !== null ? arg : {};
      return JSON.parse(JSON.stringify(manager.list(f as Parameters<ApiManager['list']>[0]))) as unknown;
    }
    case 'get': {
      const s = manager.get(text);
      return s === undefined ? null : (JSON.parse(JSON.stringify(s)) as unknown);
    }
    case 'kick':
      return manager.kick(text);
    case 'reauth':
      return manager.reauth(text) ?? null;
    case 'bans':
      return manager.bans();
    case 'unban':
      return manager.unban(text);
  }
}

/** `ask` returns every worker's answer, or undefined when the primary did not answer. */
export function registerClusterSessionRoutes(
  router: HttpRouter,
  manager: ApiManager,
  ask: (op: ApiOp, arg: ApiArg) => Promise<unknown[] | undefined>,
): void {
  const all = async (op: ApiOp, arg: ApiArg): Promise<unknown[]> =>
    (await ask(op, arg)) ?? [runApiOp(manager, op, arg)];

  router.add(
    'POST',
    pathPattern('/api/sessions/reauth'),
    apiRoute(async (_req, res, ctx) => {
      const name = ctx.url.searchParams.get('name');
      if (name === null || name === '') {
        sendError(res, 400, 'name_required', 'the name query parameter names the stream');
        return;
      }
      const counts = (await all('reauth', name)).filter((n): n is number => typeof n === 'number');
      if (counts.length === 0) sendError(res, 404, 'stream_not_found', `no stream ${name}`);
      else sendJson(res, 200, { estimated_count: counts.reduce((a, b) => a + b, 0) });
    }),
  );

  router.add(
    'GET',
    pathPattern('/api/sessions'),
    apiRoute(async (_req, res, ctx) => {
      const q = ctx.url.searchParams;
      const p = pageRequest(q);
      const proto = q.get('proto');
      if (proto !== null && !isProto(proto)) {
        sendError(res, 400, 'bad_proto', `proto must be one of ${PROTOS.join(', ')}`);
        return;
      }
      const filter: { name?: string; userId?: string; proto?: string } = {};
      if (q.get('name') !== null) filter.name = q.get('name') as string;
      if (q.get('user_id') !== null) filter.userId = q.get('user_id') as string;
      if (proto !== null) filter.proto = proto;
      const lists = await all('list', filter);
      const sessions = lists.flatMap((l) => (Array.isArray(l) ? (l as unknown[]) : []));
      sendJson(res, 200, page('sessions', sessions, p));
    }),
  );

  router.add(
    'GET',
    pathPattern('/api/sessions/{id}'),
    apiRoute(async (_req, res, ctx) => {
      const found = (await all('get', ctx.params['id'] ?? '')).find((s) => s !== null && s !== undefined);
      if (found === undefined) sendError(res, 404, 'session_not_found', 'no open session with this id');
      else sendJson(res, 200, found);
    }),
  );

  router.add(
    'DELETE',
    pathPattern('/api/sessions/{id}'),
    apiRoute(async (_req, res, ctx) => {
      if ((await all('kick', ctx.params['id'] ?? '')).includes(true)) noContent(res);
      else sendError(res, 404, 'session_not_found', 'no open session with this id');
    }),
  );

  router.add(
    'GET',
    pathPattern('/api/bans'),
    apiRoute(async (_req, res, ctx) => {
      const p = pageRequest(ctx.url.searchParams);
      // Each worker caches the bans it applied; the same identity may be banned in several.
      const byKey = new Map<string, BanEntry>();
      for (const list of await all('bans', null)) {
        for (const b of Array.isArray(list) ? (list as BanEntry[]) : []) {
          const seen = byKey.get(b.idKey);
          if (!seen || seen.until < b.until) byKey.set(b.idKey, b);
        }
      }
      const bans = [...byKey.values()].map(banView);
      sendJson(res, 200, page('bans', bans, p));
    }),
  );

  router.add(
    'DELETE',
    pathPattern('/api/bans/{key}'),
    apiRoute(async (_req, res, ctx) => {
      if ((await all('unban', ctx.params['key'] ?? '')).includes(true)) noContent(res);
      else sendError(res, 404, 'ban_not_found', 'no ban or cached denial with this identity key');
    }),
  );
}
