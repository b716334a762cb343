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

/**
 * A request the client got wrong (a malformed escape, a body too large): answered with
 * `status` and logged at warn by the HTTP front, never as a server error.
 */
export class HttpError extends Error {
  constructor(
    readonly status: 400 | 408 | 413,
    message: string,
  ) {
    super(message);
  }
}

/**
 * Decodes percent-escapes in a path value that may span segments (a stream name, a token).
 * A malformed escape is the client's mistake (400), and so is an escaped control byte: no
 * name, id or token contains one, and it would reach logs and backends as it is.
 */
export function decodePathText(raw: string): string {
  let decoded: string;
  try {
    decoded = decodeURIComponent(raw);
  } catch {
    throw new HttpError(400, 'malformed percent-escape in the path');
  }
  if (/[\x00-\x1f\x7f]/.test(decoded)) throw new HttpError(400, 'escaped control byte in the path');
  return decoded;
}

/**
 * Decodes one path segment for a `{param}`: also refuses an escaped `/` or `\`, which an id
 * or key never contains and which would let the parameter name something other than the
 * one segment the route matched.
 */
export function decodeSegment(raw: string): string {
  const decoded = decodePathText(raw);
  if (/[/\\]/.test(decoded)) throw new HttpError(400, 'escaped separator in a path segment');
  return decoded;
}

export class HttpRouter {
  private readonly routes: Route[] = [];

  /** The registered routes' methods and matchers, in order (the OpenAPI test walks them). */
  list(): readonly { methods: readonly string[]; match: RouteMatcher }[] {
    return this.routes;
  }

  add(methods: string | readonly string[], match: RouteMatcher, handler: RouteHandler): void {
    this.routes.push({ methods: typeof methods === 'string' ? [methods] : methods, match, handler });
  }

  /**
   * Finds the handler for a request; `methodMismatch` tells a 405 from a 404. A matcher may
   * throw HttpError for a path it cannot read, which the front answers as such.
   */
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
      params[n] = decodeSegment(m[i + 1] ?? '');
    });
    return params;
  };
}
