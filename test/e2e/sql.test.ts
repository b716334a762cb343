/**
 * The SQL statistics endpoint with the real `mariadb` CLI: ffmpeg publishes over RTMP, viewers
 * play over RTMP (ffmpeg) and HLS (HTTP), an on_play backend tells each viewer's X-UserId,
 * and once the sessions closed the per-user counts and bytes come back over the MySQL
 * protocol, equal to the history the JSON API shows. Writes and bad passwords are refused
 * with MySQL errors, and garbage on the port leaves the server answering.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { connect } from 'node:net';
import { once } from 'node:events';
import { startBackend, type TestBackend } from '../helpers/backend.js';
import { startStreamgate, type RunningStreamgate } from '../helpers/streamgate.js';
import { ffmpegDecode, ffmpegPublish, sleep, stopProcess } from '../helpers/clients.js';
import { skipWithout } from '../helpers/tools.js';

const skip = skipWithout(['ffmpeg'], ['mariadb', ['--version']]);
const AUTH = 'Basic ' + Buffer.from('admin:s3cret').toString('base64');

let server: RunningStreamgate;
let backend: TestBackend;
let publisher: ChildProcess | undefined;

/** Runs one statement with the mariadb CLI (batch mode: tab-separated, no headers). */
async function mariadb(
  sql: string,
  opts: { password?: string; extra?: string[] } = {},
): Promise<{ code: number | null; out: string; err: string }> {
  const args = [
    '-h',
    '127.0.0.1',
    '-P',
    String(server.ports['mysql']),
    '-u',
    'admin',
    `-p${opts.password ?? 's3cret'}`,
    '--batch',
    '--skip-column-names',
    '--connect-timeout=10',
    ...(opts.extra ?? []),
    'flussonic',
    '-e',
    sql,
  ];
  const proc = spawn('mariadb', args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  proc.stdout.on('data', (d: Buffer) => (out += d.toString()));
  proc.stderr.on('data', (d: Buffer) => (err += d.toString()));
  const timer = setTimeout(() => proc.kill('SIGKILL'), 20_000);
  const [code] = (await once(proc, 'exit')) as [number | null];
  clearTimeout(timer);
  return { code, out, err };
}

function table(out: string): string[][] {
  return out
    .trim()
    .split('\n')
    .filter(Boolean)
    .map((l) => l.split('\t'));
}

before(async () => {
  if (skip) return;
  // The token names the user: "u-alice-1" → X-UserId alice.
  backend = await startBackend((q) => {
    const user = q.get('token')?.split('-')[1];
    const headers: Record<string, string> = user ? { 'X-UserId': user } : {};
    return { status: 200, headers };
  });
  server = await startStreamgate(
    `edit_auth admin s3cret;
     http_session_timeout 1;
     template live { prefix live; input publish://; on_play http://127.0.0.1:${backend.port}/auth; }`,
    { listeners: 'http 127.0.0.1:0;\nrtmp 127.0.0.1:0;\nmysql 127.0.0.1:0;\n' },
  );
  publisher = ffmpegPublish(`rtmp://127.0.0.1:${server.ports['rtmp']}/live/cam1`);
});

after(async () => {
  if (publisher) await stopProcess(publisher);
  await server?.stop();
  await backend?.close();
});

test(
  'per-user counts and bytes of closed RTMP and HLS sessions over the MySQL protocol',
  { skip, timeout: 120_000 },
  async () => {
    const http = `http://127.0.0.1:${server.ports['http']}`;
    // Wait for the stream with a throw-away viewer ("warmup"), then bob plays over HLS: a
    // playlist and a segment, one session (the token is in every URI).
    const playlist = async (token: string): Promise<string> => {
      const r = await fetch(`${http}/live/cam1/mono.m3u8?token=${token}`);
      return r.status === 200 ? await r.text() : '';
    };
    let text = '';
    for (let i = 0; i < 60 && !text.includes('.ts'); i++) {
      await sleep(250);
      text = await playlist('u-warmup-1');
    }
    assert.ok(text.includes('.ts'), 'HLS playlist with a segment');
    const bobPlaylist = await playlist('u-bob-1');
    const seg = bobPlaylist.split('\n').find((l) => l.includes('.ts'));
    assert.ok(seg, 'a segment URI');
    const segRes = await fetch(new URL(seg, `${http}/live/cam1/`));
    assert.equal(segRes.status, 200);
    assert.ok((await segRes.arrayBuffer()).byteLength > 0);
    // alice plays twice over RTMP with real ffmpeg.
    const rtmp = `rtmp://127.0.0.1:${server.ports['rtmp']}/live/cam1`;
    const plays = await Promise.all([
      ffmpegDecode(`${rtmp}?token=u-alice-1`, 2),
      ffmpegDecode(`${rtmp}?token=u-alice-2`, 2),
    ]);
    for (const p of plays) assert.ok(p.frames > 10, `alice decoded frames: ${p.stderr}`);

    // Closed: RTMP when ffmpeg left, HLS after http_session_timeout of silence.
    let rows: string[][] = [];
    for (let i = 0; i < 60; i++) {
      const r = await mariadb(
        'SELECT user_id, COUNT(*), SUM(bytes) FROM sessions_history GROUP BY user_id ORDER BY user_id',
      );
      assert.equal(r.code, 0, r.err);
      rows = table(r.out);
      if (
        ['alice', 'bob', 'warmup'].every((u) => rows.some((x) => x[0] === u)) &&
        rows.some((x) => x[0] === 'alice' && x[1] === '2')
      ) {
        break;
      }
      await sleep(500);
    }
    const alice = rows.find((x) => x[0] === 'alice');
    const bob = rows.find((x) => x[0] === 'bob');
    assert.equal(alice?.[1], '2', JSON.stringify(rows));
    assert.equal(bob?.[1], '1', JSON.stringify(rows));

    // The same bytes the JSON API's history shows, per user.
    const api = (await (await fetch(`${http}/api/history`, { headers: { authorization: AUTH } })).json()) as {
      history: { user_id: string | null; bytes: number; proto: string }[];
    };
    for (const [user, row] of [
      ['alice', alice],
      ['bob', bob],
    ] as const) {
      const mine = api.history.filter((h) => h.user_id === user);
      assert.equal(String(mine.reduce((a, h) => a + h.bytes, 0)), row?.[2], `${user}'s bytes`);
      assert.ok(Number(row?.[2]) > 0, `${user} received bytes`);
    }
    assert.deepEqual(
      api.history.filter((h) => h.user_id === 'alice').map((h) => h.proto),
      ['rtmp', 'rtmp'],
    );

    // Per-hour buckets and the live tables answer too.
    const hourly = await mariadb(
      "SELECT DATE_FORMAT(opened_at, '%Y-%m-%d %H:00') AS h, proto, COUNT(*) FROM sessions_history WHERE user_id IN ('alice', 'bob') GROUP BY h, proto ORDER BY proto",
    );
    assert.equal(hourly.code, 0, hourly.err);
    const perProto: Record<string, number> = {};
    for (const [h, proto, n] of table(hourly.out)) {
      assert.match(h ?? '', /^\d{4}-\d{2}-\d{2} \d{2}:00$/);
      perProto[proto ?? ''] = (perProto[proto ?? ''] ?? 0) + Number(n);
    }
    assert.deepEqual(perProto, { hls: 1, rtmp: 2 });
    const live = await mariadb("SELECT kind, proto FROM sessions WHERE name = 'live/cam1'");
    assert.deepEqual(table(live.out), [['publish', 'rtmp']]);
    const streams = await mariadb("SELECT name, state FROM streams WHERE name = 'live/cam1'");
    assert.deepEqual(table(streams.out), [['live/cam1', 'publishing']]);
    const noToken = await mariadb('SELECT token_hash FROM sessions_history');
    assert.ok(!noToken.out.includes('u-alice'), 'never the token');
  },
);

test('writes are refused with a MySQL error and change nothing', { skip }, async () => {
  const before = await mariadb('SELECT COUNT(*) FROM sessions_history');
  for (const sql of [
    'DELETE FROM sessions_history',
    'UPDATE sessions_history SET bytes = 0',
    "INSERT INTO sessions_history (id) VALUES ('x')",
    'DROP TABLE sessions_history',
    "ATTACH '/tmp/evil.db' AS evil",
    'PRAGMA writable_schema = 1',
  ]) {
    const r = await mariadb(sql);
    assert.equal(r.code, 1, sql);
    assert.match(r.err, /ERROR 1290 \(HY000\).*read-only/, sql);
  }
  assert.equal((await mariadb('SELECT COUNT(*) FROM sessions_history')).out, before.out);
});

test('bad credentials are refused with 1045, with either password plugin', { skip }, async () => {
  const wrong = await mariadb('SELECT 1', { password: 'nope' });
  assert.equal(wrong.code, 1);
  assert.match(wrong.err, /ERROR 1045 \(28000\): Access denied for user 'admin'/);
  const sha2 = await mariadb('SELECT 1', {
    password: 'nope',
    extra: ['--default-auth=caching_sha2_password'],
  });
  assert.match(sha2.err, /ERROR 1045/);
  const good = await mariadb('SELECT 42', { extra: ['--default-auth=caching_sha2_password'] });
  assert.equal(good.out.trim(), '42');
});

test('malformed packets do not hurt the server', { skip }, async () => {
  const port = server.ports['mysql'] ?? 0;
  const garbage = [
    Buffer.from('GET / HTTP/1.1\r\n\r\n'),
    Buffer.from([0xff, 0xff, 0xff, 0x00, 1, 2, 3]),
    Buffer.from([0x05, 0x00, 0x00, 0x01, 0, 0, 0, 0, 0]),
    Buffer.alloc(4096, 0x41),
  ];
  await Promise.all(
    garbage.map(async (g) => {
      const s = connect(port, '127.0.0.1');
      await once(s, 'connect');
      s.on('error', () => undefined);
      s.write(g);
      await Promise.race([once(s, 'close'), sleep(5000)]);
      s.destroy();
    }),
  );
  const r = await mariadb('SELECT @@version_comment');
  assert.equal(r.code, 0, r.err);
  assert.match(r.out, /streamgate/);
  assert.equal(server.proc.exitCode, null);
});
