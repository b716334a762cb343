/**
 * `streamgate token mint|verify` (SPEC §1, §6): the real binary for round trips, tampering and
 * exit codes; in-process runs with an injected clock for expiry and output details.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { runTokenCli } from '../../../src/cli/token.js';

const BIN = new URL('../../../bin/streamgate.js', import.meta.url).pathname;
const ENV = { ...process.env, STREAMGATE_TOKEN_SECRET: '', STREAMGATE_ADMIN_VIEW_SECRET: '' };

function cli(args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [BIN, 'token', ...args], {
    encoding: 'utf8',
    timeout: 30_000,
    env: ENV,
  });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

async function run(args: string[], now = 1_700_000_000_000, env: NodeJS.ProcessEnv = {}) {
  let stdout = '';
  let stderr = '';
  const code = await runTokenCli(args, {
    stdout: (s) => (stdout += s),
    stderr: (s) => (stderr += s),
    env,
    now: () => now,
  });
  return { code, stdout, stderr };
}

test('cli token: --help everywhere exits 0; bad usage exits 2', () => {
  for (const args of [['--help'], ['mint', '--help'], ['verify', '--help']]) {
    const r = cli(args);
    assert.equal(r.status, 0, args.join(' '));
    assert.match(r.stdout, /Usage/);
  }
  for (const args of [
    [],
    ['frob'],
    ['mint'],
    ['mint', '--kind', 'nope'],
    ['mint', '--kind', 'ks', '--secret', 's'],
    ['verify', '--kind', 'ks', '--secret', 's'],
    ['mint', '--bogus'],
  ]) {
    assert.equal(cli(args).status, 2, args.join(' '));
  }
});

test('cli token: KS mint then verify round trip (v2 and v1); tampered → exit 1; the secret is never printed', () => {
  for (const v1 of [false, true]) {
    const secret = 'Sup3rSecret';
    const m = cli([
      'mint',
      '--kind',
      'ks',
      '--partner',
      '123',
      '--secret',
      secret,
      '--stream',
      'live/cam1',
      '--user',
      'u1',
      '--expiry',
      '600',
      ...(v1 ? ['--v1'] : []),
    ]);
    assert.equal(m.status, 0, m.stderr);
    const ks = m.stdout.trim();
    assert.match(ks, v1 ? /^[A-Za-z0-9+/]+=*$/ : /^djJ8MTIzf[A-Za-z0-9_-]+=*$/);
    const ok = cli([
      'verify',
      '--kind',
      'ks',
      '--partner',
      '123',
      '--secret',
      secret,
      '--stream',
      'live/cam1',
      ks,
    ]);
    assert.equal(ok.status, 0, ok.stdout + ok.stderr);
    assert.match(ok.stdout, /^accepted: sview:live\/cam1 grants live\/cam1$/m);
    assert.match(ok.stdout, /^user: u1$/m);
    assert.match(ok.stdout, /^expires: .* \(in (5\d\d|600) s\)$/m);
    assert.ok(!ok.stdout.includes(secret) && !ok.stdout.includes(ks));
    const other = cli(['verify', '--kind', 'ks', '--secret', secret, '--stream', 'live/cam2', ks]);
    assert.equal(other.status, 1);
    assert.match(other.stdout, /^refused: NO_PRIVILEGE/m);
    const tampered = ks.slice(0, -3) + (ks.at(-3) === 'A' ? 'B' : 'A') + ks.slice(-2);
    const bad = cli(['verify', '--kind', 'ks', '--secret', secret, '--stream', 'live/cam1', tampered]);
    assert.equal(bad.status, 1);
    assert.match(bad.stdout, /^refused: (INVALID_SIGNATURE|INVALID_STR)/m);
  }
});

test('cli token: jwt, securetoken and admin round trips through the binary', () => {
  const jwt = cli([
    'mint',
    '--kind',
    'jwt',
    '--secret',
    'k',
    '--stream',
    'live/*',
    '--user',
    'u',
    '--proto',
    'rtmp',
  ]).stdout.trim();
  assert.equal(
    cli(['verify', '--kind', 'jwt', '--secret', 'k', '--stream', 'live/a', '--proto', 'rtmp', jwt]).status,
    0,
  );
  assert.equal(
    cli(['verify', '--kind', 'jwt', '--secret', 'k', '--stream', 'live/a', '--proto', 'hls', jwt]).status,
    1,
  );
  const st = cli([
    'mint',
    '--kind',
    'securetoken',
    '--secret',
    'K',
    '--stream',
    's',
    '--ip',
    '10.0.0.1',
  ]).stdout.trim();
  assert.equal(
    cli(['verify', '--kind', 'securetoken', '--secret', 'K', '--stream', 's', '--ip', '10.0.0.1', st]).status,
    0,
  );
  assert.equal(
    cli(['verify', '--kind', 'securetoken', '--secret', 'K', '--stream', 's', '--ip', '10.0.0.2', st]).status,
    1,
  );
  const adm = cli(['mint', '--kind', 'admin', '--secret', 'srv']).stdout.trim();
  assert.match(adm, /^ADM1-\d+-[0-9a-f]{40}$/);
  assert.equal(cli(['verify', '--kind', 'admin', '--secret', 'srv', adm]).status, 0);
  assert.equal(cli(['verify', '--kind', 'admin', '--secret', 'other', adm]).status, 1);
});

test('cli token (in process): expiry on an injected clock, env secret, fields of a refused KS', async () => {
  const t0 = 1_700_000_000_000;
  const m = await run(
    ['mint', '--kind', 'ks', '--partner', '123', '--stream', 'stream1', '--expiry', '60'],
    t0,
    { STREAMGATE_TOKEN_SECRET: 's' },
  );
  assert.equal(m.code, 0);
  const ks = m.stdout.trim();
  const ok = await run(
    ['verify', '--kind', 'ks', '--secret', 'x,s', '--partner', '123', '--stream', 'stream1', ks],
    t0,
  );
  assert.equal(ok.code, 0);
  assert.match(ok.stdout, /auth_duration: 60 s/);
  const late = await run(['verify', '--kind', 'ks', '--secret', 's', '--stream', 'stream1', ks], t0 + 60_000);
  assert.equal(late.code, 1);
  assert.match(late.stdout, /^refused: EXPIRED \(code -5\): expired 0 s ago$/m);
  assert.match(late.stdout, /^privileges: sview:stream1$/m);
  const partner = await run(['verify', '--kind', 'ks', '--secret', 's', '--partner', '9', ks], t0);
  assert.match(partner.stdout, /^refused: INVALID_PARTNER \(code -2\)/m);
  // A forged KS shows only what needs no secret.
  const forged = await run(['verify', '--kind', 'ks', '--secret', 'nope', ks], t0);
  assert.match(forged.stdout, /^refused: INVALID_SIGNATURE/m);
  assert.ok(!forged.stdout.includes('privileges:'));
});

test('cli token (in process): jwt with --key (ES256) verifies against a JWKS file', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'streamgate-cli-jwt-'));
  try {
    const kp = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const keyFile = join(dir, 'key.pem');
    writeFileSync(keyFile, kp.privateKey.export({ type: 'pkcs8', format: 'pem' }));
    const jwks = join(dir, 'jwks.json');
    writeFileSync(jwks, JSON.stringify({ keys: [{ ...kp.publicKey.export({ format: 'jwk' }), kid: 'k1' }] }));
    const m = await run([
      'mint',
      '--kind',
      'jwt',
      '--key',
      keyFile,
      '--kid',
      'k1',
      '--stream',
      'demo',
      '--max-sessions',
      '2',
    ]);
    assert.equal(m.code, 0, m.stderr);
    const v = await run(['verify', '--kind', 'jwt', '--jwks', jwks, '--stream', 'demo', m.stdout.trim()]);
    assert.equal(v.code, 0, v.stdout);
    assert.match(v.stdout, /^alg: ES256$/m);
    assert.match(v.stdout, /^max_sessions: 2$/m);
    assert.equal(
      (await run(['verify', '--kind', 'jwt', '--jwks', join(dir, 'missing.json'), m.stdout.trim()])).code,
      2,
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
