/**
 * Runs the real `streamgate` CLI as a child process on loopback with a config written
 * for the test (listeners on port 0), and reads back the ports it bound from its
 * start-up log line.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { once } from 'node:events';

export interface RunningStreamgate {
  proc: ChildProcess;
  ports: Record<string, number>;
  logs: string[];
  dir: string;
  stop(): Promise<number | null>;
}

const ROOT = new URL('../..', import.meta.url).pathname;

/** Starts streamgate; `config` is the body appended after the listener lines, or `null` for the embedded default. */
export async function startStreamgate(
  config: string | null,
  options: { env?: Record<string, string>; listeners?: string } = {},
): Promise<RunningStreamgate> {
  const dir = mkdtempSync(join(tmpdir(), 'streamgate-e2e-'));
  const args = [join(ROOT, 'bin/streamgate.js')];
  if (config !== null) {
    const file = join(dir, 'streamgate.conf');
    const listeners = options.listeners ?? 'http 127.0.0.1:0;\nrtmp 127.0.0.1:0;\n';
    writeFileSync(file, `${listeners}history sqlite://${join(dir, 'history.db')};\n${config}\n`);
    args.push('--config', file);
  }
  const proc = spawn(process.execPath, args, {
    cwd: dir,
    env: { ...process.env, LOG_LEVEL: 'debug', NODE_ENV: 'production', ...options.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const logs: string[] = [];
  let ports: Record<string, number> | undefined;
  const ready = new Promise<Record<string, number>>((resolve, reject) => {
    let buf = '';
    const onLine = (line: string): void => {
      logs.push(line);
      if (!ports && line.includes('streamgate is running')) {
        const parsed = JSON.parse(line) as { listen: Record<string, { port: number }> };
        ports = Object.fromEntries(Object.entries(parsed.listen).map(([k, v]) => [k, v.port]));
        resolve(ports);
      }
    };
    proc.stdout?.on('data', (d: Buffer) => {
      const lines = (buf + d.toString()).split('\n');
      buf = lines.pop() ?? '';
      lines.filter(Boolean).forEach(onLine);
    });
    proc.stderr?.on('data', (d: Buffer) => logs.push(...d.toString().split('\n').filter(Boolean)));
    proc.once('exit', (code) => reject(new Error(`streamgate exited with ${code}:\n${logs.join('\n')}`)));
  });
  const timer = setTimeout(() => proc.kill('SIGKILL'), 30_000);
  const bound = await ready.finally(() => clearTimeout(timer));
  return {
    proc,
    ports: bound,
    logs,
    dir,
    async stop() {
      if (proc.exitCode !== null) return proc.exitCode;
      proc.kill('SIGTERM');
      const kill = setTimeout(() => proc.kill('SIGKILL'), 10_000);
      const [code] = (await once(proc, 'exit')) as [number | null];
      clearTimeout(kill);
      return code;
    },
  };
}
