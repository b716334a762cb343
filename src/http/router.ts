/**
 * The one HTTP listener's routing table. HLS, HTTP MPEG-TS, the API, metrics and the
 * admin UI all register here; the first route whose method and matcher accept a
 * request handles it, so more specific routes register first.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';

export interface RouteContext {
  url: URL;
  /** Whatever the matcher extracted (stream name, session id, …). */
  params: Record<string, string>;
  /** Client address after trusted-proxy resolution. */
  ip: string;
}

export type RouteHandler = (
  req: IncomingMessage,
  res: ServerResponse,
  ctx: RouteContext,
) => void | Promise<void>;

/** Returns the extracted parameters when the path matches, undefined otherwise. */
export type RouteMatcher = (pathname: string) => Record<string, string> | undefined;

interface Route {
  methods: readonly string[];
  match: RouteMatcher;
  handler: RouteHandler;
}

export class HttpRouter {
  private readonly routes: Route[] = [];

  add(methods: string | readonly string[], match: RouteMatcher, handler: RouteHandler): void {
    this.routes.push({ methods: typeof methods === 'string' ? [methods] : methods, match, handler });
  }

  /** Finds the handler for a request; `methodMismatch` tells a 405 from a 404. */
  find(
    method: string,
    pathname: string,
  ): { handler: RouteHandler; params: Record<string, string> } | { methodMismatch: boolean } {
    let methodMismatch = false;
    for (const r of this.routes) {
      const params = r.match(pathname);
      if (params === undefined) continue;
      if (r.methods.includes(method) || (method === 'HEAD' && r.methods.includes('GET'))) {
        return { handler: r.handler, params };
      }
      methodMismatch = true;
    }
    return { methodMismatch };
  }
}

/** Matcher for `/api/...`-style fixed paths with `{name}` placeholders (one path segment each). */
export function pathPattern(pattern: string): RouteMatcher {
  const names: string[] = [];
  const re = new RegExp(
    '^' +
      pattern.replace(/[.*+?^$()|[\]\\]/g, '\\$&').replace(/\{(\w+)\}/g, (_m, n: string) => {
        names.push(n);
        return '([^/]+)';
      }) +
      '$',
  );
  return (pathname) => {
    const m = re.exec(pathname);
    if (!m) return undefined;
    const params: Record<string, string> = {};
    names.forEach((n, i) => {
      params[n] = decodeURIComponent(m[i + 1] ?? '');
    });
    return params;
  };
}
