/**
 * The command line from outside (SPEC §1, §3): help, check-config, refusing a bad
 * config before anything starts, and the embedded default serving `demo` with no setup.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createConnection } from 'node:net';
import { startStreamgate } from '../helpers/streamgate.js';
import { ffprobePackets } from '../helpers/clients.js';
import { requireTool } from '../helpers/tools.js';

const BIN = new URL('../../bin/streamgate.js', import.meta.url).pathname;

function cli(args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', timeout: 30_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

function tempFile(text: string): string {
  const file = join(mkdtempSync(join(tmpdir(), 'streamgate-cli-')), 'bad.conf');
  writeFileSync(file, text);
  return file;
}

test('cli: --help on every command exits 0', () => {
  const main = cli(['--help']);
  assert.equal(main.status, 0);
  assert.match(main.stdout, /streamgate \[--config FILE\]/);
  const check = cli(['check-config', '--help']);
  assert.equal(check.status, 0);
  assert.match(check.stdout, /check-config FILE/);
});

test('cli: bad usage exits 2', () => {
  assert.equal(cli(['--no-such-flag']).status, 2);
  assert.equal(cli(['check-config']).status, 2);
});

test('cli: check-config prints FILE:LINE:COL: message and exits 2', () => {
  const file = tempFile('http 8080;\nstream demo {\n  input fake://fake;\n  bogus 1;\n}\n');
  const r = cli(['check-config', file]);
  assert.equal(r.status, 2);
  assert.match(
    r.stderr,
    new RegExp(`^${file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}:4:3: unknown directive 'bogus'`, 'm'),
  );
});

test('cli: check-config accepts the sample config', () => {
  const r = cli(['check-config', new URL('../../samples/streamgate.conf', import.meta.url).pathname]);
  assert.equal(r.status, 0, r.stderr);
});

test('cli: a bad config is refused at start-up and nothing listens', async () => {
  const file = tempFile('rtmp 127.0.0.1:19399;\nstream api { input fake://fake; }\n');
  const r = cli(['--config', file]);
  assert.equal(r.status, 2);
  assert.match(r.stderr, /bad\.conf:2:8: /);
  const refused = await new Promise<boolean>((resolve) => {
    const s = createConnection(19399, '127.0.0.1');
    s.on('connect', () => {
      s.destroy();
      resolve(false);
    });
    s.on('error', () => resolve(true));
  });
  assert.equal(refused, true);
});

test(
  'cli: the embedded default serves demo over RTMP with no setup, and SIGTERM exits 0',
  { timeout: 60_000 },
  async (t) => {
    if (!requireTool(t, 'ffprobe')) return;
    const server = await startStreamgate(null);
    try {
      assert.deepEqual(Object.keys(server.ports).sort(), ['http', 'rtmp', 'rtsp']);
      assert.equal(server.ports['rtsp'], 8554);
      assert.equal(server.ports['rtmp'], 1935);
      assert.equal(server.ports['http'], 8080);
      const r = await ffprobePackets('rtmp://127.0.0.1:1935/static/demo', 2);
      assert.equal(r.code, 0, r.stderr);
      assert.ok(r.videoFrames > 20 && r.audioFrames > 20, `v=${r.videoFrames} a=${r.audioFrames}`);
      assert.ok(
        server.logs.some((l) => l.includes('rtmp://127.0.0.1:1935/static/demo')),
        'start-up log prints the URLs',
      );
    } finally {
      assert.equal(await server.stop(), 0);
    }
  },
);

test('cli: after npm run build the command runs the compiled server, and sources edited since fall back to them', async (t) => {
  const root = new URL('../..', import.meta.url).pathname;
  const build = spawnSync('npm', ['run', 'build', '--silent'], {
    cwd: root,
    encoding: 'utf8',
    timeout: 180_000,
  });
  assert.equal(build.status, 0, build.stderr);
  const compiled = await startStreamgate('stream demo { input publish://; }');
  t.after(() => compiled.stop());
  assert.equal(runtimeOf(compiled.logs), 'compiled');

  // A source newer than the build: the build is stale, so the sources run instead.
  const now = new Date();
  utimesSync(join(root, 'src/clock.ts'), now, now);
  const edited = await startStreamgate('stream demo { input publish://; }');
  t.after(() => edited.stop());
  assert.equal(runtimeOf(edited.logs), 'sources');
});

function runtimeOf(logs: string[]): string | undefined {
  const running = logs.find((l) => l.includes('streamgate is running')) ?? '{}';
  return (JSON.parse(running) as { runtime?: string }).runtime;
}
