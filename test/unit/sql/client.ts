/**
 * A minimal MySQL client for in-process tests of the SQL endpoint: protocol 4.1 login with
 * mysql_native_password, COM_QUERY and raw bytes. Real clients (mariadb, mysql2) are in e2e.
 */
import { connect, type Socket } from 'node:net';
import { NATIVE, scrambleResponse } from '../../../src/sql/wire/auth.js';
import { CAP, frame, PacketReader, Reader, type Packet } from '../../../src/sql/wire/codec.js';

export class TestMysqlClient {
  private readonly reader = new PacketReader(64 << 20);
  private readonly packets: Packet[] = [];
  private waiters: (() => void)[] = [];
  closed = false;

  private constructor(readonly socket: Socket) {
    socket.on('data', (d: Buffer) => {
      this.packets.push(...this.reader.push(d));
      this.wake();
    });
    socket.on('close', () => {
      this.closed = true;
      this.wake();
    });
    socket.on('error', () => undefined);
  }

  private wake(): void {
    for (const w of this.waiters.splice(0)) w();
  }

  static async open(port: number): Promise<TestMysqlClient> {
    const s = connect(port, '127.0.0.1');
    await new Promise<void>((resolve, reject) => {
      s.once('connect', resolve);
      s.once('error', reject);
    });
    return new TestMysqlClient(s);
  }

  /** The next packet, or undefined once the server closed. */
  async packet(timeoutMs = 5000): Promise<Packet | undefined> {
    const deadline = Date.now() + timeoutMs;
    while (this.packets.length === 0) {
      if (this.closed) return undefined;
      if (Date.now() > deadline) throw new Error('no packet from the server');
      await new Promise<void>((resolve) => {
        this.waiters.push(resolve);
        setTimeout(resolve, 50);
      });
    }
    return this.packets.shift();
  }

  async login(user: string, password: string, database?: string): Promise<Packet | undefined> {
    const greeting = await this.packet();
    if (!greeting) throw new Error('no greeting');
    const r = new Reader(greeting.payload);
    r.u8();
    r.nulStr();
    r.u32();
    const part1 = r.bytes(8);
    r.bytes(1 + 2 + 1 + 2 + 2 + 1 + 10);
    const part2 = r.bytes(12);
    const scramble = Buffer.concat([part1, part2]);
    const caps =
      CAP.LONG_PASSWORD |
      CAP.PROTOCOL_41 |
      CAP.SECURE_CONNECTION |
      CAP.PLUGIN_AUTH |
      (database ? CAP.CONNECT_WITH_DB : 0);
    const head = Buffer.alloc(32);
    head.writeUInt32LE(caps, 0);
    head.writeUInt32LE(1 << 24, 4);
    head[8] = 45;
    const token = scrambleResponse(NATIVE, password, scramble);
    this.socket.write(
      frame(
        Buffer.concat([
          head,
          Buffer.from(user + '\0'),
          Buffer.from([token.length]),
          token,
          database ? Buffer.from(database + '\0') : Buffer.alloc(0),
          Buffer.from(NATIVE + '\0'),
        ]),
        1,
      ).bytes,
    );
    return this.packet();
  }

  /** Sends COM_QUERY; resolves with the rows (text cells) or the error. */
  async query(
    sql: string,
  ): Promise<{ columns: string[]; rows: (string | null)[][] } | { code: number; message: string }> {
    this.socket.write(frame(Buffer.concat([Buffer.from([0x03]), Buffer.from(sql)]), 0).bytes);
    const first = await this.packet(20_000);
    if (!first) throw new Error('connection closed');
    if (first.payload[0] === 0xff) return decodeErr(first.payload);
    if (first.payload[0] === 0x00) return { columns: [], rows: [] };
    const n = new Reader(first.payload).lenencInt();
    const columns: string[] = [];
    for (let i = 0; i < n; i++) {
      const c = new Reader((await this.packet())?.payload ?? Buffer.alloc(0));
      for (let k = 0; k < 4; k++) c.bytes(c.lenencInt());
      columns.push(c.bytes(c.lenencInt()).toString());
    }
    await this.packet(); // EOF
    const rows: (string | null)[][] = [];
    for (;;) {
      const p = await this.packet();
      if (!p) throw new Error('connection closed');
      if (p.payload[0] === 0xfe && p.payload.length < 9) break;
      if (p.payload[0] === 0xff) return decodeErr(p.payload);
      const r = new Reader(p.payload);
      const row: (string | null)[] = [];
      for (let i = 0; i < n; i++) {
        if (p.payload[r.off] === 0xfb) {
          r.u8();
          row.push(null);
        } else row.push(r.bytes(r.lenencInt()).toString());
      }
      rows.push(row);
    }
    return { columns, rows };
  }

  close(): void {
    this.socket.destroy();
  }
}

export function decodeErr(payload: Buffer): { code: number; message: string } {
  return { code: payload.readUInt16LE(1), message: payload.subarray(9).toString() };
}
