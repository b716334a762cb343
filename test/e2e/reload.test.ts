/**
 * Config reload (SPEC §1): SIGHUP and POST /api/config/reload re-read the file; streams whose
 * config did not change keep running and their viewers stay connected; a bad file is refused
 * and the running config stays.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { startStreamgate } from '../helpers/streamgate.js';
import { sleep } from '../helpers/clients.js';
import { rtmpProbe } from '../helpers/rtmp-client.js';

async function streamNames(http: number): Promise<string[]> {
  const r = (await (await fetch(`http://127.0.0.1:${http}/api/streams`)).json()) as {
    streams: { name: string }[];
  };
  return r.streams.map((s) => s.name).sort();
}

test(
  'reload: SIGHUP adds a stream while viewers of an unchanged stream stay connected',
  { timeout: 60_000 },
  async () => {
    const server = await startStreamgate('stream demo { input fake://fake; }');
    const file = join(server.dir, 'streamgate.conf');
    const http = server.ports['http'] ?? 0;
    try {
      await sleep(1500);
      const viewer = rtmpProbe(server.ports['rtmp'] ?? 0, 'static', 'demo', { ms: 7000 });
      await sleep(1500);
      writeFileSync(file, readFileSync(file, 'utf8') + '\nstream extra { input fake://fake; }\n');
      server.proc.kill('SIGHUP');
      for (let i = 0; i < 20 && !(await streamNames(http)).includes('extra'); i++) await sleep(250);
      assert.deepEqual(await streamNames(http), ['demo', 'extra']);
      const v = await viewer;
      assert.equal(v.closedByServer, false, 'the demo viewer was not disconnected');
      assert.ok(v.mediaMessages > 100, `viewer kept receiving (${v.mediaMessages} messages)`);
      assert.ok(server.logs.some((l) => l.includes('config reloaded') && l.includes('"kept":["demo"]')));
    } finally {
      assert.equal(await server.stop(), 0);
    }
  },
);

test(
  'reload: POST /api/config/reload refuses a broken file and keeps running',
  { timeout: 30_000 },
  async () => {
    const server = await startStreamgate('stream demo { input fake://fake; }');
    const file = join(server.dir, 'streamgate.conf');
    const http = server.ports['http'] ?? 0;
    try {
      writeFileSync(file, readFileSync(file, 'utf8') + '\nstream broken {\n');
      const r = await fetch(`http://127.0.0.1:${http}/api/config/reload`, { method: 'POST' });
      assert.equal(r.status, 400);
      const body = (await r.json()) as { error: { code: string; message: string } };
      assert.equal(body.error.code, 'config_invalid');
      assert.match(body.error.message, /streamgate\.conf:\d+:\d+: /);
      assert.deepEqual(await streamNames(http), ['demo']);
    } finally {
      await server.stop();
    }
  },
);
