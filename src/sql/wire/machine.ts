/**
 * One MySQL connection's protocol state, sans-IO: bytes in, events out. It sends the
 * greeting, authenticates the client against the one account it is given, and then turns
 * each command packet into a `Command` for the caller to answer in order with `encodeReply`.
 *
 * What it closes a connection for: an oversized packet (ER_NET_PACKET_TOO_LARGE), a packet
 * out of sequence, a handshake it cannot read, failed authentication, and more than
 * `MAX_BAD_COMMANDS` unknown or unreadable commands (a flood of garbage costs its sender the
 * connection, nobody else anything). A wrong SQL statement is not a protocol error.
 */
import { safeEqual } from '../../core/secrets.js';
import { checkScramble, isKnownPlugin, NATIVE, SHA2, type AuthPlugin } from './auth.js';
import {
  CAP,
  COM,
  decodeHandshakeResponse,
  encodeAuthMoreData,
  encodeAuthSwitch,
  encodeEof,
  encodeErr,
  encodeGreeting,
  encodeOk,
  encodeResultSet,
  encodeColumn,
  frame,
  isSslRequest,
  PacketReader,
  PacketTooLarge,
  ProtocolError,
  Reader,
  type Cell,
  type Column,
  type Packet,
  type SqlError,
} from './codec.js';

/** Unknown or unreadable commands one connection may send before it is closed. */
export const MAX_BAD_COMMANDS = 16;

/** MySQL error codes and SQLSTATEs this server sends. */
export const ER = {
  ACCESS_DENIED: { code: 1045, state: '28000' },
  BAD_DB: { code: 1049, state: '42000' },
  HANDSHAKE: { code: 1043, state: '08S01' },
  UNKNOWN_COM: { code: 1047, state: '08S01' },
  PACKET_TOO_LARGE: { code: 1153, state: '08S01' },
  OUT_OF_ORDER: { code: 1156, state: '08S01' },
  PARSE: { code: 1064, state: '42000' },
  NO_SUCH_TABLE: { code: 1146, state: '42S02' },
  NOT_SUPPORTED: { code: 1235, state: '42000' },
  READ_ONLY: { code: 1290, state: 'HY000' },
  UNSUPPORTED_PS: { code: 1295, state: 'HY000' },
  TOO_BIG_SELECT: { code: 1104, state: '42000' },
  QUERY_TIMEOUT: { code: 3024, state: 'HY000' },
  NO_DB: { code: 1046, state: '3D000' },
  INTERNAL: { code: 1105, state: 'HY000' },
} as const;

export function sqlError(e: { code: number; state: string }, message: string): SqlError {
  return { code: e.code, state: e.state, message };
}

/** A command after authentication, in the order it arrived. */
export type Command =
  | { kind: 'quit' }
  | { kind: 'init_db'; db: string }
  | { kind: 'query'; sql: string }
  | { kind: 'field_list'; table: string }
  | { kind: 'ping' }
  | { kind: 'statistics' }
  | { kind: 'reset' }
  | { kind: 'set_option' }
  | { kind: 'prepare' }
  | { kind: 'bad'; detail: string };

/** What a command is answered with. */
export type Reply =
  | { kind: 'ok'; info?: string }
  | { kind: 'err'; err: SqlError }
  | { kind: 'rows'; columns: readonly Column[]; rows: readonly (readonly Cell[])[] }
  | { kind: 'fields'; columns: readonly Column[] }
  | { kind: 'eof' }
  | { kind: 'text'; text: string };

export type MachineEvent =
  | { type: 'send'; bytes: Buffer }
  | {
      type: 'authenticated';
      user: string;
      plugin: AuthPlugin;
      database?: string;
      attrs: Record<string, string>;
    }
  | { type: 'auth_failed'; user: string; detail: string }
  | { type: 'command'; command: Command }
  /** End the connection once what was sent is flushed. */
  | {
      type: 'close';
      reason: 'quit' | 'auth_failed' | 'protocol_error' | 'packet_too_large' | 'bad_commands';
      detail: string;
    };

export interface MachineOptions {
  serverVersion: string;
  connectionId: number;
  /** 20 random bytes with no zero byte. */
  scramble: Buffer;
  /** The one account (edit_auth). */
  account: { user: string; password: string };
  /** Databases a client may name (`flussonic`, `streamgate`); compared case-insensitively. */
  databases: readonly string[];
  /** The client's address, for the "Access denied for user 'u'@'ip'" message. */
  clientIp: string;
  maxPacketBytes: number;
}

type State = 'start' | 'response' | 'switch' | 'ready' | 'closed';

export class MysqlMachine {
  private state: State = 'start';
  private readonly reader: PacketReader;
  private badCommands = 0;
  private user = '';
  private database: string | undefined;
  private attrs: Record<string, string> = {};

  constructor(private readonly o: MachineOptions) {
    this.reader = new PacketReader(o.maxPacketBytes);
  }

  get closed(): boolean {
    return this.state === 'closed';
  }

  get authenticated(): boolean {
    return this.state === 'ready';
  }

  /** The greeting, sent as soon as the connection is accepted. */
  greeting(): Buffer {
    this.state = 'response';
    return frame(
      encodeGreeting({
        serverVersion: this.o.serverVersion,
        connectionId: this.o.connectionId,
        scramble: this.o.scramble,
        authPlugin: NATIVE,
      }),
      0,
    ).bytes;
  }

  receive(chunk: Buffer): MachineEvent[] {
    if (this.state === 'closed') return [];
    let packets: Packet[];
    try {
      packets = this.reader.push(chunk);
    } catch (err) {
      if (!(err instanceof PacketTooLarge)) throw err;
      // The sequence number of the reply does not matter: the connection ends with it.
      return this.fail(
        'packet_too_large',
        sqlError(
          ER.PACKET_TOO_LARGE,
          `Got a packet bigger than 'max_allowed_packet' bytes (${this.o.maxPacketBytes})`,
        ),
        err.message,
        1,
      );
    }
    const out: MachineEvent[] = [];
    for (const p of packets) {
      if (this.closed) break;
      out.push(...this.packet(p));
    }
    return out;
  }

  private packet(p: Packet): MachineEvent[] {
    switch (this.state) {
      case 'response':
        return this.onResponse(p);
      case 'switch':
        return this.onSwitchResponse(p);
      case 'ready':
        return this.onCommand(p);
      default:
        return this.fail(
          'protocol_error',
          sqlError(ER.HANDSHAKE, 'Bad handshake'),
          'data before the greeting',
          1,
        );
    }
  }

  private fail(
    reason: Extract<MachineEvent, { type: 'close' }>['reason'],
    err: SqlError,
    detail: string,
    seq: number,
  ): MachineEvent[] {
    this.state = 'closed';
    return [
      { type: 'send', bytes: frame(encodeErr(err), seq).bytes },
      { type: 'close', reason, detail },
    ];
  }

  private onResponse(p: Packet): MachineEvent[] {
    if (p.seq !== 1) {
      return this.fail(
        'protocol_error',
        sqlError(ER.OUT_OF_ORDER, 'Got packets out of order'),
        `seq ${p.seq}`,
        2,
      );
    }
    if (isSslRequest(p.payload)) {
      return this.fail(
        'protocol_error',
        sqlError(ER.HANDSHAKE, 'This server does not offer TLS; connect without SSL (e.g. --skip-ssl)'),
        'client asked for TLS',
        2,
      );
    }
    let resp;
    try {
      resp = decodeHandshakeResponse(p.payload);
    } catch (err) {
      if (!(err instanceof ProtocolError)) throw err;
      return this.fail('protocol_error', sqlError(ER.HANDSHAKE, 'Bad handshake'), err.message, 2);
    }
    this.user = resp.user;
    this.attrs = resp.attrs;
    this.database = resp.database === '' ? undefined : resp.database;
    const plugin = resp.authPlugin ?? NATIVE;
    const canSwitch = (resp.caps & CAP.PLUGIN_AUTH) !== 0;
    if (isKnownPlugin(plugin)) {
      // A client whose own plugin differs from the greeting's (libmariadb with
      // --default-auth=caching_sha2_password) may send nothing and wait to be asked.
      const waiting = resp.authResponse.length === 0 && this.o.account.password !== '' && plugin !== NATIVE;
      if (!waiting || !canSwitch) return this.decide(plugin, resp.authResponse, 2);
      return this.switchTo(plugin);
    }
    if (!canSwitch) {
      return this.denied('client cannot switch authentication plugin', resp.authResponse.length > 0, 2);
    }
    // A plugin we do not check (ed25519, dialog, …): ask for mysql_native_password instead.
    return this.switchTo(NATIVE);
  }

  private switchPlugin: AuthPlugin = NATIVE;

  private switchTo(plugin: AuthPlugin): MachineEvent[] {
    this.state = 'switch';
    this.switchPlugin = plugin;
    return [{ type: 'send', bytes: frame(encodeAuthSwitch(plugin, this.o.scramble), 2).bytes }];
  }

  private onSwitchResponse(p: Packet): MachineEvent[] {
    if (p.seq !== 3) {
      return this.fail(
        'protocol_error',
        sqlError(ER.OUT_OF_ORDER, 'Got packets out of order'),
        `seq ${p.seq}`,
        4,
      );
    }
    return this.decide(this.switchPlugin, p.payload, 4);
  }

  private decide(plugin: AuthPlugin, response: Buffer, seq: number): MachineEvent[] {
    const { user, password } = this.o.account;
    // Both checks always run, so a wrong user name answers as fast as a wrong password.
    const passOk = checkScramble(plugin, password, this.o.scramble, response);
    const userOk = safeEqual(this.user, user);
    if (!passOk || !userOk) {
      return this.denied(userOk ? 'wrong password' : 'unknown user', response.length > 0, seq);
    }
    const events: MachineEvent[] = [];
    let s = seq;
    if (plugin === SHA2) {
      const f = frame(encodeAuthMoreData(Buffer.from([0x03])), s);
      events.push({ type: 'send', bytes: f.bytes });
      s = f.next;
    }
    if (this.database !== undefined && !this.knownDb(this.database)) {
      events.push(
        ...this.fail(
          'auth_failed',
          sqlError(ER.BAD_DB, `Unknown database '${this.database}'`),
          'unknown database',
          s,
        ),
      );
      return events;
    }
    this.state = 'ready';
    events.push({ type: 'send', bytes: frame(encodeOk(), s).bytes });
    events.push({
      type: 'authenticated',
      user: this.user,
      plugin,
      ...(this.database !== undefined ? { database: this.database } : {}),
      attrs: this.attrs,
    });
    return events;
  }

  private denied(detail: string, usingPassword: boolean, seq: number): MachineEvent[] {
    const message = `Access denied for user '${this.user}'@'${this.o.clientIp}' (using password: ${usingPassword ? 'YES' : 'NO'})`;
    return [
      { type: 'auth_failed', user: this.user, detail },
      ...this.fail('auth_failed', sqlError(ER.ACCESS_DENIED, message), detail, seq),
    ];
  }

  knownDb(name: string): boolean {
    return this.o.databases.some((d) => sameText(d, name));
  }

  private onCommand(p: Packet): MachineEvent[] {
    if (p.seq !== 0) {
      return this.fail(
        'protocol_error',
        sqlError(ER.OUT_OF_ORDER, 'Got packets out of order'),
        `seq ${p.seq}`,
        1,
      );
    }
    const command = parseCommand(p.payload);
    if (command.kind === 'bad' && ++this.badCommands > MAX_BAD_COMMANDS) {
      return this.fail(
        'bad_commands',
        sqlError(ER.UNKNOWN_COM, 'Too many unknown commands; closing the connection'),
        `more than ${MAX_BAD_COMMANDS} bad commands`,
        1,
      );
    }
    if (command.kind === 'quit') {
      this.state = 'closed';
      return [{ type: 'close', reason: 'quit', detail: 'COM_QUIT' }];
    }
    return [{ type: 'command', command }];
  }
}

function sameText(a: string, b: string): boolean {
  return a.toLowerCase() === b.toLowerCase();
}

/** One command packet's payload as a Command; never throws. */
export function parseCommand(payload: Buffer): Command {
  if (payload.length === 0) return { kind: 'bad', detail: 'empty command packet' };
  const code = payload[0] as number;
  const body = payload.subarray(1);
  switch (code) {
    case COM.QUIT:
      return { kind: 'quit' };
    case COM.INIT_DB:
      return { kind: 'init_db', db: body.toString('utf8') };
    case COM.QUERY:
      return { kind: 'query', sql: body.toString('utf8') };
    case COM.FIELD_LIST: {
      const r = new Reader(body);
      return { kind: 'field_list', table: r.nulStr().toString('utf8') };
    }
    case COM.PING:
      return { kind: 'ping' };
    case COM.STATISTICS:
      return { kind: 'statistics' };
    case COM.RESET_CONNECTION:
      return { kind: 'reset' };
    case COM.SET_OPTION:
      return { kind: 'set_option' };
    case COM.STMT_PREPARE:
      return { kind: 'prepare' };
    default:
      return { kind: 'bad', detail: `unknown command 0x${code.toString(16).padStart(2, '0')}` };
  }
}

/** A reply as framed bytes; every reply to a command starts at sequence number 1. */
export function encodeReply(reply: Reply, schema: string): Buffer {
  switch (reply.kind) {
    case 'ok':
      return frame(encodeOk(reply.info !== undefined ? { info: reply.info } : {}), 1).bytes;
    case 'err':
      return frame(encodeErr(reply.err), 1).bytes;
    case 'eof':
      return frame(encodeEof(), 1).bytes;
    case 'text':
      return frame(Buffer.from(reply.text, 'utf8'), 1).bytes;
    case 'rows':
      return encodeResultSet(reply.columns, reply.rows, schema, 1);
    case 'fields': {
      const parts: Buffer[] = [];
      let s = 1;
      for (const c of reply.columns) {
        // COM_FIELD_LIST column definitions end with an (empty) default value.
        const f = frame(Buffer.concat([encodeColumn(c, schema), Buffer.from([0xfb])]), s);
        parts.push(f.bytes);
        s = f.next;
      }
      parts.push(frame(encodeEof(), s).bytes);
      return Buffer.concat(parts);
    }
  }
}
