/** Stream-name rules shared by the config and every adapter (SPEC §4). */
import { streamNameProblem } from '../config/stream-fields.js';

/** Whether a name is `[A-Za-z0-9._-]` segments joined by `/`, not starting with a reserved segment. */
export function isValidStreamName(name: string): boolean {
  return streamNameProblem(name) === undefined;
}
