/**
 * The rules for the stream-block fields that can be set two ways: written in the config file,
 * or sent by an auth backend as a config override (AUTH-SPEC §8.1). Both paths call these
 * functions, so a backend can never give a stream a value the config file would refuse.
 * Pure: each takes a typed value and returns it checked, or the problem in words; the caller
 * decides where the problem is reported (a `FILE:LINE:COL` error, or a refused override).
 */
import { PROTOCOL_SWITCHES, suggest } from './directives.js';
import type { ProtocolSwitch } from './types.js';

export type Checked<T> = { ok: true; value: T } | { ok: false; problem: string };

export const INPUT_SCHEMES: readonly string[] = [
  'publish',
  'fake',
  'file',
  'rtmp',
  'rtsp',
  'rtsp2',
  'udp',
  'tshttp',
  'http',
  'https',
  'hls',
  'srt',
];

export const RESERVED_FIRST_SEGMENTS: readonly string[] = ['api', 'admin', 'metrics', 'health', 'static'];

const NAME_SEGMENT = /^[A-Za-z0-9._-]+$/;

/** Why a stream name (or prefix) is refused, or undefined when it is fine. */
export function streamNameProblem(name: string): string | undefined {
  if (name === '') return 'is empty';
  const segments = name.split('/');
  for (const s of segments) {
    if (s === '') return "has an empty segment (no leading, trailing or double '/')";
    if (!NAME_SEGMENT.test(s)) return 'may only contain letters, digits, ".", "-", "_" and "/"';
    if (s === '.' || s === '..') return "may not contain '.' or '..' segments";
  }
  const head = segments[0] ?? '';
  if (RESERVED_FIRST_SEGMENTS.includes(head)) return `may not start with '${head}' (reserved)`;
  return undefined;
}

/** `input URL`: SCHEME://… with a scheme we can ingest, and something after `://` except for `publish://`. */
export function checkInput(url: string): Checked<string> {
  const m = /^([A-Za-z][A-Za-z0-9+.-]*):\/\/([\s\S]*)$/.exec(url);
  const scheme = m?.[1]?.toLowerCase();
  if (!m || scheme === undefined) {
    return {
      ok: false,
      problem: `bad input URL '${url}' (expected SCHEME://…, e.g. publish://, fake://fake, file://PATH)`,
    };
  }
  if (!INPUT_SCHEMES.includes(scheme)) {
    const guess = suggest(scheme, INPUT_SCHEMES);
    return {
      ok: false,
      problem: `unknown input scheme '${scheme}://'${guess ? `; did you mean '${guess}://'?` : ''}`,
    };
  }
  if (scheme !== 'publish' && (m[2] ?? '') === '') {
    return { ok: false, problem: `input '${url}' has nothing after '://'` };
  }
  return { ok: true, value: url };
}

/** `password SECRET` (AUTH-SPEC §7.3): an empty one would let anyone publish who sends `?password=`. */
export function checkPassword(secret: string): Checked<string> {
  if (secret === '') return { ok: false, problem: 'password must not be empty' };
  return { ok: true, value: secret };
}

/**
 * `segment_duration SECONDS`: positive and finite. `written` is the value as the user wrote
 * it, for the message; the config file passes NaN for text that is not a number at all.
 */
export function checkSegmentDuration(seconds: number, written = String(seconds)): Checked<number> {
  if (!(seconds > 0 && Number.isFinite(seconds))) {
    return { ok: false, problem: `segment_duration must be a positive number, got '${written}'` };
  }
  return { ok: true, value: seconds };
}

/** The names a `protocols` block or object may set: `whitelist` and the switches of AUTH-SPEC §8.2. */
export function isProtocolKey(name: string): name is 'whitelist' | ProtocolSwitch {
  return name === 'whitelist' || (PROTOCOL_SWITCHES as readonly string[]).includes(name);
}
