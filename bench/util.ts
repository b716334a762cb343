/** Helpers shared by the peer benchmarks. */
import { spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync, readdirSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { connect, createServer, type AddressInfo, type Socket } from 'node:net';
import { command } from '../protocols/rtmp/wire/messages.js';

export interface BenchRow {
  name: string;
  ours: number;
  peer: number;
  ratio: number;
  note: string;
}

export function have(cmd: string): boolean {
  return spawnSync('which', [cmd], { stdio: 'ignore' }).status === 0;
}

export async function freePort(): Promise<number> {
  const s = createServer();
  s.listen(0, '127.0.0.1');
  await once(s, 'listening');
  const port = (s.address() as AddressInfo).port;
  await new Promise((r) => s.close(r));
  return port;
}

/** CPU seconds (user + system) used so far by a process and its direct children (nginx workers). */
export function cpuSeconds(pid: number): number {
  const ticks = (p: number): number => {
    try {
      const stat = readFileSync(`/proc/${p}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      return Number(fields[11]) + Number(fields[12]); // utime, stime (fields 14 and 15)
    } catch {
      return 0;
    }
  };
  let total = ticks(pid);
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (ppid === pid) total += ticks(Number(entry));
    } catch {
      // the process went away while we looked
    }
  }
  return total / 100; // USER_HZ is 100 on Linux
}

/** The pid and its direct children (nginx's workers). */
export function family(pid: number): number[] {
  const pids = [pid];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      if (Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]) === pid) pids.push(Number(entry));
    } catch {
      // the process went away while we looked
    }
  }
  return pids;
}

/** CPU seconds used so far by a process and its direct children, user and system apart. */
export function cpuTimes(pid: number): { user: number; sys: number } {
  let user = 0;
  let sys = 0;
  for (const p of family(pid)) {
    try {
      const stat = readFileSync(`/proc/${p}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      user += Number(fields[11]);
      sys += Number(fields[12]);
    } catch {
      // gone
    }
  }
  return { user: user / 100, sys: sys / 100 };
}

/** Resident set size in bytes of a process and its direct children. */
export function rssBytes(pid: number): number {
  let total = 0;
  for (const p of family(pid)) {
    try {
      const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${p}/status`, 'utf8'));
      total += Number(m?.[1] ?? 0) * 1024;
    } catch {
      // gone
    }
  }
  return total;
}

export function median(values: number[]): number {
  const s = [...values].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? (s[mid] ?? NaN) : ((s[mid - 1] ?? NaN) + (s[mid] ?? NaN)) / 2;
}

export interface Viewer {
  socket: Socket;
  bytes: number;
}

/** A player that handshakes, sends connect + createStream + play at once, then only counts bytes. */
export function openViewer(port: number, app: string, name: string): Viewer {
  const socket = connect(port, '127.0.0.1');
  const viewer: Viewer = { socket, bytes: 0 };
  let handshake = Buffer.alloc(0);
  let done = false;
  socket.on('connect', () =>
    socket.write(Buffer.concat([Buffer.from([3]), Buffer.alloc(8), randomBytes(1528)])),
  );
  socket.on('data', (d: Buffer) => {
    if (done) {
      viewer.bytes += d.length;
      return;
    }
    handshake = Buffer.concat([handshake, d]);
    if (handshake.length < 3073) return;
    done = true;
    socket.write(handshake.subarray(1, 1537));
    socket.write(command(3, 0, 128, 'connect', 1, { app, tcUrl: `rtmp://127.0.0.1:${port}/${app}` }));
    socket.write(command(3, 0, 128, 'createStream', 2, null));
    socket.write(command(8, 1, 128, 'play', 3, null, name));
  });
  socket.on('error', () => undefined);
  return viewer;
}
