/**
 * The rules for the stream-block fields that can be set two ways: written in the config file,
 * or sent by an auth backend as a config override (AUTH-SPEC §8.1). Both paths call these
 * functions, so a backend can never give a stream a value the config file would refuse.
 * Pure: each takes a typed value and returns it checked, or the problem in words; the caller
 * decides where the problem is reported (a `FILE:LINE:COL` error, or a refused override).
 */
import { isAbsolute, relative, resolve, sep } from 'node:path';
import { PROTOCOL_SWITCHES, suggest } from './directives.js';
import type { DvrConfig, FileRoots, ProtocolSwitch } from './types.js';

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

/**
 * Longest stream name (SPEC §4 characters are ASCII, so bytes and characters agree). Names
 * reach logs, history rows, metrics labels and backend queries, and an unauthenticated
 * request may name any stream, so the bound is checked before anything else is done with
 * one; 255 is the usual filename limit and far above any real `app/stream/rendition` name.
 */
export const MAX_STREAM_NAME_BYTES = 255;

/** Why a stream name (or prefix) is refused, or undefined when it is fine. */
export function streamNameProblem(name: string): string | undefined {
  if (name === '') return 'is empty';
  if (name.length > MAX_STREAM_NAME_BYTES) {
    return `is longer than ${MAX_STREAM_NAME_BYTES} characters (${name.length})`;
  }
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

/** Whether `path` (absolute, normalised) is `root` or lies below it. */
function isUnder(path: string, root: string): boolean {
  const rel = relative(root, path);
  return rel === '' || (rel !== '..' && !rel.startsWith(`..${sep}`) && !isAbsolute(rel));
}

/**
 * `file://PATH`: everything after `://` is the path, taken literally (no percent-decoding,
 * as ffmpeg reads it). A relative path is resolved against the config file's directory, and
 * the result must lie under a `file_root`. The checked URL names the absolute path, so the
 * file ffmpeg opens is the file that was checked, whatever the process's working directory,
 * and a name like `concat:…` can never be read by ffmpeg as a protocol of its own.
 */
function checkFileInput(url: string, path: string, files: FileRoots): Checked<string> {
  if (/[\x00-\x1f\x7f]/.test(path)) return { ok: false, problem: `input '${url}' has a control character` };
  const absolute = resolve(files.base, path);
  if (!files.roots.some((root) => isUnder(absolute, root))) {
    return {
      ok: false,
      problem: `input '${url}' is outside the file roots (${files.roots.join(', ')}); add a 'file_root' for it`,
    };
  }
  return { ok: true, value: `file://${absolute}` };
}

/**
 * `input URL`: SCHEME://… with a scheme we can ingest, and something after `://` except for
 * `publish://`; a `file://` input must lie under a file root and comes back absolute.
 */
export function checkInput(url: string, files: FileRoots): Checked<string> {
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
  if (scheme === 'file') return checkFileInput(url, m[2] ?? '', files);
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

const DEPTH_UNITS: Record<string, number> = { '': 1, s: 1, m: 60, h: 3600, d: 86_400 };
const SIZE_UNITS: Record<string, number> = { K: 2 ** 10, M: 2 ** 20, G: 2 ** 30, T: 2 ** 40 };

/**
 * `dvr PATH [DEPTH] [SIZE]`: depth in seconds or with a lower-case unit (`90m`, `24h`, `7d`),
 * size with an upper-case one (`500M`, `10G`, `10GB`). The case tells `m` (minutes) from `M`
 * (mebibytes), as Flussonic's own `dvr` line does; either limit may be left out.
 */
export function checkDvr(words: readonly string[]): Checked<DvrConfig> {
  const [root, ...limits] = words;
  if (root === undefined || root === '') {
    return { ok: false, problem: 'dvr needs a directory: dvr PATH [DEPTH] [SIZE]' };
  }
  if (root.includes('\0')) return { ok: false, problem: 'dvr directory must not contain NUL' };
  const dvr: DvrConfig = { root };
  for (const w of limits) {
    const depth = /^(\d+(?:\.\d+)?)([smhd]?)$/.exec(w);
    const size = /^(\d+(?:\.\d+)?)([KMGT])B?$/.exec(w);
    if (depth && dvr.depthSec === undefined) {
      const sec = Math.round(Number(depth[1]) * (DEPTH_UNITS[depth[2] ?? ''] ?? 1));
      if (sec < 1) return { ok: false, problem: `dvr depth must be at least 1 second, got '${w}'` };
      dvr.depthSec = sec;
    } else if (size && dvr.maxBytes === undefined) {
      const bytes = Math.round(Number(size[1]) * (SIZE_UNITS[size[2] ?? ''] ?? 1));
      if (bytes < 2 ** 20) return { ok: false, problem: `dvr size must be at least 1M, got '${w}'` };
      dvr.maxBytes = bytes;
    } else {
      return {
        ok: false,
        problem: `dvr limit '${w}' is neither a depth (3600, 90m, 24h, 7d) nor a size (500M, 10G), or is given twice`,
      };
    }
  }
  return { ok: true, value: dvr };
}
