// Reading config files, check-config, the embedded default and the shipped sample.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { EMBEDDED_CONFIG_TEXT, loadEmbeddedConfig } from '../../../src/config/default.js';
import { checkConfigFile, loadConfigFile } from '../../../src/config/load.js';
import { formatConfigError, parseConfig } from '../../../src/config/parse.js';
import { resolveStreamConfig } from '../../../src/config/resolve.js';

const SAMPLE = fileURLToPath(new URL('../../../samples/streamgate.conf', import.meta.url));

test('the embedded default parses and matches SPEC §3', () => {
  const r = parseConfig(EMBEDDED_CONFIG_TEXT, '<embedded>');
  assert.ok(!('errors' in r), 'errors' in r ? r.errors.map(formatConfigError).join('\n') : '');
  const c = loadEmbeddedConfig();
  assert.equal(c.source, '<embedded>');
  assert.deepEqual(c.http, { port: 8080 });
  assert.deepEqual(c.rtmp, { port: 1935 });
  assert.deepEqual(c.rtsp, { port: 8554 });
  assert.equal(c.onPlay, undefined);
  const demo = resolveStreamConfig('demo', c);
  assert.deepEqual(demo?.inputs, ['fake://fake']);
  assert.equal(demo?.onPlay, undefined, 'anyone may play demo');
  const live = resolveStreamConfig('live/cam1', c);
  assert.deepEqual(live?.inputs, ['publish://']);
  assert.equal(live?.onPublish?.url, 'auth://loopback_publish');
  const chain = c.authBackends.get('loopback_publish');
  assert.ok(chain);
  assert.equal(chain.allowDefault, false, 'everyone but loopback is denied');
  assert.deepEqual(chain.backends, []);
  assert.deepEqual(
    chain.rules.map((r) => [r.action, r.kind, r.values]),
    [
      ['allow', 'ip', ['127.0.0.1/8']],
      ['allow', 'ip', ['::1']],
    ],
  );
});

test('samples/streamgate.conf parses', async () => {
  const r = await loadConfigFile(SAMPLE);
  assert.ok(!('errors' in r), 'errors' in r ? r.errors.map(formatConfigError).join('\n') : '');
  assert.ok(r.config.streams.some((s) => s.name === 'demo'));
  assert.equal(r.config.onPlay, undefined, 'no backend a laptop lacks is enabled');
});

test('a missing file is an error at 1:1', async () => {
  const path = join(tmpdir(), 'streamgate-does-not-exist.conf');
  const r = await loadConfigFile(path);
  assert.ok('errors' in r);
  assert.equal(r.errors.length, 1);
  const line = formatConfigError(r.errors[0]!);
  assert.ok(line.startsWith(`${path}:1:1: cannot read config: ENOENT`), line);
});

test('a directory is an error, not a crash', async () => {
  const r = await loadConfigFile(tmpdir());
  assert.ok('errors' in r);
  assert.match(r.errors[0]?.message ?? '', /^cannot read config: EISDIR/);
});

test('check-config: exit codes and output', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'sg-config-'));
  try {
    const good = join(dir, 'good.conf');
    const bad = join(dir, 'bad.conf');
    await writeFile(good, 'http 8080;\nstream demo { input fake://fake; }\n');
    await writeFile(bad, 'http 8080\nstream api { input fake://fake; }\n');
    const g = await checkConfigFile(good);
    assert.equal(g.exitCode, 0);
    assert.deepEqual(g.stderr, []);
    assert.deepEqual(g.stdout, [`${good}: OK (1 stream, 0 templates, 0 auth backends)`]);
    const b = await checkConfigFile(bad);
    assert.equal(b.exitCode, 2);
    assert.deepEqual(b.stdout, []);
    assert.deepEqual(b.stderr, [
      `${bad}:1:10: missing ';' after '8080'`,
      `${bad}:2:8: bad stream name 'api': it may not start with 'api' (reserved)`,
      `${bad}: 2 errors`,
    ]);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
