/**
 * Bounds the HTTP front puts on a request before and while a route handles it: which request
 * targets are refused outright, and how much of an API body is read and for how long.
 */
import type { IncomingMessage } from 'node:http';
import { countLimitHit, limitMs, type Limits } from '../core/limits.js';
import { HttpError } from './router.js';

/**
 * A whole request body for an API route: at most `request_body_bytes` (else 413), complete
 * within `request_head_timeout` (else 408), so a client cannot hold a request open by
 * trickling a body any more than by trickling a head.
 */
export async function readBody(req: IncomingMessage, limits: Limits): Promise<Buffer> {
  const max = limits.request_body_bytes;
  const declared = Number(req.headers['content-length'] ?? 0);
  if (declared > max) {
    countLimitHit('request_body_bytes');
    throw new HttpError(413, `request body over ${max} bytes`);
  }
  const chunks: Buffer[] = [];
  let size = 0;
  let timedOut = false;
  const deadline = setTimeout(
    () => {
      timedOut = true;
      req.destroy();
    },
    limitMs(limits, 'request_head_timeout'),
  );
  try {
    for await (const chunk of req) {
      const b = chunk as Buffer;
      size += b.length;
      if (size > max) {
        countLimitHit('request_body_bytes');
        throw new HttpError(413, `request body over ${max} bytes`);
      }
      chunks.push(b);
    }
  } catch (err) {
    if (err instanceof HttpError) throw err;
    if (timedOut) {
      countLimitHit('request_head_timeout');
      throw new HttpError(408, 'request body not complete in time');
    }
    throw new HttpError(400, 'request body aborted');
  } finally {
    clearTimeout(deadline);
  }
  return Buffer.concat(chunks);
}

/**
 * Why a request target is refused before routing, or undefined. WHATWG URL parsing would
 * quietly resolve `..`, `%2e%2e` and `\` and route the result, so `/live/x/../../api` would
 * land somewhere its writer did not name; no player or API client sends such paths, so they
 * are refused outright. Per segment: a malformed escape, a dot segment (plain or escaped),
 * or an escaped backslash or control byte. An escaped `/` stays allowed because a token in a
 * `/ks/<KS>/` segment may hold one; single-segment parameters refuse it when decoded.
 */
export function pathProblem(target: string): string | undefined {
  const absolute = /^[A-Za-z][A-Za-z0-9+.-]*:\/\/[^/?#]*/.exec(target);
  const rest = absolute ? target.slice(absolute[0].length) || '/' : target;
  const path = rest.split(/[?#]/, 1)[0] ?? '';
  if (!path.startsWith('/')) return 'not an absolute path';
  if (/[\\\x00-\x20\x7f]/.test(path)) return 'backslash, space or control byte in the path';
  for (const segment of path.split('/')) {
    let decoded: string;
    try {
      decoded = decodeURIComponent(segment);
    } catch {
      return 'malformed percent-escape in the path';
    }
    if (decoded === '.' || decoded === '..') return 'dot segment in the path';
    if (/[\\\x00-\x1f\x7f]/.test(decoded)) return 'escaped backslash or control byte in the path';
  }
  return undefined;
}
