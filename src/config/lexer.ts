/**
 * Tokenizer for the Flussonic-style config language (SPEC §2, AUTH-SPEC §8.3).
 *
 * Hand-written because the syntax belongs to Flussonic and no library parses it; it is
 * small enough that a lexer plus a recursive block parser is clearer than a generator.
 * The lexer never throws: it turns any input (even random bytes) into tokens plus
 * positioned errors, so `check-config` can report several problems in one run.
 */

export type TokenKind = 'word' | 'semi' | 'lbrace' | 'rbrace';

export interface Token {
  kind: TokenKind;
  /** The value with quotes removed and escapes resolved; `;`, `{` or `}` for punctuation. */
  value: string;
  /** Some part of the word was double-quoted, so it cannot be a directive keyword. */
  quoted: boolean;
  /** A quoted part ran to the end of the line; the error is already reported. */
  broken: boolean;
  /** 1-based position of the first character. */
  line: number;
  col: number;
  /** 1-based position just after the last character, for "missing ';'" messages. */
  endLine: number;
  endCol: number;
}

export interface LexError {
  line: number;
  col: number;
  message: string;
}

function isSpace(c: string): boolean {
  return c === ' ' || c === '\t' || c === '\n' || c === '\r' || c === '\f' || c === '\v';
}

function isDelimiter(c: string): boolean {
  return c === ';' || c === '{' || c === '}';
}

export function tokenize(input: string): { tokens: Token[]; errors: LexError[] } {
  const tokens: Token[] = [];
  const errors: LexError[] = [];
  // Editors on Windows save a BOM; it is not part of the first directive.
  const text = input.startsWith('\uFEFF') ? input.slice(1) : input;
  let i = 0;
  let line = 1;
  let col = 1;

  // Advances over one UTF-16 unit, keeping line/col in user-visible characters:
  // CRLF and a lone CR both count as one line break, a surrogate pair as one column.
  const advance = (): string => {
    const c = text[i] ?? '';
    i++;
    if (c === '\n') {
      line++;
      col = 1;
    } else if (c === '\r') {
      if (text[i] !== '\n') {
        line++;
        col = 1;
      }
    } else {
      const code = c.charCodeAt(0);
      if (!(code >= 0xdc00 && code <= 0xdfff && i >= 2 && isHighSurrogate(text.charCodeAt(i - 2)))) col++;
    }
    return c;
  };

  while (i < text.length) {
    const c = text[i] ?? '';
    if (isSpace(c)) {
      advance();
      continue;
    }
    // `#` opens a comment only where a token could start, so `http://h/#frag` stays one word.
    if (c === '#') {
      while (i < text.length && text[i] !== '\n' && text[i] !== '\r') advance();
      continue;
    }
    const startLine = line;
    const startCol = col;
    if (isDelimiter(c)) {
      advance();
      tokens.push({
        kind: c === ';' ? 'semi' : c === '{' ? 'lbrace' : 'rbrace',
        value: c,
        quoted: false,
        broken: false,
        line: startLine,
        col: startCol,
        endLine: line,
        endCol: col,
      });
      continue;
    }
    // A word runs to whitespace or punctuation; quoted parts may sit anywhere inside it
    // (`"Mozilla/5.0 (X11)"`, `bearer="a b"`) and are concatenated shell-style.
    let value = '';
    let quoted = false;
    let broken = false;
    while (i < text.length) {
      const d = text[i] ?? '';
      if (isSpace(d) || isDelimiter(d)) break;
      if (d !== '"') {
        value += advance();
        continue;
      }
      quoted = true;
      const qLine = line;
      const qCol = col;
      advance();
      let closed = false;
      while (i < text.length) {
        const e = text[i] ?? '';
        // Strings do not span lines: stopping at the line end lets the rest of the file
        // be checked instead of swallowing it into one runaway string.
        if (e === '\n' || e === '\r') break;
        advance();
        if (e === '"') {
          closed = true;
          break;
        }
        if (e === '\\' && (text[i] === '"' || text[i] === '\\')) {
          value += advance();
          continue;
        }
        value += e;
      }
      if (!closed) {
        broken = true;
        errors.push({ line: qLine, col: qCol, message: 'unterminated string' });
        break;
      }
    }
    tokens.push({
      kind: 'word',
      value,
      quoted,
      broken,
      line: startLine,
      col: startCol,
      endLine: line,
      endCol: col,
    });
  }
  return { tokens, errors };
}

function isHighSurrogate(code: number): boolean {
  return code >= 0xd800 && code <= 0xdbff;
}
