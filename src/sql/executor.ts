/**
 * Runs guarded SELECTs against SQLite, synchronously, inside the query process (it is a class
 * of its own so unit tests can drive it without a thread).
 *
 * Its connection opens the history file read-only (`readonly: true`), apart from the
 * server's writing connection, and never touches that one's write path. The live tables
 * (`sessions`, `streams`) are TEMP tables, refilled from the snapshot that comes with each
 * query that names them; `sessions_history` is a TEMP view over the history table that adds
 * the DATETIME and duration columns (schema.ts). A statement runs only if SQLite itself calls
 * it read-only (`Statement.readonly`), whatever the guard let through. Rows stop at `maxRows`
 * and at `maxBytes` of encoded values: such a query is refused (ER_TOO_BIG_SELECT), not cut
 * short, so a total never silently misses rows.
 */
import Database from 'better-sqlite3';
import { dateFormat, formatDateTime, fromUnixtime, part, unixTimestamp } from './functions.js';
import { declaredType, TABLES } from './schema.js';
import { TYPE, type Cell, type Column, type ColumnType, type SqlError } from './wire/codec.js';
import { ER, sqlError } from './wire/machine.js';

export type LiveRow = (string | number | null)[];

export interface QueryRequest {
  sql: string;
  /** Fresh rows for the live tables the query names, in schema column order. */
  live: { sessions?: LiveRow[]; streams?: LiveRow[] };
  ctx: { database: string | null; user: string; connectionId: number; version: string };
  maxRows: number;
  maxBytes: number;
}

export type QueryResult =
  | { ok: true; columns: Column[]; rows: Cell[][] }
  | { ok: false; err: SqlError; limit?: 'sql_max_rows' | 'sql_max_result_bytes' };

/** Memory SQLite may allocate in the query process. */
const SQLITE_HEAP_LIMIT = 512 * 1024 * 1024;

const DATETIME_RE = /^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}$/;
const DATE_RE = /^\d{4}-\d{2}-\d{2}$/;

/** A SQLite error message as the MySQL error a client understands. */
export function mapSqliteError(message: string): SqlError {
  let m = /^no such table: (?:\w+\.)?(.+)$/.exec(message);
  if (m) return sqlError(ER.NO_SUCH_TABLE, `Table 'flussonic.${m[1]}' doesn't exist`);
  m = /^no such column: (.+)$/.exec(message);
  if (m) return { code: 1054, state: '42S22', message: `Unknown column '${m[1]}' in 'field list'` };
  m = /^no such function: (.+)$/.exec(message);
  if (m) return { code: 1305, state: '42000', message: `FUNCTION flussonic.${m[1]} does not exist` };
  if (/syntax error|incomplete input|unrecognized token/.test(message)) {
    return sqlError(ER.PARSE, `You have an error in your SQL syntax: ${message}`);
  }
  if (/readonly|read-only|cannot modify/.test(message)) return sqlError(ER.READ_ONLY, message);
  return sqlError(ER.INTERNAL, message);
}

const HISTORY_COLUMNS = `id TEXT, user_id TEXT, name TEXT, proto TEXT, ip TEXT, token_hash TEXT,
  bytes INTEGER, opened_at INTEGER, closed_at INTEGER, close_reason TEXT, user_agent TEXT, referer TEXT`;

export class SqlExecutor {
  private readonly db: Database.Database;
  private readonly hasHistoryTable: Database.Statement;
  /** Which table the `sessions_history` view reads: the history file's, or the empty stand-in. */
  private historyViewOverFile: boolean | undefined;
  private ctx: QueryRequest['ctx'] = { database: null, user: '', connectionId: 0, version: '' };
  private readonly fill: Record<'sessions' | 'streams', (rows: LiveRow[]) => void>;

  /** `historyPath` null: no history file to read (`history sqlite://:memory:`), an empty table stands in. */
  constructor(historyPath: string | null) {
    if (historyPath === null) {
      this.db = new Database(':memory:');
      this.db.exec(`CREATE TABLE sessions_history (${HISTORY_COLUMNS})`);
    } else {
      this.db = new Database(historyPath, { readonly: true, fileMustExist: true });
    }
    // A sort or GROUP BY over a huge join must not take the machine's memory: SQLite fails the
    // query (SQLITE_NOMEM) past this, and the process stays.
    this.db.pragma(`hard_heap_limit = ${SQLITE_HEAP_LIMIT}`);
    this.registerFunctions();
    for (const t of TABLES) {
      if (t.name === 'sessions_history') continue;
      const cols = t.columns.map((c) => `"${c.name}" ${c.sqlite}`).join(', ');
      this.db.exec(`CREATE TEMP TABLE "${t.name}" (${cols})`);
    }
    // The server creates its history table with the first closed session: until then the view
    // reads an empty stand-in, so a fresh server answers with no rows rather than an error.
    this.db.exec(`CREATE TEMP TABLE history_not_yet (${HISTORY_COLUMNS})`);
    this.hasHistoryTable = this.db.prepare(
      "SELECT 1 FROM main.sqlite_master WHERE type = 'table' AND name = 'sessions_history'",
    );
    this.pointHistoryView();
    const filler = (name: 'sessions' | 'streams'): ((rows: LiveRow[]) => void) => {
      const def = TABLES.find((t) => t.name === name);
      const n = def?.columns.length ?? 0;
      const clear = this.db.prepare(`DELETE FROM temp."${name}"`);
      const insert = this.db.prepare(`INSERT INTO temp."${name}" VALUES (${Array(n).fill('?').join(', ')})`);
      return this.db.transaction((rows: LiveRow[]) => {
        clear.run();
        for (const r of rows) insert.run(r);
      });
    };
    this.fill = { sessions: filler('sessions'), streams: filler('streams') };
  }

  private registerFunctions(): void {
    const db = this.db;
    const det = { deterministic: true, varargs: false } as const;
    db.function('from_unixtime', { deterministic: true, varargs: true }, (sec, fmt) =>
      fromUnixtime(sec as never, fmt as never),
    );
    db.function('unix_timestamp', { varargs: true }, (v) => unixTimestamp(Date.now(), v as never));
    db.function('date_format', det, (v, f) => dateFormat(v as never, f as never));
    for (const p of ['hour', 'minute', 'second', 'day', 'month', 'year'] as const) {
      db.function(p, det, (v) => part(p, v as never));
    }
    db.function('dayofmonth', det, (v) => part('day', v as never));
    db.function('now', () => formatDateTime(new Date()));
    db.function('utc_timestamp', () => formatDateTime(new Date()));
    db.function('curdate', () => formatDateTime(new Date()).slice(0, 10));
    db.function('if', det, (c, a, b) => (c !== null && c !== 0 && c !== 0n && c !== '' && c !== '0' ? a : b));
    db.function('database', () => this.ctx.database);
    db.function('schema', () => this.ctx.database);
    db.function('user', () => `${this.ctx.user}@localhost`);
    db.function('current_user', () => `${this.ctx.user}@%`);
    db.function('version', () => this.ctx.version);
    db.function('connection_id', () => this.ctx.connectionId);
  }

  /** (Re)creates the `sessions_history` view over the file's table once it exists. */
  private pointHistoryView(): void {
    const overFile = this.hasHistoryTable.get() !== undefined;
    if (overFile === this.historyViewOverFile) return;
    this.historyViewOverFile = overFile;
    this.db.exec('DROP VIEW IF EXISTS temp.sessions_history');
    this.db.exec(`CREATE TEMP VIEW sessions_history AS SELECT
        id, user_id, name, proto, ip, token_hash, bytes,
        datetime(opened_at / 1000, 'unixepoch') AS opened_at,
        datetime(closed_at / 1000, 'unixepoch') AS closed_at,
        opened_at AS opened_at_ms, closed_at AS closed_at_ms,
        (closed_at - opened_at) / 1000 AS duration,
        close_reason, user_agent, referer
      FROM ${overFile ? 'main.sessions_history' : 'temp.history_not_yet'}`);
  }

  run(req: QueryRequest): QueryResult {
    this.pointHistoryView();
    this.ctx = req.ctx;
    let stmt: Database.Statement;
    try {
      if (req.live.sessions) this.fill.sessions(req.live.sessions);
      if (req.live.streams) this.fill.streams(req.live.streams);
      stmt = this.db.prepare(req.sql);
    } catch (err) {
      return { ok: false, err: mapSqliteError((err as Error).message) };
    }
    if (!stmt.readonly) {
      return {
        ok: false,
        err: sqlError(ER.READ_ONLY, "streamgate's SQL endpoint is read-only; this statement would write"),
      };
    }
    if (!stmt.reader) {
      return { ok: false, err: sqlError(ER.READ_ONLY, 'only statements that return rows run here') };
    }
    try {
      return this.collect(stmt, req.maxRows, req.maxBytes);
    } catch (err) {
      return { ok: false, err: mapSqliteError((err as Error).message) };
    }
  }

  private collect(stmt: Database.Statement, maxRows: number, maxBytes: number): QueryResult {
    const decl = stmt.columns();
    stmt.raw(true).safeIntegers(true);
    const rows: Cell[][] = [];
    const kinds: (ColumnType | 'mixed' | undefined)[] = decl.map((c) => declaredType(c.type));
    const fixed = kinds.map((k) => k !== undefined);
    const allDatetime = decl.map(() => true);
    const allDate = decl.map(() => true);
    let bytes = 0;
    for (const raw of stmt.iterate() as IterableIterator<unknown[]>) {
      if (rows.length >= maxRows) {
        return {
          ok: false,
          limit: 'sql_max_rows',
          err: sqlError(
            ER.TOO_BIG_SELECT,
            `The result has more than ${maxRows} rows; add a LIMIT or aggregate`,
          ),
        };
      }
      const row: Cell[] = [];
      for (let i = 0; i < raw.length; i++) {
        const v = raw[i];
        let cell: Cell;
        let kind: ColumnType;
        if (v === null || v === undefined) {
          row.push(null);
          continue;
        } else if (typeof v === 'bigint') {
          cell = v.toString();
          kind = TYPE.LONGLONG;
        } else if (typeof v === 'number') {
          cell = String(v);
          kind = TYPE.DOUBLE;
        } else if (Buffer.isBuffer(v)) {
          cell = v;
          kind = TYPE.BLOB;
        } else {
          cell = String(v);
          kind = TYPE.VAR_STRING;
          if (!DATETIME_RE.test(cell)) allDatetime[i] = false;
          if (!DATE_RE.test(cell)) allDate[i] = false;
        }
        bytes += cell.length + 1;
        row.push(cell);
        if (!fixed[i]) {
          const prev = kinds[i];
          if (prev === undefined) kinds[i] = kind;
          else if (prev !== kind) {
            kinds[i] =
              prev === TYPE.LONGLONG && kind === TYPE.DOUBLE
                ? TYPE.DOUBLE
                : prev === TYPE.DOUBLE && kind === TYPE.LONGLONG
                  ? TYPE.DOUBLE
                  : 'mixed';
          }
        }
      }
      if (bytes > maxBytes) {
        return {
          ok: false,
          limit: 'sql_max_result_bytes',
          err: sqlError(
            ER.TOO_BIG_SELECT,
            `The result is larger than ${maxBytes} bytes; add a LIMIT or aggregate`,
          ),
        };
      }
      rows.push(row);
    }
    const columns: Column[] = decl.map((c, i) => {
      let type = kinds[i];
      if (type === undefined) type = TYPE.NULL;
      else if (type === 'mixed') type = TYPE.VAR_STRING;
      else if (type === TYPE.VAR_STRING && !fixed[i] && rows.length > 0) {
        if (allDatetime[i]) type = TYPE.DATETIME;
        else if (allDate[i]) type = TYPE.DATE;
      }
      // A DATETIME column's text is already MySQL's; a column declared DATETIME holds nothing else.
      return { name: c.name, type, ...(c.table ? { table: c.table } : {}) };
    });
    return { ok: true, columns, rows };
  }

  close(): void {
    if (this.db.open) this.db.close();
  }
}
