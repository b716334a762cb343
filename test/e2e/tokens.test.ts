/**
 * Signed tokens end to end (SPEC §6): a `ks://` stream, a KS minted with the real
 * `streamgate token mint`, played over RTMP by ffprobe; a KS for another stream is refused
 * with NetStream.Play.Failed; an admin view token from `POST /api/tokens` plays without a KS.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { startStreamgate, type RunningStreamgate } from '../helpers/streamgate.js';
import { ffprobePackets } from '../helpers/clients.js';
import { skipWithout } from '../helpers/tools.js';
import { rtmpProbe } from '../helpers/rtmp-client.js';

const skip = skipWithout(['ffmpeg'], ['ffprobe']);

const BIN = new URL('../../bin/streamgate.js', import.meta.url).pathname;

let server: RunningStreamgate;
let rtmp = 0;
let http = 0;

function mint(args: string[]): string {
  const r = spawnSync(process.execPath, [BIN, 'token', 'mint', ...args], {
    encoding: 'utf8',
    timeout: 30_000,
  });
  assert.equal(r.status, 0, r.stderr);
  return r.stdout.trim();
}

before(async () => {
  if (skip) return;
  server = await startStreamgate(`stream paid { input fake://fake; on_play ks://123?secret=s; }`);
  rtmp = server.ports['rtmp'] ?? 0;
  http = server.ports['http'] ?? 0;
});

after(async () => {
  if (skip) return;
  assert.equal(await server.stop(), 0);
});

test(
  'tokens e2e: a KS minted by the CLI plays over RTMP; the KS never reaches the log',
  { skip, timeout: 60_000 },
  async () => {
    const ks = mint([
      '--kind',
      'ks',
      '--partner',
      '123',
      '--secret',
      's',
      '--stream',
      'paid',
      '--user',
      'buyer1',
      '--expiry',
      '600',
    ]);
    const r = await ffprobePackets(`rtmp://127.0.0.1:${rtmp}/static/paid?token=${ks}`, 3);
    assert.ok(r.videoFrames > 10, `video frames: ${r.videoFrames}\n${r.stderr}`);
    assert.ok(r.audioFrames > 10, `audio frames: ${r.audioFrames}`);
    const open = server.logs.find((l) => l.includes('"session_open"') && l.includes('"buyer1"'));
    assert.ok(open, 'session opened with the KS user id');
    assert.ok(
      server.logs.every((l) => !l.includes(ks)),
      'the raw KS is never logged',
    );
  },
);

test(
  'tokens e2e: a KS for another stream is refused (NetStream.Play.Failed, no media)',
  { skip, timeout: 30_000 },
  async () => {
    const ks = mint([
      '--kind',
      'ks',
      '--partner',
      '123',
      '--secret',
      's',
      '--stream',
      'other',
      '--expiry',
      '600',
    ]);
    const r = await rtmpProbe(rtmp, 'static', `paid?token=${ks}`, { ms: 2000 });
    assert.deepEqual(
      r.statuses.map((s) => s.code),
      ['NetStream.Play.Failed'],
    );
    assert.equal(r.mediaMessages, 0);
    const p = await ffprobePackets(`rtmp://127.0.0.1:${rtmp}/static/paid?token=${ks}`, 2, 10_000);
    assert.equal(p.videoFrames, 0);
    assert.ok(server.logs.some((l) => l.includes('"session_denied"') && l.includes('NO_PRIVILEGE')));
  },
);

test(
  'tokens e2e: POST /api/tokens mints an ADM1 token that plays the ks:// stream without a KS',
  { skip, timeout: 30_000 },
  async () => {
    const res = await fetch(`http://127.0.0.1:${http}/api/tokens`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: '{"kind":"admin"}',
    });
    assert.equal(res.status, 200);
    const { token } = (await res.json()) as { token: string };
    assert.match(token, /^ADM1-\d+-[0-9a-f]{40}$/);
    const r = await rtmpProbe(rtmp, 'static', `paid?token=${token}`, { ms: 2000 });
    assert.ok(r.mediaMessages > 10, `admin view played ${r.mediaMessages} media messages`);
    assert.ok(server.logs.some((l) => l.includes('"admin_view"')));
  },
);

test(
  'tokens e2e: HLS with the KS as a /ks/<KS>/ path segment (SPEC §6)',
  { skip, timeout: 30_000 },
  async () => {
    const ks = mint([
      '--kind',
      'ks',
      '--partner',
      '123',
      '--secret',
      's',
      '--stream',
      'paid',
      '--expiry',
      '600',
    ]);
    const base = `http://127.0.0.1:${http}/paid/ks/${ks}`;
    let master = await fetch(`${base}/index.m3u8`);
    for (let i = 0; i < 20 && master.status === 404; i++) {
      await new Promise((r) => setTimeout(r, 300));
      master = await fetch(`${base}/index.m3u8`);
    }
    assert.equal(master.status, 200, await master.text().catch(() => ''));
    const media = await fetch(`${base}/mono.m3u8`);
    assert.equal(media.status, 200);
    const segment = (await media.text()).split('\n').find((l) => l.startsWith('mono-'));
    assert.ok(segment, 'the playlist lists a segment');
    const seg = await fetch(`${base}/${segment}`);
    assert.equal(seg.status, 200);
    assert.equal(seg.headers.get('content-type'), 'video/mp2t');
    await seg.arrayBuffer();
    const other = mint([
      '--kind',
      'ks',
      '--partner',
      '123',
      '--secret',
      's',
      '--stream',
      'other',
      '--expiry',
      '600',
    ]);
    assert.equal((await fetch(`http://127.0.0.1:${http}/paid/ks/${other}/index.m3u8`)).status, 403);
  },
);
