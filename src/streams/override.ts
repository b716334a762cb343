/**
 * Backend config overrides (AUTH-SPEC §8.1): an auth backend's `{"config": {…}}` changes a
 * stream for every viewer. This module decides everything about one — whether the JSON is
 * acceptable, what the stream's config becomes, and what that change requires (a new input,
 * closing the sessions of protocols switched off) — so Stream only carries it out. Values
 * are checked by the same rules as the config file's stream block (config/stream-fields.ts):
 * a backend cannot give a stream a setting the file would refuse. Pure: no I/O, no clock.
 */
import { isDeepStrictEqual } from 'node:util';
import { protocolAllowed } from '../config/resolve.js';
import {
  checkInput,
  checkPassword,
  checkSegmentDuration,
  isProtocolKey,
  type Checked,
} from '../config/stream-fields.js';
import type { FileRoots, ProtocolsConfig, StreamConfig } from '../config/types.js';
import { PROTOS, type Proto } from '../core/proto.js';

/** What backends have set on a stream, already checked; a field left out comes from the config file. */
export interface StreamOverride {
  inputs?: string[];
  protocols?: ProtocolsConfig;
  password?: string;
  segmentDuration?: number;
}

export type OverrideResult =
  | { ok: false; error: string }
  | {
      ok: true;
      /** The override to keep; undefined when nothing is overridden any more. */
      override: StreamOverride | undefined;
      effective: StreamConfig;
      /** False when the effective config is the same as before: nothing to apply. */
      changed: boolean;
      /** The inputs differ, so ingest must restart from the new ones (AUTH-SPEC §8.1 step 4). */
      restartInput: boolean;
      /** Play protocols served before and not now; their sessions must close (step 5). */
      closedProtocols: Proto[];
    };

/** What Stream.applyOverride reports to its caller. */
export type OverrideOutcome =
  | { ok: false; error: string }
  | { ok: true; changed: boolean; restartInput: boolean; closedProtocols: Proto[] };

/**
 * Merges a backend's raw `config` object into the stream's current override. Keys are
 * replaced wholesale, `null` deletes a key, and an unknown key or a bad value refuses the
 * whole object, leaving the stream as it was. `files` are the config's file roots: a
 * backend may not point a `file://` input anywhere the config file could not.
 */
export function mergeOverride(
  base: StreamConfig,
  current: StreamOverride | undefined,
  partial: unknown,
  files: FileRoots,
): OverrideResult {
  if (!isObject(partial)) return { ok: false, error: 'override config must be a JSON object' };
  const next: StreamOverride = { ...current };
  for (const [key, value] of Object.entries(partial)) {
    const problem = setKey(next, key, value, files);
    if (problem !== undefined) return { ok: false, error: problem };
  }
  const before = withOverride(base, current);
  const after = withOverride(base, next);
  if (isDeepStrictEqual(before, after)) {
    // Keeping the old override, not an equivalent new one, so repeating a grant is a no-op.
    return {
      ok: true,
      override: current,
      effective: before,
      changed: false,
      restartInput: false,
      closedProtocols: [],
    };
  }
  return {
    ok: true,
    override: Object.keys(next).length > 0 ? next : undefined,
    effective: after,
    changed: true,
    restartInput: !isDeepStrictEqual(before.inputs, after.inputs),
    closedProtocols: PROTOS.filter(
      (p) => protocolAllowed(before.protocols, p) && !protocolAllowed(after.protocols, p),
    ),
  };
}

/** The config a stream runs with: the configured one with the override's fields in place. */
export function withOverride(base: StreamConfig, o: StreamOverride | undefined): StreamConfig {
  if (o === undefined) return base;
  const c: StreamConfig = { ...base };
  if (o.inputs !== undefined) c.inputs = o.inputs;
  if (o.protocols !== undefined) c.protocols = o.protocols;
  if (o.password !== undefined) c.password = o.password;
  if (o.segmentDuration !== undefined) c.segmentDuration = o.segmentDuration;
  return c;
}

/** Applies one key of the backend's object to `o`; returns why it is refused, if it is. */
function setKey(o: StreamOverride, key: string, value: unknown, files: FileRoots): string | undefined {
  switch (key) {
    case 'inputs':
      return setField(o, 'inputs', value, (v) => readInputs(v, files));
    case 'protocols':
      return setField(o, 'protocols', value, readProtocols);
    case 'password':
      return setField(o, 'password', value, (v) =>
        typeof v === 'string' ? checkPassword(v) : { ok: false, problem: 'password must be a string' },
      );
    case 'segment_duration':
      // JSON has numbers, so a string such as "2" is not one.
      return setField(o, 'segmentDuration', value, (v) =>
        typeof v === 'number' ? checkSegmentDuration(v) : checkSegmentDuration(NaN, JSON.stringify(v)),
      );
    default:
      return `override key '${key}' is not supported`;
  }
}

function setField<K extends keyof StreamOverride>(
  o: StreamOverride,
  field: K,
  value: unknown,
  read: (v: unknown) => Checked<NonNullable<StreamOverride[K]>>,
): string | undefined {
  if (value === null) {
    delete o[field];
    return undefined;
  }
  const r = read(value);
  if (!r.ok) return r.problem;
  o[field] = r.value;
  return undefined;
}

/**
 * `["fake://fake"]` or `[{"url": "fake://fake"}]` (AUTH-SPEC §8.1). Other keys of an input
 * object are Flussonic input options that streamgate does not implement; they are ignored.
 */
function readInputs(v: unknown, files: FileRoots): Checked<string[]> {
  if (!Array.isArray(v) || v.length === 0) {
    return { ok: false, problem: 'inputs must be a non-empty array of URLs or {"url": URL} objects' };
  }
  const urls: string[] = [];
  for (const [i, item] of v.entries()) {
    const url = typeof item === 'string' ? item : isObject(item) ? item['url'] : undefined;
    if (typeof url !== 'string') {
      return { ok: false, problem: `inputs[${i}] must be a URL or an object with a "url" string` };
    }
    const r = checkInput(url, files);
    if (!r.ok) return r;
    urls.push(r.value);
  }
  return { ok: true, value: urls };
}

/** `{"hls": false, "whitelist": true}` (AUTH-SPEC §8.2): the same names and meaning as a `protocols {}` block. */
function readProtocols(v: unknown): Checked<ProtocolsConfig> {
  if (!isObject(v)) return { ok: false, problem: 'protocols must be an object of true/false switches' };
  const p: ProtocolsConfig = { whitelist: false, flags: {} };
  for (const [name, on] of Object.entries(v)) {
    if (!isProtocolKey(name)) return { ok: false, problem: `unknown protocol '${name}' in protocols` };
    if (typeof on !== 'boolean') {
      return { ok: false, problem: `protocols.${name} must be true or false, got ${JSON.stringify(on)}` };
    }
    if (name === 'whitelist') p.whitelist = on;
    else p.flags[name] = on;
  }
  return { ok: true, value: p };
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
