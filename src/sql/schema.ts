/**
 * The tables the SQL endpoint shows (AUTH-SPEC §9.2), in one place: the worker builds them
 * from this, and SHOW COLUMNS, SHOW CREATE TABLE and COM_FIELD_LIST describe them from it.
 *
 * Times are UTC. `opened_at`/`closed_at` are DATETIME text (`YYYY-MM-DD HH:MM:SS`), so
 * `GROUP BY DATE(opened_at)` or `DATE_FORMAT(opened_at, '%Y-%m-%d %H:00')` buckets by day or
 * hour; `opened_at_ms`/`closed_at_ms` keep the epoch milliseconds of the session record
 * (AUTH-SPEC §9.1). `token_hash` is the short hash every other surface shows, never the token.
 */
import { TYPE, type ColumnType } from './wire/codec.js';

export interface ColumnDef {
  name: string;
  /** Declared SQLite type (the worker's temp tables carry it, so results report it). */
  sqlite: 'TEXT' | 'INTEGER' | 'REAL' | 'DATETIME';
  /** What SHOW COLUMNS says. */
  mysql: string;
  nullable: boolean;
  comment: string;
}

export interface TableDef {
  name: 'sessions' | 'sessions_history' | 'streams';
  comment: string;
  columns: readonly ColumnDef[];
}

const c = (name: string, sqlite: ColumnDef['sqlite'], nullable: boolean, comment: string): ColumnDef => ({
  name,
  sqlite,
  mysql:
    sqlite === 'INTEGER'
      ? 'bigint(20)'
      : sqlite === 'REAL'
        ? 'double'
        : sqlite === 'DATETIME'
          ? 'datetime'
          : 'varchar(255)',
  nullable,
  comment,
});

const SESSION_COMMON: readonly ColumnDef[] = [
  c('id', 'TEXT', false, 'session UUID (the session_id sent to the backend)'),
  c('user_id', 'TEXT', true, "the backend's X-UserId"),
  c('name', 'TEXT', false, 'stream name'),
  c('proto', 'TEXT', false, 'rtmp, rtsp, hls or mpegts'),
  c('ip', 'TEXT', false, 'client address'),
  c('token_hash', 'TEXT', true, 'first 12 hex of SHA-256 of the token; never the token'),
  c('bytes', 'INTEGER', false, 'payload bytes sent to (play) or received from (publish) the client'),
  c('opened_at', 'DATETIME', false, 'UTC'),
];

export const TABLES: readonly TableDef[] = [
  {
    name: 'sessions',
    comment: 'open sessions',
    columns: [
      ...SESSION_COMMON,
      c('opened_at_ms', 'INTEGER', false, 'epoch milliseconds'),
      c('duration', 'INTEGER', false, 'seconds open so far'),
      c('kind', 'TEXT', false, 'play or publish'),
    ],
  },
  {
    name: 'sessions_history',
    comment: 'closed sessions',
    columns: [
      ...SESSION_COMMON,
      c('closed_at', 'DATETIME', false, 'UTC'),
      c('opened_at_ms', 'INTEGER', false, 'epoch milliseconds'),
      c('closed_at_ms', 'INTEGER', false, 'epoch milliseconds'),
      c('duration', 'INTEGER', false, 'seconds'),
      c('close_reason', 'TEXT', false, 'why it closed (client_closed, idle_timeout, banned, …)'),
      c('user_agent', 'TEXT', true, ''),
      c('referer', 'TEXT', true, ''),
    ],
  },
  {
    name: 'streams',
    comment: 'streams currently known',
    columns: [
      c('name', 'TEXT', false, ''),
      c('url', 'TEXT', true, 'first input URL, credentials removed'),
      c('state', 'TEXT', false, 'publishing, running, waiting_for_publisher, …'),
      c('client_count', 'INTEGER', false, 'open play sessions'),
      c('bytes_out', 'INTEGER', false, 'bytes sent to the open play sessions'),
      c('frames_in', 'INTEGER', false, 'frames received'),
    ],
  },
];

export function tableDef(name: string): TableDef | undefined {
  const n = name.toLowerCase();
  return TABLES.find((t) => t.name === n);
}

/** The MySQL type a result column of this declared SQLite type is sent as. */
export function declaredType(decl: string | null | undefined): ColumnType | undefined {
  const d = decl?.toUpperCase();
  if (!d) return undefined;
  if (d === 'DATETIME') return TYPE.DATETIME;
  if (d.includes('INT')) return TYPE.LONGLONG;
  if (d === 'REAL' || d === 'DOUBLE' || d === 'FLOAT') return TYPE.DOUBLE;
  if (d === 'TEXT') return TYPE.VAR_STRING;
  return undefined;
}

/** `SHOW CREATE TABLE` text. */
export function createTableText(t: TableDef): string {
  const cols = t.columns.map(
    (col) =>
      `  \`${col.name}\` ${col.mysql}${col.nullable ? ' DEFAULT NULL' : ' NOT NULL'}` +
      (col.comment ? ` COMMENT '${col.comment.replace(/'/g, "''")}'` : ''),
  );
  return `CREATE TABLE \`${t.name}\` (\n${cols.join(',\n')}\n) COMMENT='${t.comment} (read-only)'`;
}
