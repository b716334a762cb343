/**
 * What every part of the meaning stage shares: the list of positioned errors, the checks
 * on a statement's shape (argument count, block or not) with their fixed wording, and the
 * literal forms of the config language (numbers, booleans, lists, addresses). Kept in one
 * place so that a `timeout=` option and a `segment_duration` line are judged and worded the
 * same way whichever module reads them.
 */
import { isIP } from 'node:net';
import { unknownDirectiveMessage, type DirectiveCtx } from './directives.js';
import type { Token } from './lexer.js';
import type { Block, Stmt } from './syntax.js';
import type { ConfigError, SourceLoc } from './types.js';

/** Names of templates and auth backends (stream names have their own rule, streamNameProblem). */
export const IDENT = /^[A-Za-z0-9._-]+$/;

export class Checker {
  readonly errors: ConfigError[] = [];

  constructor(readonly file: string) {}

  err(t: Token | SourceLoc, message: string): void {
    this.errors.push({ file: this.file, line: t.line, col: t.col, message });
  }

  loc(t: Token): SourceLoc {
    return { file: this.file, line: t.line, col: t.col };
  }

  /** Checks argument count; reports at the directive (too few) or first extra word. */
  arity(s: Stmt, min: number, max: number, usage: string): boolean {
    const head = s.words[0] as Token;
    const n = s.words.length - 1;
    if (n < min) {
      this.err(head, `'${head.value}' needs ${describeCount(min, max)} (usage: ${usage})`);
      return false;
    }
    if (n > max) {
      const extra = s.words[max + 1] as Token;
      this.err(extra, `'${head.value}' takes ${describeCount(min, max)}, got ${n} (usage: ${usage})`);
      return false;
    }
    return true;
  }

  noBlock(s: Stmt): boolean {
    if (s.block === undefined) return true;
    this.err(s.block.open, `'${s.words[0]?.value ?? ''}' does not take a block`);
    return false;
  }

  needBlock(s: Stmt, usage: string): s is Stmt & { block: Block } {
    if (s.block !== undefined) return true;
    this.err(s.words[0] as Token, `'${s.words[0]?.value ?? ''}' needs a block (usage: ${usage})`);
    return false;
  }

  unknown(ctx: DirectiveCtx, head: Token): void {
    this.err(head, unknownDirectiveMessage(ctx, head));
  }

  bool(tok: Token, key: string, value: string): boolean | undefined {
    if (value === 'true') return true;
    if (value === 'false') return false;
    this.err(tok, `${key} must be true or false, got '${value}'`);
    return undefined;
  }

  commaList(tok: Token, key: string, value: string): string[] | undefined {
    const list = value.split(',');
    if (list.some((x) => x === '')) {
      this.err(tok, `${key} has an empty element in '${value}' (comma-separated, no spaces)`);
      return undefined;
    }
    return list;
  }
}

function describeCount(min: number, max: number): string {
  const plural = (n: number): string => `${n} argument${n === 1 ? '' : 's'}`;
  if (min === max) return min === 0 ? 'no arguments' : plural(min);
  if (max === Infinity) return `at least ${plural(min)}`;
  return `${min} to ${max} arguments`;
}

/** A number as the config language writes it: plain decimal, no sign or exponent. */
export function decimal(s: string): number {
  return /^(\d+(\.\d*)?|\.\d+)$/.test(s) ? Number(s) : NaN;
}

export function isPositiveNumber(s: string): boolean {
  const n = decimal(s);
  return n > 0 && Number.isFinite(n);
}

export function isPositiveInteger(s: string): boolean {
  return /^[1-9]\d*$/.test(s) && Number.isSafeInteger(Number(s));
}

/**
 * Validates an IP or CIDR and returns it normalised, expanding the abbreviated prefix
 * form of AUTH-SPEC §6.4 (`172.16/24` → `172.16.0.0/24`) so matchers see one shape.
 */
export function normalizeIpOrCidr(s: string, allowAbbreviated: boolean): string | undefined {
  const parts = s.split('/');
  if (parts.length > 2) return undefined;
  let addr = parts[0] ?? '';
  const prefix = parts[1];
  let family = isIP(addr);
  if (family === 0 && allowAbbreviated && prefix !== undefined && /^\d{1,3}(\.\d{1,3}){0,2}$/.test(addr)) {
    const octets = addr.split('.');
    if (octets.some((o) => Number(o) > 255)) return undefined;
    while (octets.length < 4) octets.push('0');
    addr = octets.join('.');
    family = 4;
  }
  if (family === 0) return undefined;
  if (prefix === undefined) return addr;
  if (!/^\d{1,3}$/.test(prefix) || Number(prefix) > (family === 4 ? 32 : 128)) return undefined;
  return `${addr}/${Number(prefix)}`;
}
