/**
 * The SQL statistics endpoint (AUTH-SPEC §9.2): `mysql PORT;` opens a MySQL-protocol listener
 * that answers read-only queries about open sessions, closed sessions and streams, for the
 * `edit_auth` account only. It is an operator endpoint, not a media protocol: it opens no
 * session and sits beside the HTTP API in the layers (ARCHITECTURE.md).
 *
 * The pieces: `wire/` (sans-IO protocol), `guard.ts` (what may run, MySQL → SQLite),
 * `runner.ts` + `query-worker.ts` + `executor.ts` (SQLite in a child process under a deadline), and
 * here the TCP shell: the listener's connection caps (`max_connections`,
 * `max_connections_per_ip`), `handshake_timeout` until the client has authenticated, one
 * command answered at a time in arrival order, and the error policy (anything thrown while
 * handling one client's bytes closes that client, never the listener).
 */
import { randomBytes, randomInt } from 'node:crypto';
import type { Socket } from 'node:net';
import type { Logger } from 'pino';
import type { Config, Listen } from '../config/types.js';
import { countLimitHit, limitMs, type LimitName } from '../core/limits.js';
import type { CloseReason } from '../core/reasons.js';
import { tokenHash } from '../core/secrets.js';
import { redactSecrets } from '../log.js';
import { normalizeIp } from '../net.js';
import type { SessionManager } from '../sessions/types.js';
import type { StreamRegistry } from '../streams/registry.js';
import { TcpListener, type TcpClient } from '../tcp-listener.js';
import { formatDateTime } from './functions.js';
import { DATABASES, planQuery, SCHEMA } from './guard.js';
import type { LiveRow } from './executor.js';
import { QueryRunner } from './runner.js';
import { declaredType, tableDef } from './schema.js';
import { TYPE } from './wire/codec.js';
import {
  encodeReply,
  ER,
  MysqlMachine,
  sqlError,
  type Command,
  type MachineEvent,
  type Reply,
} from './wire/machine.js';

/** Commands a client may send ahead of their answers before it is closed (clients send one at a time). */
const MAX_PIPELINED = 32;

export interface SqlServerDeps {
  listen: Listen;
  config: () => Config;
  log: Logger;
  sessions: SessionManager;
  registry: StreamRegistry;
  /** `serverVersion` as clients see it, e.g. `8.0.0-streamgate-0.1.0`. */
  serverVersion: string;
  /** The history database file, or null when history is in memory (then `sessions_history` is empty). */
  historyPath: string | null;
}

export interface SqlServer {
  readonly name: 'mysql';
  start(): Promise<void>;
  stop(): Promise<void>;
  address(): { host: string; port: number } | undefined;
}

export function createSqlServer(deps: SqlServerDeps): SqlServer {
  const log = deps.log.child({ proto: 'mysql' });
  const runner = new QueryRunner(deps.historyPath, log);
  const startedAt = Date.now();
  let connectionIds = 0;
  let questions = 0;
  const open = { count: 0 };
  const shared: Shared = {
    deps,
    log,
    runner,
    variables: () => variables(deps),
    stats: () =>
      `Uptime: ${Math.floor((Date.now() - startedAt) / 1000)}  Threads: ${open.count}  Questions: ${questions}`,
    countQuestion: () => void questions++,
    open,
  };
  const listener = new TcpListener(deps.listen, (socket) => new SqlConn(socket, ++connectionIds, shared), {
    proto: 'mysql',
    log,
    limits: () => deps.config().limits,
  });
  if (deps.historyPath === null) {
    log.warn('history is in memory; the SQL endpoint shows an empty sessions_history');
  }
  return {
    name: 'mysql',
    start: () => listener.start(),
    address: () => listener.address(),
    async stop() {
      await listener.stop();
      await runner.close();
    },
  };
}

interface Shared {
  deps: SqlServerDeps;
  log: Logger;
  runner: QueryRunner;
  variables(): Record<string, string | number>;
  stats(): string;
  countQuestion(): void;
  /** Connections open now, for COM_STATISTICS. */
  open: { count: number };
}

function variables(deps: SqlServerDeps): Record<string, string | number> {
  const limits = deps.config().limits;
  return {
    version: deps.serverVersion,
    version_comment: 'streamgate SQL statistics (read-only)',
    max_allowed_packet: limits.sql_max_packet_bytes,
    max_execution_time: limits.sql_query_timeout * 1000,
    sql_select_limit: limits.sql_max_rows,
    character_set_client: 'utf8mb4',
    character_set_connection: 'utf8mb4',
    character_set_results: 'utf8mb4',
    character_set_server: 'utf8mb4',
    character_set_database: 'utf8mb4',
    collation_connection: 'utf8mb4_general_ci',
    collation_server: 'utf8mb4_general_ci',
    autocommit: 1,
    read_only: 1,
    transaction_read_only: 1,
    tx_read_only: 1,
    transaction_isolation: 'REPEATABLE-READ',
    tx_isolation: 'REPEATABLE-READ',
    sql_mode: '',
    time_zone: '+00:00',
    system_time_zone: 'UTC',
    lower_case_table_names: 0,
    wait_timeout: 28800,
    interactive_timeout: 28800,
    net_write_timeout: 60,
    license: 'MIT',
    performance_schema: 0,
    auto_increment_increment: 1,
  };
}

class SqlConn implements TcpClient {
  private readonly ip: string;
  private readonly log: Logger;
  private readonly machine: MysqlMachine;
  private database: string | undefined;
  private user = '';
  private closed = false;
  private handshakeTimer: NodeJS.Timeout | undefined;
  private readonly commands: Command[] = [];
  private working = false;

  constructor(
    private readonly socket: Socket,
    private readonly connectionId: number,
    private readonly shared: Shared,
  ) {
    this.ip = normalizeIp(socket.remoteAddress ?? '');
    this.log = shared.log.child({ ip: this.ip, port: socket.remotePort, conn: connectionId });
    const config = shared.deps.config();
    // Config validation makes `mysql` require edit_auth; without it nobody could log in, so refuse all.
    const account = config.editAuth ?? { user: '\0no-account', password: randomBytes(16).toString('hex') };
    shared.open.count++;
    this.machine = new MysqlMachine({
      serverVersion: shared.deps.serverVersion,
      connectionId,
      scramble: scramble(),
      account,
      databases: DATABASES,
      clientIp: this.ip,
      maxPacketBytes: config.limits.sql_max_packet_bytes,
    });
    socket.setNoDelay(true);
    socket.on('data', (d: Buffer) => this.guard(() => this.onBytes(d)));
    socket.on('error', (err) => this.log.debug({ err: err.message }, 'socket error'));
    socket.on('close', () => this.close('client_closed'));
    const ms = limitMs(config.limits, 'handshake_timeout');
    this.handshakeTimer = setTimeout(() => {
      this.limitExceeded('handshake_timeout', `not authenticated within ${ms / 1000} s`, 'timeout');
    }, ms);
    this.write(this.machine.greeting());
  }

  private guard(fn: () => void): void {
    if (this.closed) return;
    try {
      fn();
    } catch (err) {
      this.log.warn(
        { event: 'protocol_error', err: err instanceof Error ? err.message : String(err) },
        'protocol error; closing connection',
      );
      this.close('protocol_error');
    }
  }

  private onBytes(d: Buffer): void {
    for (const ev of this.machine.receive(d)) this.onEvent(ev);
  }

  private onEvent(ev: MachineEvent): void {
    switch (ev.type) {
      case 'send':
        this.write(ev.bytes);
        return;
      case 'authenticated':
        clearTimeout(this.handshakeTimer);
        this.handshakeTimer = undefined;
        this.user = ev.user;
        this.database = ev.database;
        this.log.info(
          {
            event: 'sql_login',
            user: ev.user,
            plugin: ev.plugin,
            client: ev.attrs['program_name'] ?? ev.attrs['_client_name'],
          },
          'SQL client logged in',
        );
        return;
      case 'auth_failed':
        this.log.warn({ event: 'sql_login_failed', user: ev.user, err: ev.detail }, 'SQL login refused');
        return;
      case 'command':
        if (this.commands.length >= MAX_PIPELINED) {
          this.log.warn(
            { event: 'protocol_error', err: 'too many commands ahead of their answers' },
            'closing connection',
          );
          this.close('protocol_error');
          return;
        }
        this.commands.push(ev.command);
        this.pump();
        return;
      case 'close':
        if (ev.reason === 'packet_too_large') {
          this.limitExceeded('sql_max_packet_bytes', ev.detail, 'limit_exceeded', 'finish');
        } else {
          if (ev.reason !== 'quit' && ev.reason !== 'auth_failed') {
            this.log.warn({ event: 'protocol_error', err: ev.detail }, 'closing connection');
          }
          this.finish(ev.reason === 'quit' ? 'client_closed' : 'protocol_error');
        }
        return;
    }
  }

  private pump(): void {
    if (this.working || this.closed) return;
    const cmd = this.commands.shift();
    if (!cmd) return;
    this.working = true;
    this.answer(cmd)
      .catch((err: unknown) => ({
        kind: 'err' as const,
        err: sqlError(ER.INTERNAL, err instanceof Error ? err.message : String(err)),
      }))
      .then((reply) => {
        this.working = false;
        if (this.closed) return;
        this.guard(() => this.write(encodeReply(reply, SCHEMA)));
        this.pump();
      });
  }

  private async answer(cmd: Command): Promise<Reply> {
    switch (cmd.kind) {
      case 'init_db':
        return this.use(cmd.db);
      case 'query':
        this.shared.countQuestion();
        return this.query(cmd.sql);
      case 'field_list': {
        const def = tableDef(cmd.table);
        if (!def) {
          return {
            kind: 'err',
            err: sqlError(ER.NO_SUCH_TABLE, `Table '${SCHEMA}.${cmd.table}' doesn't exist`),
          };
        }
        return {
          kind: 'fields',
          columns: def.columns.map((c) => ({
            name: c.name,
            type: declaredType(c.sqlite) ?? TYPE.VAR_STRING,
            table: def.name,
            notNull: !c.nullable,
          })),
        };
      }
      case 'ping':
      case 'reset':
        return { kind: 'ok' };
      case 'set_option':
        return { kind: 'eof' };
      case 'statistics':
        return { kind: 'text', text: this.shared.stats() };
      case 'prepare':
        return {
          kind: 'err',
          err: sqlError(ER.UNSUPPORTED_PS, 'Prepared statements are not supported; send the query as text'),
        };
      case 'bad':
        this.log.debug({ err: cmd.detail }, 'bad command');
        return { kind: 'err', err: sqlError(ER.UNKNOWN_COM, 'Unknown command') };
      case 'quit':
        return { kind: 'ok' };
    }
  }

  private use(db: string): Reply {
    if (!this.machine.knownDb(db)) {
      return { kind: 'err', err: sqlError(ER.BAD_DB, `Unknown database '${db}'`) };
    }
    this.database = db;
    return { kind: 'ok' };
  }

  private async query(sql: string): Promise<Reply> {
    const plan = planQuery(sql, { database: this.database, variables: this.shared.variables() });
    if (plan.kind === 'reply') return plan.reply;
    if (plan.kind === 'use') return this.use(plan.db);
    const { deps, runner } = this.shared;
    const limits = deps.config().limits;
    const live: { sessions?: LiveRow[]; streams?: LiveRow[] } = {};
    if (plan.live.includes('sessions')) live.sessions = sessionRows(deps.sessions);
    if (plan.live.includes('streams')) live.streams = streamRows(deps.sessions, deps.registry);
    const started = Date.now();
    const result = await runner.run(
      {
        sql: plan.sql,
        live,
        ctx: {
          database: this.database ?? null,
          user: this.user,
          connectionId: this.connectionId,
          version: deps.serverVersion,
        },
        maxRows: limits.sql_max_rows,
        maxBytes: limits.sql_max_result_bytes,
      },
      limitMs(limits, 'sql_query_timeout'),
    );
    const ms = Date.now() - started;
    if (!result.ok) {
      const limit: LimitName | undefined = result.timedOut ? 'sql_query_timeout' : result.limit;
      if (limit) {
        countLimitHit(limit);
        this.log.warn({ event: 'limit_exceeded', limit, ms }, 'SQL query refused');
      } else {
        this.log.debug({ event: 'sql_query', ms, err: result.err.message }, 'SQL query failed');
      }
      return { kind: 'err', err: result.err };
    }
    this.log.debug({ event: 'sql_query', ms, rows: result.rows.length }, 'SQL query');
    const columns = result.columns.map((c) => {
      let name = plan.literals.find(([lit]) => lit === c.name)?.[1] ?? c.name;
      for (const [from, to] of plan.renames) name = name.split(from).join(to);
      return { ...c, name };
    });
    return { kind: 'rows', columns, rows: result.rows };
  }

  private write(bytes: Buffer): void {
    if (!this.socket.destroyed && this.socket.writable) this.socket.write(bytes);
  }

  private limitExceeded(
    limit: LimitName,
    detail: string,
    reason: CloseReason,
    end: 'close' | 'finish' = 'close',
  ): void {
    if (this.closed) return;
    countLimitHit(limit);
    this.log.warn({ event: 'limit_exceeded', limit, err: detail }, 'limit exceeded; closing connection');
    if (end === 'finish') this.finish(reason);
    else this.close(reason);
  }

  /** Ends after what was written is flushed (an ERR the client should read). */
  private finish(_reason: CloseReason): void {
    if (this.closed) return;
    this.closed = true;
    clearTimeout(this.handshakeTimer);
    this.socket.end();
    // A client that never reads its error does not keep the socket.
    setTimeout(() => this.socket.destroy(), 5_000).unref();
  }

  close(_reason: CloseReason): void {
    if (!this.closed) {
      this.closed = true;
      clearTimeout(this.handshakeTimer);
    }
    this.socket.destroy();
    this.forget();
  }

  private counted = true;
  private forget(): void {
    if (!this.counted) return;
    this.counted = false;
    this.shared.open.count--;
  }
}

/** 20 random bytes in 1..255: clients read the scramble's tail as a NUL-terminated string. */
function scramble(): Buffer {
  const b = randomBytes(20);
  for (let i = 0; i < b.length; i++) if (b[i] === 0) b[i] = randomInt(1, 256);
  return b;
}

function sessionRows(sessions: SessionManager): LiveRow[] {
  const now = Date.now();
  return sessions
    .list()
    .map((s) => [
      s.id,
      s.userId ?? null,
      s.name,
      s.proto,
      s.ip,
      tokenHash(s.token) ?? null,
      s.bytes,
      formatDateTime(new Date(s.openedAt)),
      s.openedAt,
      Math.floor((now - s.openedAt) / 1000),
      s.kind,
    ]);
}

function streamRows(sessions: SessionManager, registry: StreamRegistry): LiveRow[] {
  const clients = new Map<string, { n: number; bytes: number }>();
  for (const s of sessions.list()) {
    if (s.kind !== 'play') continue;
    const c = clients.get(s.name) ?? { n: 0, bytes: 0 };
    c.n++;
    c.bytes += s.bytes;
    clients.set(s.name, c);
  }
  return registry.list().map((st) => {
    const url = st.config.inputs[0];
    const c = clients.get(st.name);
    return [
      st.name,
      url === undefined ? null : redactSecrets(url),
      st.inputState,
      c?.n ?? 0,
      c?.bytes ?? 0,
      st.bus.framesIn,
    ];
  });
}
