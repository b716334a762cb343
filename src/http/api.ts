/**
 * The JSON API's conventions, in one place so every route keeps them (README "HTTP API",
 * `/api/openapi.json`): bodies are JSON and never cached, an error is
 * `{"error":{"code","message"}}` with a stable snake_case code, and a list answers one page,
 * `limit` items from `offset`, with `total` and the `next_offset` to ask for (null on the last).
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Limits } from '../core/limits.js';
import { readBody } from './bounds.js';
import { HttpError, type RouteHandler } from './router.js';

/** A page is this long unless the client asks for another length; never longer than MAX_PAGE. */
export const DEFAULT_PAGE = 1000;
export const MAX_PAGE = 10_000;

export function sendJson(
  res: ServerResponse,
  status: number,
  body: unknown,
  headers: Record<string, string> = {},
): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const text = JSON.stringify(body);
  res.writeHead(status, {
    'content-type': 'application/json; charset=utf-8',
    'content-length': Buffer.byteLength(text),
    'cache-control': 'no-store',
    ...headers,
  });
  res.end(text);
}

export function sendError(
  res: ServerResponse,
  status: number,
  code: string,
  message: string,
  headers: Record<string, string> = {},
): void {
  sendJson(res, status, { error: { code, message } }, headers);
}

export function noContent(res: ServerResponse): void {
  res.writeHead(204, { 'cache-control': 'no-store' });
  res.end();
}

/** A client mistake in an API request: answered 400 (or its status) with this code. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

/**
 * An API route's handler with its client mistakes answered here (ApiError → its status and
 * code), so a route keeps the error contract whichever front or test harness calls it.
 */
export function apiRoute(handler: RouteHandler): RouteHandler {
  return async (req, res, ctx) => {
    try {
      await handler(req, res, ctx);
    } catch (err) {
      if (!(err instanceof ApiError)) throw err;
      sendError(res, err.status, err.code, err.message);
    }
  };
}

export interface PageRequest {
  limit: number;
  offset: number;
}

/** `limit` and `offset` from the query; ApiError 400 `bad_page` when either is not a whole number. */
export function pageRequest(q: URLSearchParams): PageRequest {
  const read = (key: string, fallback: number): number => {
    const raw = q.get(key);
    if (raw === null || raw === '') return fallback;
    if (!/^\d{1,9}$/.test(raw)) throw new ApiError(400, 'bad_page', `${key} must be a whole number`);
    return Number(raw);
  };
  const limit = read('limit', DEFAULT_PAGE);
  if (limit < 1 || limit > MAX_PAGE) {
    throw new ApiError(400, 'bad_page', `limit must be between 1 and ${MAX_PAGE}`);
  }
  return { limit, offset: read('offset', 0) };
}

/** One page of `items` under `key`, with the paging fields. */
export function page<T>(key: string, items: readonly T[], p: PageRequest): Record<string, unknown> {
  const slice = items.slice(p.offset, p.offset + p.limit);
  const next = p.offset + slice.length;
  return {
    [key]: slice,
    total: items.length,
    limit: p.limit,
    offset: p.offset,
    next_offset: next < items.length ? next : null,
  };
}

/** The JSON object in the body (`{}` when empty); ApiError 400/413 otherwise. */
export async function readJsonObject(req: IncomingMessage, limits: Limits): Promise<Record<string, unknown>> {
  let text: string;
  try {
    text = (await readBody(req, limits)).toString('utf8').trim();
  } catch (err) {
    if (err instanceof HttpError) {
      throw new ApiError(err.status, err.status === 413 ? 'body_too_large' : 'body_unreadable', err.message);
    }
    throw err;
  }
  if (text === '') return {};
  let body: unknown;
  try {
    body = JSON.parse(text) as unknown;
  } catch {
    throw new ApiError(400, 'bad_json', 'the body is not JSON');
  }
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    throw new ApiError(400, 'bad_json', 'the body must be a JSON object');
  }
  return body as Record<string, unknown>;
}

/** Whether a path belongs to the JSON API (its errors are JSON too). */
export function isApiPath(path: string): boolean {
  return path === '/api' || path.startsWith('/api/');
}
