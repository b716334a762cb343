/**
 * Saving fuzz inputs: JSON that keeps Buffers, non-finite numbers and undefined (plain JSON
 * loses all three), and the raw bytes or text next to it when the input has one, ready to be
 * copied to test/fixtures/fuzz/<target>/ as a regression input.
 */
import { mkdirSync, writeFileSync } from 'node:fs';

export const ARTIFACTS = new URL('../../test-artifacts/fuzz/', import.meta.url);

export function serializeInput(value: unknown): string {
  return JSON.stringify(
    value,
    function replacer(this: Record<string, unknown>, key: string, v: unknown) {
      const original = this[key];
      if (original instanceof Uint8Array) return { $base64: Buffer.from(original).toString('base64') };
      if (typeof original === 'number' && !Number.isFinite(original)) return { $number: String(original) };
      if (original === undefined && key !== '') return { $undefined: true };
      return v;
    },
    1,
  );
}

/** The primary bytes of an input: the input itself, or its `bytes` (or other single Buffer/string) field. */
function primary(value: unknown): Buffer | string | undefined {
  if (typeof value === 'string' || Buffer.isBuffer(value)) return value;
  if (value !== null && typeof value === 'object') {
    const fields = Object.values(value).filter((v) => typeof v === 'string' || Buffer.isBuffer(v));
    const bytes = (value as Record<string, unknown>)['bytes'];
    if (Buffer.isBuffer(bytes)) return bytes;
    if (fields.length === 1) return fields[0] as Buffer | string;
  }
  return undefined;
}

/** Writes `<stem>.json` (and `<stem>.bin`/`.txt`) under test-artifacts/fuzz/<target>/; returns the paths. */
export function saveInput(target: string, stem: string, value: unknown): string[] {
  const dir = new URL(`${target}/`, ARTIFACTS);
  mkdirSync(dir, { recursive: true });
  const paths: string[] = [];
  const json = new URL(`${stem}.json`, dir);
  writeFileSync(json, serializeInput(value));
  paths.push(json.pathname);
  const raw = primary(value);
  if (raw !== undefined) {
    const file = new URL(`${stem}.${typeof raw === 'string' ? 'txt' : 'bin'}`, dir);
    writeFileSync(file, raw);
    paths.push(file.pathname);
  }
  return paths;
}
