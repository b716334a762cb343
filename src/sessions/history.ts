/**
 * Closed-session history (SPEC §7, AUTH-SPEC §9.1): one row per session with the SPEC §7
 * fields, in SQLite through better-sqlite3. Rows carry a short token hash, never the token.
 * Closes are batched into one transaction per event-loop turn; `flush()`/`close()` write any
 * queued rows synchronously, so a shutdown that calls them loses nothing.
 */
import { mkdirSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import Database from 'better-sqlite3';

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
  write(row: HistoryRow): void;
  /** Makes every written row durable now (shutdown). */
  flush(): void;
  query(filter: HistoryFilter): HistoryRow[];
  close(): void;
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

export class SqliteHistory implements HistoryStore {
  private readonly db: Database.Database;
  private readonly insert: Database.Statement;
  private readonly insertMany: (rows: HistoryRow[]) => void;
  private queue: HistoryRow[] = [];
  private flushTimer: NodeJS.Immediate | undefined;

  constructor(url = 'sqlite://data/history.db') {
    const path = historyPath(url);
    if (path !== ':memory:') mkdirSync(dirname(path), { recursive: true });
    this.db = new Database(path);
    if (path !== ':memory:') this.db.pragma('journal_mode = WAL');
    this.db.exec(`CREATE TABLE IF NOT EXISTS sessions_history (
      id TEXT PRIMARY KEY,
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
    this.insert = this.db.prepare(`INSERT OR REPLACE INTO sessions_history
      (id, user_id, name, proto, ip, token_hash, bytes, opened_at, closed_at, close_reason, user_agent, referer)
      VALUES (@id, @user_id, @name, @proto, @ip, @token_hash, @bytes, @opened_at, @closed_at, @close_reason,
              @user_agent, @referer)`);
    this.insertMany = this.db.transaction((rows: HistoryRow[]) => {
      for (const r of rows) this.insert.run(r);
    });
  }

  /**
   * Queues the row and writes the queue in one transaction on the next turn: a burst of closes
   * (a stream ending, a shutdown) costs one commit instead of one per session. `query`, `flush`
   * and `close` write the queue first, so nothing queued is lost or invisible.
   */
  write(row: HistoryRow): void {
    this.queue.push(row);
    if (this.flushTimer === undefined) {
      this.flushTimer = setImmediate(() => this.flush());
      this.flushTimer.unref();
    }
  }

  flush(): void {
    if (this.flushTimer !== undefined) clearImmediate(this.flushTimer);
    this.flushTimer = undefined;
    if (this.queue.length === 0 || !this.db.open) return;
    const rows = this.queue.splice(0);
    this.insertMany(rows);
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
    if (this.db.open) this.db.close();
  }
}

/** Opens the store `config.history` names. */
export function openHistory(url: string): HistoryStore {
  return new SqliteHistory(url);
}
