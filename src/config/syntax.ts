/**
 * Stage 1 of the config parser: tokens to a tree of statements and blocks, with no idea yet
 * of what any directive means. It lives apart from the meaning stage because its whole job
 * is recovery — a lost `;` or `}` must cost one error, not one per following line — and
 * that logic is easier to get right when nothing else is in the way.
 */
import { childCtx, isKeyword, type Ctx } from './directives.js';
import type { Token } from './lexer.js';

export interface Stmt {
  /** Non-empty; words[0] is the directive name. */
  words: Token[];
  block?: Block;
  /** Holds an unterminated string; already reported, so its meaning is not checked. */
  broken: boolean;
}

export interface Block {
  open: Token;
  stmts: Stmt[];
}

/** The grammar needs three levels (stream → protocols → switch); more is a mistake. */
const MAX_DEPTH = 8;

/** Builds the statement tree of a whole file, reporting every structural problem and carrying on. */
export function parseStatements(
  tokens: Token[],
  report: (line: number, col: number, message: string) => void,
): Stmt[] {
  return new SyntaxParser(tokens, report).parseFile();
}

class SyntaxParser {
  private pos = 0;

  constructor(
    private readonly tokens: Token[],
    private readonly report: (line: number, col: number, message: string) => void,
  ) {}

  parseFile(): Stmt[] {
    return this.parseBlock('global', 0);
  }

  private peek(offset = 0): Token | undefined {
    return this.tokens[this.pos + offset];
  }

  private startsLine(t: Token): boolean {
    const prev = this.tokens[this.pos - 1];
    return prev === undefined || prev.endLine < t.line;
  }

  /**
   * A forgotten `}` would otherwise swallow every later stream into the open block and
   * produce one confusing error per line; a top-level-only directive at the start of a
   * line inside a block is taken as the point where the block should have closed.
   */
  private startsTopLevel(t: Token): boolean {
    if (t.kind !== 'word' || t.quoted || !this.startsLine(t)) return false;
    if (t.value === 'stream' || t.value === 'auth_backend') return true;
    return t.value === 'template' && this.peek(1)?.kind === 'word' && this.peek(2)?.kind === 'lbrace';
  }

  private parseBlock(ctx: Ctx, depth: number): Stmt[] {
    const stmts: Stmt[] = [];
    for (;;) {
      const t = this.peek();
      if (t === undefined) return stmts;
      if (t.kind === 'rbrace') {
        if (depth > 0) return stmts;
        this.report(t.line, t.col, "unexpected '}' with no open block");
        this.pos++;
      } else if (t.kind === 'semi') {
        // `};` and `;;` are harmless and common in hand-edited files.
        this.pos++;
      } else if (t.kind === 'lbrace') {
        this.report(t.line, t.col, "unexpected '{': a block must follow a directive name");
        this.skipBlock();
      } else {
        if (depth > 0 && this.startsTopLevel(t)) return stmts;
        stmts.push(this.parseStmt(ctx, depth));
      }
    }
  }

  /** Skips a `{ … }` without recursing, so hostile nesting cannot exhaust the stack. */
  private skipBlock(): void {
    let level = 0;
    while (this.pos < this.tokens.length) {
      const k = this.tokens[this.pos++]?.kind;
      if (k === 'lbrace') level++;
      else if (k === 'rbrace' && --level === 0) return;
    }
  }

  private missingSemi(last: Token): void {
    // The lexer already reported the broken string that ate the `;`.
    if (!last.broken) this.report(last.endLine, last.endCol, `missing ';' after '${last.value}'`);
  }

  private parseStmt(ctx: Ctx, depth: number): Stmt {
    const first = this.peek();
    if (first === undefined || first.kind !== 'word') throw new Error('parseStmt at a non-word');
    const words: Token[] = [first];
    this.pos++;
    for (;;) {
      const t = this.peek();
      const last = words[words.length - 1] ?? first;
      if (t === undefined) {
        this.missingSemi(last);
        return { words, broken: words.some((w) => w.broken) };
      }
      if (t.kind === 'semi') {
        this.pos++;
        return { words, broken: words.some((w) => w.broken) };
      }
      if (t.kind === 'rbrace') {
        this.missingSemi(last);
        return { words, broken: words.some((w) => w.broken) };
      }
      if (t.kind === 'lbrace') {
        if (depth >= MAX_DEPTH) {
          this.report(t.line, t.col, `blocks nested more than ${MAX_DEPTH} deep`);
          this.skipBlock();
          return { words, broken: true };
        }
        this.pos++;
        const inner = childCtx(ctx, first.value);
        const stmts = this.parseBlock(inner, depth + 1);
        if (this.peek()?.kind === 'rbrace') this.pos++;
        else this.report(t.line, t.col, `unterminated block: '{' of '${first.value}' is never closed`);
        return { words, block: { open: t, stmts }, broken: words.some((w) => w.broken) };
      }
      // A directive keyword at the start of a new line almost always means the previous
      // line lost its `;`; splitting here keeps the next directive's own checks.
      if (t.line > last.endLine && (isKeyword(ctx, t) || (depth > 0 && this.startsTopLevel(t)))) {
        this.missingSemi(last);
        return { words, broken: words.some((w) => w.broken) };
      }
      words.push(t);
      this.pos++;
    }
  }
}
