/**
 * The fuzz targets, one registry for `npm run fuzz` (test/fuzz/run.ts) and for the short
 * fixed-seed run in `npm test` (test/unit/fuzz.test.ts).
 *
 * A target is a fast-check arbitrary plus a check that throws when the property does not
 * hold for one input. Inputs are plain data (Buffers, strings, numbers, arrays, records) so a
 * failing one can be printed and saved.
 */
import fc from 'fast-check';
import { amf0Targets } from './amf0.fuzz.js';
import { codecTargets } from './codecs.fuzz.js';
import { configTargets } from './config.fuzz.js';
import { flvTargets } from './flv.fuzz.js';
import { mpegtsTargets } from './mpegts.fuzz.js';
import { mysqlTargets } from './mysql.fuzz.js';
import { rtmpTargets } from './rtmp.fuzz.js';
import { rtpTargets } from './rtp.fuzz.js';
import { rtpCodecTargets } from './rtp-codecs.fuzz.js';
import { rtspTargets } from './rtsp.fuzz.js';
import { tokenTargets } from './tokens.fuzz.js';
import type { FuzzTarget } from './support.js';

export type { FuzzTarget } from './support.js';

export const targets: readonly FuzzTarget[] = [
  ...rtmpTargets,
  ...amf0Targets,
  ...rtspTargets,
  ...rtpTargets,
  ...rtpCodecTargets,
  ...mpegtsTargets,
  ...flvTargets,
  ...codecTargets,
  ...configTargets,
  ...tokenTargets,
  ...mysqlTargets,
];

export function findTarget(name: string): FuzzTarget | undefined {
  return targets.find((t) => t.name === name);
}

/**
 * The fast-check property of a target. `onRun` is called before each execution, so a runner
 * can tell which input it was on when an execution never returns.
 */
export function propertyOf(
  target: FuzzTarget,
  onRun?: (input: unknown) => void,
): fc.IPropertyWithHooks<[unknown]> {
  return fc.property(target.arbitrary, (input) => {
    onRun?.(input);
    target.check(input);
  });
}
