/**
 * The read-only guard and the MySQL-to-SQLite translation, pure: one COM_QUERY text in, a plan
 * out. Only SELECT (and WITH/VALUES) ever reach SQLite; the statements clients and GUI tools
 * send to find their way around (SHOW DATABASES/TABLES/COLUMNS/VARIABLES, DESCRIBE, USE, SET,
 * transaction control) are answered here; every other statement is refused with
 * ER_OPTION_PREVENTS_STATEMENT (1290). This is the first of three walls: the worker prepares
 * the statement and refuses it unless SQLite calls it read-only (`Statement.readonly`), and
 * the history database is opened read-only.
 *
 * Translation works on tokens, so nothing inside a string or a quoted name is touched:
 * MySQL string literals (backslash escapes, "double quotes") become SQLite ones, `@@vars`
 * become literals (the result column keeps the name the client wrote), `flussonic.`/
 * `streamgate.` qualifiers are dropped, comments are removed and `/*!…*\/` bodies kept, as
 * MySQL runs them.
 */
import { createTableText, TABLES, tableDef } from './schema.js';
import { TYPE, type Cell, type Column } from './wire/codec.js';
import { ER, sqlError, type Reply } from './wire/machine.js';

export const SCHEMA = 'flussonic';
export const DATABASES = ['flussonic', 'streamgate'] as const;

export interface GuardContext {
  /** The selected database, if any. */
  database: string | undefined;
  /** System variables `@@name` and SHOW VARIABLES answer with. */
  variables: Readonly<Record<string, string | number>>;
}

export type Plan =
  | { kind: 'reply'; reply: Reply }
  | { kind: 'use'; db: string }
  | {
      kind: 'select';
      sql: string;
      /** The live tables it names, whose snapshot must be fresh. */
      live: ('sessions' | 'streams')[];
      /** Result column names to give back their original spelling: [as SQLite names it, as written]. */
      renames: [string, string][];
      /** A column that is only a string literal is named by its value, as MySQL names it: [SQLite name, value]. */
      literals: [string, string][];
    };

type TokKind = 'word' | 'str' | 'bq' | 'num' | 'sysvar' | 'uservar' | 'punct' | 'ws';
interface Tok {
  k: TokKind;
  /** Source text (for `str`: the decoded value). */
  v: string;
}

class SqlSyntax extends Error {}

const ESCAPES: Record<string, string> = { '0': '\0', b: '\b', n: '\n', r: '\r', t: '\t', Z: '\x1a' };

/** MySQL's lexical rules, enough to find statement boundaries, strings and names. */
export function tokenize(sql: string): Tok[] {
  const out: Tok[] = [];
  let i = 0;
  let inExecComment = false;
  const n = sql.length;
  while (i < n) {
    const ch = sql[i] as string;
    const next = sql[i + 1];
    if (/\s/.test(ch)) {
      let j = i + 1;
      while (j < n && /\s/.test(sql[j] as string)) j++;
      out.push({ k: 'ws', v: ' ' });
      i = j;
    } else if (
      ch === '#' ||
      (ch === '-' && next === '-' && (i + 2 >= n || /\s/.test(sql[i + 2] as string)))
    ) {
      const end = sql.indexOf('\n', i);
      i = end < 0 ? n : end + 1;
      out.push({ k: 'ws', v: ' ' });
    } else if (ch === '/' && next === '*') {
      if (sql[i + 2] === '!') {
        // Executable comment: MySQL runs its body (after an optional version number).
        let j = i + 3;
        while (j < n && /\d/.test(sql[j] as string)) j++;
        inExecComment = true;
        i = j;
      } else {
        const end = sql.indexOf('*/', i + 2);
        if (end < 0) throw new SqlSyntax('unterminated comment');
        i = end + 2;
      }
      out.push({ k: 'ws', v: ' ' });
    } else if (ch === '*' && next === '/' && inExecComment) {
      inExecComment = false;
      i += 2;
      out.push({ k: 'ws', v: ' ' });
    } else if (ch === "'" || ch === '"') {
      let j = i + 1;
      let v = '';
      for (;;) {
        if (j >= n) throw new SqlSyntax('unterminated string');
        const c = sql[j] as string;
        if (c === '\\' && j + 1 < n) {
          const e = sql[j + 1] as string;
          v += ESCAPES[e] ?? e;
          j += 2;
        } else if (c === ch) {
          if (sql[j + 1] === ch) {
            v += ch;
            j += 2;
          } else {
            j++;
            break;
          }
        } else {
          v += c;
          j++;
        }
      }
      out.push({ k: 'str', v });
      i = j;
    } else if (ch === '`') {
      let j = i + 1;
      let v = '';
      for (;;) {
        if (j >= n) throw new SqlSyntax('unterminated quoted name');
        if (sql[j] === '`') {
          if (sql[j + 1] === '`') {
            v += '`';
            j += 2;
            continue;
          }
          j++;
          break;
        }
        v += sql[j];
        j++;
      }
      out.push({ k: 'bq', v });
      i = j;
    } else if (ch === '@') {
      const sys = next === '@';
      const m = /^[A-Za-z0-9_$.]*/.exec(sql.slice(i + (sys ? 2 : 1))) as RegExpExecArray;
      const len = (sys ? 2 : 1) + m[0].length;
      out.push({ k: sys ? 'sysvar' : 'uservar', v: sql.slice(i, i + len) });
      i += len;
    } else if (/[0-9]/.test(ch) || (ch === '.' && next !== undefined && /[0-9]/.test(next))) {
      const m = /^(0x[0-9a-fA-F]+|[0-9]*\.?[0-9]+(e[+-]?[0-9]+)?)/i.exec(sql.slice(i)) as RegExpExecArray;
      const len = Math.max(1, m[0].length);
      out.push({ k: 'num', v: sql.slice(i, i + len) });
      i += len;
    } else if (/[A-Za-z_$\u0080-\uffff]/.test(ch)) {
      const m = /^[A-Za-z0-9_$\u0080-\uffff]+/.exec(sql.slice(i)) as RegExpExecArray;
      out.push({ k: 'word', v: m[0] });
      i += m[0].length;
    } else {
      out.push({ k: 'punct', v: ch });
      i++;
    }
  }
  return out;
}

function sqliteString(v: string): string {
  return `'${v.replace(/'/g, "''")}'`;
}

function sqliteName(v: string): string {
  return '`' + v.replace(/`/g, '``') + '`';
}

const readOnlyError = (what: string): Reply => ({
  kind: 'err',
  err: sqlError(
    ER.READ_ONLY,
    `streamgate's SQL endpoint is read-only and cannot execute ${what}; only SELECT, SHOW, DESCRIBE, USE and SET run`,
  ),
});

const ok: Reply = { kind: 'ok' };

function textColumns(...names: string[]): Column[] {
  return names.map((name) => ({ name, type: TYPE.VAR_STRING }));
}

/** SQL LIKE with `%` and `_`, case-insensitive as MySQL's default collation is. */
function likeMatch(pattern: string | undefined, value: string): boolean {
  if (pattern === undefined) return true;
  let re = '';
  for (let i = 0; i < pattern.length; i++) {
    const ch = pattern[i] as string;
    if (ch === '\\' && i + 1 < pattern.length) {
      re += (pattern[++i] as string).replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
    } else if (ch === '%') re += '[\\s\\S]*';
    else if (ch === '_') re += '[\\s\\S]';
    else re += ch.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  }
  return new RegExp(`^${re}$`, 'i').test(value);
}

function isDb(name: string): boolean {
  return DATABASES.some((d) => d === name.toLowerCase());
}

/** A statement's meaningful tokens (no whitespace), with a cursor for the SHOW/DESCRIBE parsers. */
class Words {
  i = 0;
  constructor(readonly toks: Tok[]) {}
  peek(): Tok | undefined {
    return this.toks[this.i];
  }
  /** The next token if it is this keyword (case-insensitive). */
  eat(...words: string[]): string | undefined {
    const t = this.toks[this.i];
    if (t && t.k === 'word' && words.includes(t.v.toUpperCase())) {
      this.i++;
      return t.v.toUpperCase();
    }
    return undefined;
  }
  /** A name: a word or a backquoted name, optionally qualified `db.name` (the db part is returned too). */
  name(): { db?: string; name: string } | undefined {
    const a = this.toks[this.i];
    if (!a || (a.k !== 'word' && a.k !== 'bq' && a.k !== 'str')) return undefined;
    this.i++;
    const dot = this.toks[this.i];
    const b = this.toks[this.i + 1];
    if (dot?.k === 'punct' && dot.v === '.' && b && (b.k === 'word' || b.k === 'bq')) {
      this.i += 2;
      return { db: a.v, name: b.v };
    }
    return { name: a.v };
  }
  /** `LIKE 'pattern'` if present. */
  like(): string | undefined | null {
    if (!this.eat('LIKE')) return undefined;
    const t = this.toks[this.i++];
    return t?.k === 'str' ? t.v : null;
  }
  get done(): boolean {
    return this.i >= this.toks.length;
  }
}

/** Turns one query text into what to do with it. Never throws. */
export function planQuery(sql: string, ctx: GuardContext): Plan {
  let toks: Tok[];
  try {
    toks = tokenize(sql);
  } catch (err) {
    return {
      kind: 'reply',
      reply: {
        kind: 'err',
        err: sqlError(ER.PARSE, `You have an error in your SQL syntax: ${(err as Error).message}`),
      },
    };
  }
  // One statement: a trailing `;` is fine, anything after it is not.
  const semi = toks.findIndex((t) => t.k === 'punct' && t.v === ';');
  if (semi >= 0) {
    if (toks.slice(semi + 1).some((t) => t.k !== 'ws' && !(t.k === 'punct' && t.v === ';'))) {
      return {
        kind: 'reply',
        reply: { kind: 'err', err: sqlError(ER.PARSE, 'Only one statement per query is supported') },
      };
    }
    toks = toks.slice(0, semi);
  }
  const words = toks.filter((t) => t.k !== 'ws');
  const first = words[0];
  if (!first) {
    return {
      kind: 'reply',
      reply: { kind: 'err', err: { code: 1065, state: '42000', message: 'Query was empty' } },
    };
  }
  const head =
    first.k === 'word' ? first.v.toUpperCase() : first.k === 'punct' && first.v === '(' ? 'SELECT' : '';
  switch (head) {
    case 'SELECT':
    case 'WITH':
    case 'VALUES':
      return planSelect(toks, ctx);
    case 'SHOW':
      return { kind: 'reply', reply: planShow(new Words(words.slice(1)), ctx) };
    case 'DESCRIBE':
    case 'DESC':
    case 'EXPLAIN': {
      const w = new Words(words.slice(1));
      const next = w.peek();
      if (
        next?.k === 'word' &&
        ['SELECT', 'WITH', 'FORMAT', 'EXTENDED', 'ANALYZE', 'PARTITIONS'].includes(next.v.toUpperCase())
      ) {
        return { kind: 'reply', reply: notSupported('EXPLAIN') };
      }
      const t = w.name();
      if (!t) {
        return {
          kind: 'reply',
          reply: { kind: 'err', err: sqlError(ER.PARSE, 'DESCRIBE needs a table name') },
        };
      }
      return { kind: 'reply', reply: showColumns(t, w.like(), false) };
    }
    case 'USE': {
      const w = new Words(words.slice(1));
      const t = w.name();
      if (!t || !w.done) {
        return {
          kind: 'reply',
          reply: { kind: 'err', err: sqlError(ER.PARSE, 'USE needs a database name') },
        };
      }
      return { kind: 'use', db: t.name };
    }
    case 'SET':
    case 'BEGIN':
    case 'START':
    case 'COMMIT':
    case 'ROLLBACK':
      // Session settings and transactions mean nothing to a read-only snapshot; clients send them on connect.
      return { kind: 'reply', reply: ok };
    default:
      return { kind: 'reply', reply: readOnlyError(head === '' ? 'this statement' : head) };
  }
}

function notSupported(what: string): Reply {
  return {
    kind: 'err',
    err: sqlError(ER.NOT_SUPPORTED, `streamgate's SQL endpoint does not support '${what}'`),
  };
}

function unknownTable(name: string): Reply {
  return { kind: 'err', err: sqlError(ER.NO_SUCH_TABLE, `Table '${SCHEMA}.${name}' doesn't exist`) };
}

function planShow(w: Words, ctx: GuardContext): Reply {
  const full = w.eat('FULL') !== undefined;
  w.eat('GLOBAL', 'SESSION', 'LOCAL');
  const what = w.eat(
    'DATABASES',
    'SCHEMAS',
    'TABLES',
    'COLUMNS',
    'FIELDS',
    'CREATE',
    'VARIABLES',
    'STATUS',
    'WARNINGS',
    'ERRORS',
  );
  switch (what) {
    case 'DATABASES':
    case 'SCHEMAS': {
      const like = w.like();
      return {
        kind: 'rows',
        columns: textColumns('Database'),
        rows: likeMatch(like ?? undefined, SCHEMA) ? [[SCHEMA]] : [],
      };
    }
    case 'TABLES': {
      if (w.eat('FROM', 'IN')) {
        const db = w.name();
        if (db && !isDb(db.name)) {
          return { kind: 'err', err: sqlError(ER.BAD_DB, `Unknown database '${db.name}'`) };
        }
      } else if (ctx.database === undefined) {
        return { kind: 'err', err: sqlError(ER.NO_DB, 'No database selected') };
      }
      const like = w.like() ?? undefined;
      const names = TABLES.map((t) => t.name).filter((n) => likeMatch(like, n));
      const col = `Tables_in_${SCHEMA}`;
      return full
        ? { kind: 'rows', columns: textColumns(col, 'Table_type'), rows: names.map((n) => [n, 'BASE TABLE']) }
        : { kind: 'rows', columns: textColumns(col), rows: names.map((n) => [n]) };
    }
    case 'COLUMNS':
    case 'FIELDS': {
      if (!w.eat('FROM', 'IN')) {
        return { kind: 'err', err: sqlError(ER.PARSE, 'SHOW COLUMNS needs FROM table') };
      }
      const t = w.name();
      if (!t) return { kind: 'err', err: sqlError(ER.PARSE, 'SHOW COLUMNS needs FROM table') };
      if (w.eat('FROM', 'IN')) {
        const db = w.name();
        if (db) t.db = db.name;
      }
      return showColumns(t, w.like(), full);
    }
    case 'CREATE': {
      if (!w.eat('TABLE')) return notSupported('SHOW CREATE');
      const t = w.name();
      if (!t) return { kind: 'err', err: sqlError(ER.PARSE, 'SHOW CREATE TABLE needs a table name') };
      if (t.db !== undefined && !isDb(t.db)) {
        return { kind: 'err', err: sqlError(ER.BAD_DB, `Unknown database '${t.db}'`) };
      }
      const def = tableDef(t.name);
      if (!def) return unknownTable(t.name);
      return {
        kind: 'rows',
        columns: textColumns('Table', 'Create Table'),
        rows: [[def.name, createTableText(def)]],
      };
    }
    case 'VARIABLES': {
      const like = w.like() ?? undefined;
      const rows: Cell[][] = Object.entries(ctx.variables)
        .filter(([k]) => likeMatch(like, k))
        .sort(([a], [b]) => (a < b ? -1 : 1))
        .map(([k, v]) => [k, String(v)]);
      return { kind: 'rows', columns: textColumns('Variable_name', 'Value'), rows };
    }
    case 'STATUS':
      return { kind: 'rows', columns: textColumns('Variable_name', 'Value'), rows: [] };
    case 'WARNINGS':
    case 'ERRORS':
      return {
        kind: 'rows',
        columns: [
          { name: 'Level', type: TYPE.VAR_STRING },
          { name: 'Code', type: TYPE.LONGLONG },
          { name: 'Message', type: TYPE.VAR_STRING },
        ],
        rows: [],
      };
    default: {
      const t = w.peek();
      return notSupported(`SHOW ${t ? t.v.toUpperCase() : ''}`.trim());
    }
  }
}

function showColumns(
  t: { db?: string; name: string },
  like: string | null | undefined,
  full: boolean,
): Reply {
  if (t.db !== undefined && !isDb(t.db)) {
    return { kind: 'err', err: sqlError(ER.BAD_DB, `Unknown database '${t.db}'`) };
  }
  const def = tableDef(t.name);
  if (!def) return unknownTable(t.name);
  const cols = def.columns.filter((c) => likeMatch(like ?? undefined, c.name));
  const base = ['Field', 'Type', 'Null', 'Key', 'Default', 'Extra'];
  const columns = textColumns(
    ...(full ? [...base.slice(0, 2), 'Collation', ...base.slice(2), 'Privileges', 'Comment'] : base),
  );
  const rows: Cell[][] = cols.map((c) => {
    const r: Cell[] = [c.name, c.mysql, c.nullable ? 'YES' : 'NO', '', null, ''];
    return full
      ? [
          r[0] ?? null,
          r[1] ?? null,
          c.mysql.startsWith('varchar') ? 'utf8mb4_general_ci' : null,
          ...r.slice(2),
          'select',
          c.comment,
        ]
      : r;
  });
  return { kind: 'rows', columns, rows };
}

/** SELECT: re-emit the tokens as SQLite text. */
function planSelect(toks: Tok[], ctx: GuardContext): Plan {
  const out: string[] = [];
  const renames: [string, string][] = [];
  const literals: [string, string][] = [];
  const live = new Set<'sessions' | 'streams'>();
  const meaningful = (j: number, step: number): Tok | undefined => {
    for (let k = j + step; k >= 0 && k < toks.length; k += step) if (toks[k]?.k !== 'ws') return toks[k];
    return undefined;
  };
  for (let i = 0; i < toks.length; i++) {
    const t = toks[i] as Tok;
    switch (t.k) {
      case 'str': {
        const lit = sqliteString(t.v);
        literals.push([lit, t.v]);
        out.push(lit);
        break;
      }
      case 'sysvar': {
        const name = t.v.replace(/^@@((global|session|local)\.)?/i, '').toLowerCase();
        const value = ctx.variables[name];
        if (value === undefined) {
          return {
            kind: 'reply',
            reply: {
              kind: 'err',
              err: { code: 1193, state: 'HY000', message: `Unknown system variable '${name}'` },
            },
          };
        }
        const lit = typeof value === 'number' ? String(value) : sqliteString(value);
        renames.push([lit, t.v]);
        out.push(lit);
        break;
      }
      case 'uservar':
        return { kind: 'reply', reply: notSupported('user variables') };
      case 'word':
      case 'bq': {
        const lower = t.v.toLowerCase();
        const after = meaningful(i, 1);
        if (isDb(lower) && after?.k === 'punct' && after.v === '.') {
          // `flussonic.sessions` → `sessions`: skip the qualifier and its dot.
          while (toks[i + 1]?.k === 'ws') i++;
          i++;
          while (toks[i + 1]?.k === 'ws') i++;
          break;
        }
        if (lower === 'sessions' || lower === 'streams') live.add(lower);
        out.push(t.k === 'bq' ? sqliteName(t.v) : t.v);
        break;
      }
      case 'ws':
        if (out.at(-1) !== ' ') out.push(' ');
        break;
      default:
        out.push(t.v);
    }
  }
  return { kind: 'select', sql: out.join('').trim(), live: [...live], renames, literals };
}
