/**
 * Closed-session history (SPEC §7, AUTH-SPEC §9.1): one row per session with the SPEC §7
 * fields, in SQLite through better-sqlite3. Rows carry a short token hash, never the token.
 *
 * Batching: `write()` queues the row; the queue is committed in one transaction at the end of
 * the event-loop turn (`setImmediate`), or at once when `BATCH_MAX` rows are waiting. A commit
 * per row cost about 45–50 µs per close on the development VM (a WAL append and its locking
 * each time), most of a new session's cost against a local backend; one transaction per turn
 * costs a few µs per row (bench/sessions.bench.ts). Readers never see the queue: `query()`
 * commits it first, so `GET /api/history` lists a session closed a moment ago.
 *
 * Durability: WAL mode with `synchronous = NORMAL`. A committed row is in the `-wal` file,
 * which the operating system keeps when the process dies (crash, OOM kill, `kill -9`); the
 * next open replays it. What `kill -9` can lose is the queue of the current turn: the sessions
 * closed since the last turn ended (the batch of one turn, at most `BATCH_MAX` rows). Graceful
 * shutdown loses nothing: SIGTERM closes every session and then `close()`, which commits the
 * queue before it closes the database. An operating-system crash or power loss can lose the
 * last commits (the WAL is fsynced at checkpoints, not per commit; the database stays
 * consistent); an fsync per commit would hold the event loop for a disk flush.
 *
 * Memory: better-sqlite3 and the database are loaded with the first row or read, not at
 * start (about 8 MB of a 60 MB process: a server nobody has watched yet does not need them).
 * The constructor still creates the file, so a path that cannot be written fails at start.
 */
import { closeSync, mkdirSync, openSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, resolve } from 'node:path';
import type Database from 'better-sqlite3';

/** SPEC §7 history fields; times are epoch milliseconds (AUTH-SPEC §9.1). */
export interface HistoryRow {
  id: string;
  user_id: string | null;
  name: string;
  proto: string;
  ip: string;
  token_hash: string | null;
  bytes: number;
  opened_at: number;
  closed_at: number;
  close_reason: string;
  user_agent: string | null;
  referer: string | null;
}

export interface HistoryFilter {
  user_id?: string;
  name?: string;
  /** Sessions still open at or after this time (closed_at >= from), epoch ms. */
  from?: number;
  /** Sessions opened at or before this time (opened_at <= to), epoch ms. */
  to?: number;
  /** Newest first; default 1000, at most 10 000. */
  limit?: number;
}

export interface HistoryStore {
  /** Queues the row; it is committed at the end of this event-loop turn (see the header). */
  write(row: HistoryRow): void;
  /** Commits the queued rows now. */
  flush(): void;
  /** Sees every row written so far, queued ones included. */
  query(filter: HistoryFilter): HistoryRow[];
  /** Commits the queue, then closes the database. */
  close(): void;
}

/** Rows committed in one transaction at most; a burst of closes past it commits at once. */
export const BATCH_MAX = 512;

export interface HistoryOptions {
  /**
   * A queued batch could not be committed (disk full, read-only file): its rows are lost and
   * the server keeps running. Defaults to a line on stderr.
   */
  onError?: (err: unknown, lostRows: number) => void;
}

/** Resolves `sqlite://PATH` (relative to the working directory) or `sqlite://:memory:`. */
export function historyPath(url: string): string {
  if (!url.startsWith('sqlite://')) {
    throw new TypeError(`unsupported history store ${url} (expected sqlite://PATH)`);
  }
  const p = url.slice('sqlite://'.length);
  if (p === '') throw new TypeError('history sqlite:// needs a path');
  return p === ':memory:' ? p : resolve(p);
}

interface Opened {
  db: Database.Database;
  insertAll: (rows: HistoryRow[]) => void;
}

export class SqliteHistory implements HistoryStore {
  private readonly path: string;
  private opened: Opened | undefined;
  private closed = false;
  private readonly onError: (err: unknown, lostRows: number) => void;
  private pending: HistoryRow[] = [];
  private scheduled: NodeJS.Immediate | undefined;

  constructor(url = 'sqlite://data/history.db', opts: HistoryOptions = {}) {
    this.onError =
      opts.onError ??
      ((err, lost) =>
        process.stderr.write(`history: ${lost} rows lost: ${(err as Error)?.message ?? String(err)}\n`));
    this.path = historyPath(url);
    if (this.path !== ':memory:') {
      mkdirSync(dirname(this.path), { recursive: true });
      // An empty file is an empty SQLite database; creating it here fails fast on a bad path.
      closeSync(openSync(this.path, 'a'));
    }
  }

  private get db(): Database.Database {
    return this.open().db;
  }

  private open(): Opened {
    if (this.opened !== undefined) return this.opened;
    if (this.closed) throw new Error('history store is closed');
    const Sqlite = createRequire(import.meta.url)('better-sqlite3') as typeof Database;
    const db = new Sqlite(this.path);
    if (this.path !== ':memory:') {
      db.pragma('journal_mode = WAL');
      db.pragma('synchronous = NORMAL');
    }
    // `id` is not a key: a session writes its row once (the manager closes it once), nothing
    // looks a row up by id, and a unique index over random UUIDs cost more than half of each
    // row's insert (about 8 of 14 µs). Databases made with the earlier key keep it.
    db.exec(`CREATE TABLE IF NOT EXISTS sessions_history (
      id TEXT NOT NULL,
      user_id TEXT,
      name TEXT NOT NULL,
      proto TEXT NOT NULL,
      ip TEXT NOT NULL,
      token_hash TEXT,
      bytes INTEGER NOT NULL,
      opened_at INTEGER NOT NULL,
      closed_at INTEGER NOT NULL,
      close_reason TEXT NOT NULL,
      user_agent TEXT,
      referer TEXT
    );
    CREATE INDEX IF NOT EXISTS sessions_history_user ON sessions_history(user_id, closed_at);
    CREATE INDEX IF NOT EXISTS sessions_history_name ON sessions_history(name, closed_at);
    CREATE INDEX IF NOT EXISTS sessions_history_closed ON sessions_history(closed_at);`);
    const insert = db.prepare(`INSERT INTO sessions_history
      (id, user_id, name, proto, ip, token_hash, bytes, opened_at, closed_at, close_reason, user_agent, referer)
      VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`);
    // Positional parameters: binding by name costs a property lookup per column per row.
    const insertAll = db.transaction((rows: HistoryRow[]) => {
      for (const r of rows) {
        insert.run(
          r.id,
          r.user_id,
          r.name,
          r.proto,
          r.ip,
          r.token_hash,
          r.bytes,
          r.opened_at,
          r.closed_at,
          r.close_reason,
          r.user_agent,
          r.referer,
        );
      }
    });
    return (this.opened = { db, insertAll });
  }

  write(row: HistoryRow): void {
    if (this.closed) {
      this.onError(new Error('history store is closed'), 1);
      return;
    }
    this.pending.push(row);
    if (this.pending.length >= BATCH_MAX) this.flush();
    else this.scheduled ??= setImmediate(() => this.flush());
  }

  flush(): void {
    if (this.scheduled !== undefined) clearImmediate(this.scheduled);
    this.scheduled = undefined;
    if (this.pending.length === 0 || this.closed) return;
    const rows = this.pending;
    this.pending = [];
    try {
      this.open().insertAll(rows);
    } catch (err) {
      this.onError(err, rows.length);
    }
  }

  query(filter: HistoryFilter): HistoryRow[] {
    this.flush();
    const where: string[] = [];
    const params: Record<string, string | number> = {};
    if (filter.user_id !== undefined) {
      where.push('user_id = @user_id');
      params['user_id'] = filter.user_id;
    }
    if (filter.name !== undefined) {
      where.push('name = @name');
      params['name'] = filter.name;
    }
    if (filter.from !== undefined) {
      where.push('closed_at >= @from');
      params['from'] = filter.from;
    }
    if (filter.to !== undefined) {
      where.push('opened_at <= @to');
      params['to'] = filter.to;
    }
    params['limit'] = Math.max(1, Math.min(filter.limit ?? 1000, 10_000));
    const sql =
      'SELECT * FROM sessions_history' +
      (where.length ? ' WHERE ' + where.join(' AND ') : '') +
      ' ORDER BY closed_at DESC, id LIMIT @limit';
    return this.db.prepare(sql).all(params) as HistoryRow[];
  }

  close(): void {
    this.flush();
    this.closed = true;
    if (this.opened?.db.open === true) this.opened.db.close();
    this.opened = undefined;
  }
}

/** Opens the store `config.history` names. */
export function openHistory(url: string, opts: HistoryOptions = {}): HistoryStore {
  return new SqliteHistory(url, opts);
}
