/** Stream-name rules shared by the config and every adapter (SPEC §4). */

/** First path segments that belong to the HTTP API and UI, so no stream may use them. */
export const RESERVED_FIRST_SEGMENTS = new Set(['api', 'admin', 'metrics', 'health', 'static']);

const SEGMENT = /^[A-Za-z0-9._-]+$/;

/** Whether a name is `[A-Za-z0-9._-]` segments joined by `/`, not starting with a reserved segment. */
export function isValidStreamName(name: string): boolean {
  if (name.length === 0 || name.length > 512) return false;
  const segments = name.split('/');
  if (RESERVED_FIRST_SEGMENTS.has(segments[0] ?? '')) return false;
  return segments.every((s) => SEGMENT.test(s) && s !== '.' && s !== '..');
}
