/**
 * HTTP MPEG-TS end to end with real clients: play (ffprobe, ffmpeg, VLC) of an RTMP-published
 * stream, per-connection sessions (denial before any byte, close on client exit, silent
 * close on kick), and publishing with `ffmpeg -method PUT` (chunked) played back over HLS
 * and RTMP.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { allowGoodTokens, startBackend, type TestBackend } from '../helpers/backend.js';
import { startStreamgate, type RunningStreamgate } from '../helpers/streamgate.js';
import {
  ffmpegDecode,
  ffmpegPublish,
  ffprobePackets,
  isMonotonic,
  sleep,
  stopProcess,
} from '../helpers/clients.js';
import { inCI, skipWithout } from '../helpers/tools.js';
import { vlcPlay, vlcUsable } from '../helpers/vlc.js';

const skip = skipWithout(['ffmpeg'], ['ffprobe']);

let server: RunningStreamgate;
let backend: TestBackend;
const publishers: ChildProcess[] = [];
let http = 0;
const url = (path: string): string => `http://127.0.0.1:${http}${path}`;

/** ffmpeg sending a live test pattern as MPEG-TS in a chunked HTTP PUT body. */
function ffmpegPutTs(target: string, seconds?: number): ChildProcess {
  const args = [
    '-hide_banner', '-loglevel', 'error', '-re',
    '-f', 'lavfi', '-i', 'testsrc2=size=320x240:rate=25',
    '-f', 'lavfi', '-i', 'sine=frequency=1000:sample_rate=44100',
    ...(seconds ? ['-t', String(seconds)] : []),
    '-c:v', 'libx264', '-preset', 'ultrafast', '-tune', 'zerolatency', '-g', '25', '-pix_fmt', 'yuv420p',
    '-c:a', 'aac', '-b:a', '64k',
    '-f', 'mpegts', '-method', 'PUT', '-chunked_post', '1', target,
  ]; // prettier-ignore
  return spawn('ffmpeg', args, { stdio: ['ignore', 'ignore', 'pipe'] });
}

async function sessionsOf(name: string): Promise<{ id: string }[]> {
  const r = (await (await fetch(url(`/api/sessions?proto=tshttp&name=${name}`))).json()) as {
    sessions: { id: string }[];
  };
  return r.sessions;
}

before(async () => {
  if (skip) return;
  backend = await startBackend(allowGoodTokens);
  const port = backend.port;
  server = await startStreamgate(`
    template live { prefix live; input publish://; }
    template paid { prefix paid; input publish://; on_play http://127.0.0.1:${port}/auth; }
    template locked { prefix locked; input publish://; password s3cret; }
  `);
  http = server.ports['http'] ?? 0;
  publishers.push(ffmpegPublish(`rtmp://127.0.0.1:${server.ports['rtmp']}/live/cam1`));
  publishers.push(ffmpegPublish(`rtmp://127.0.0.1:${server.ports['rtmp']}/paid/show`));
  await sleep(2000);
});

after(async () => {
  if (skip) return;
  await Promise.all(publishers.map(stopProcess));
  const code = await server.stop();
  assert.equal(code, 0, 'streamgate exits 0 on SIGTERM');
  await backend.close();
});

test(
  'tshttp: ffprobe and ffmpeg read /NAME/mpegts, video starts on a keyframe',
  { skip, timeout: 60_000 },
  async () => {
    const played = await ffprobePackets(url('/live/cam1/mpegts?token=probe'), 3);
    assert.equal(played.code, 0, played.stderr);
    assert.ok(played.videoFrames >= 40, `video frames ${played.videoFrames}`);
    assert.ok(played.audioFrames >= 60, `audio frames ${played.audioFrames}`);
    assert.equal(played.firstVideoKey, true, 'first video packet is a keyframe');
    assert.ok(isMonotonic(played.videoDts) && isMonotonic(played.audioDts), 'monotonic dts');
    const decoded = await ffmpegDecode(url('/live/cam1/mpegts?token=decode'), 2);
    assert.equal(decoded.code, 0, decoded.stderr);
    assert.ok(decoded.frames >= 40, `decoded ${decoded.frames} frames`);
  },
);

test(
  'tshttp: the body starts with PAT then PMT; Content-Type video/mp2t; the session ends with the connection',
  { skip, timeout: 30_000 },
  async () => {
    const ac = new AbortController();
    const r = await fetch(url('/live/cam1/mpegts?token=raw'), { signal: ac.signal });
    assert.equal(r.status, 200);
    assert.equal(r.headers.get('content-type'), 'video/mp2t');
    const reader = r.body!.getReader();
    let got = Buffer.alloc(0);
    while (got.length < 376) {
      const { value, done } = await reader.read();
      if (done) break;
      got = Buffer.concat([got, value]);
    }
    const pid = (o: number): number => (((got[o + 1] ?? 0) & 0x1f) << 8) | (got[o + 2] ?? 0);
    assert.equal(got[0], 0x47);
    assert.equal(pid(0), 0, 'PAT first');
    assert.equal(pid(188), 0x1000, 'then the PMT');
    assert.equal((await sessionsOf('live/cam1')).length >= 1, true);
    const open = (await sessionsOf('live/cam1')).length;
    ac.abort();
    await sleep(500);
    assert.equal((await sessionsOf('live/cam1')).length, open - 1, 'client_closed closes the session');
  },
);

test(
  'tshttp: a denied token gets 403 before any body; unknown stream 404',
  { skip, timeout: 30_000 },
  async () => {
    const denied = await fetch(url('/paid/show/mpegts?token=bad'));
    assert.equal(denied.status, 403);
    assert.match(await denied.text(), /^403 /);
    assert.equal((await fetch(url('/nosuch/mpegts?token=good'))).status, 404);
    const allowed = await ffprobePackets(url('/paid/show/mpegts?token=good-ts'), 2);
    assert.equal(allowed.code, 0, allowed.stderr);
    assert.ok(allowed.videoFrames > 20);
  },
);

test(
  'tshttp: a session killed through the API closes the socket without a word',
  { skip, timeout: 30_000 },
  async () => {
    const before = new Set((await sessionsOf('live/cam1')).map((s) => s.id));
    const r = await fetch(url('/live/cam1/mpegts?token=kickme'));
    const reader = r.body!.getReader();
    await reader.read();
    const mine = (await sessionsOf('live/cam1')).find((s) => !before.has(s.id));
    assert.ok(mine);
    assert.equal((await fetch(url(`/api/sessions/${mine.id}`), { method: 'DELETE' })).status, 204);
    const ended = (async () => {
      for (;;) {
        const { done } = await reader.read();
        if (done) return 'done';
      }
    })().catch(() => 'aborted');
    assert.ok(['done', 'aborted'].includes(await ended));
  },
);

test(
  'tshttp: ffmpeg publishes with a chunked PUT; HLS and RTMP play it; a second publisher gets 409',
  { skip, timeout: 60_000 },
  async () => {
    const pub = ffmpegPutTs(url('/live/tspub/mpegts'));
    let stderr = '';
    pub.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
    try {
      await sleep(2500);
      const second = await fetch(url('/live/tspub/mpegts'), { method: 'PUT', body: Buffer.alloc(188) });
      assert.equal(second.status, 409);
      const rtmp = await ffprobePackets(`rtmp://127.0.0.1:${server.ports['rtmp']}/live/tspub`, 3);
      assert.equal(rtmp.code, 0, rtmp.stderr);
      assert.ok(
        rtmp.videoFrames >= 40 && rtmp.audioFrames >= 60,
        `rtmp v=${rtmp.videoFrames} a=${rtmp.audioFrames}`,
      );
      const hls = await ffmpegDecode(url('/live/tspub/index.m3u8?token=tspub'), 2);
      assert.equal(hls.code, 0, hls.stderr);
      assert.ok(hls.frames >= 40, `hls decoded ${hls.frames}`);
      assert.equal(pub.exitCode, null, `publisher still running: ${stderr}`);
    } finally {
      await stopProcess(pub);
    }
  },
);

test(
  'tshttp: a PUT that ends gets 200; a wrong publish password gets 403',
  { skip, timeout: 60_000 },
  async () => {
    const pub = ffmpegPutTs(url('/locked/a/mpegts?password=s3cret'), 2);
    let stderr = '';
    pub.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
    const [code] = (await once(pub, 'exit')) as [number | null];
    assert.equal(code, 0, `ffmpeg saw a 2xx answer when its body ended: ${stderr}`);
    const wrong = await fetch(url('/locked/a/mpegts?password=nope'), {
      method: 'PUT',
      body: Buffer.alloc(188),
    });
    assert.equal(wrong.status, 403);
  },
);

test(
  'tshttp: VLC plays the HTTP MPEG-TS URL (rc stats show decoded video)',
  { skip, timeout: 60_000 },
  async (t) => {
    const usable = vlcUsable();
    if (!usable.ok) {
      if (inCI) throw new Error(`CI=true but ${usable.why}`);
      t.skip(usable.why);
      return;
    }
    const stats = await vlcPlay(url('/live/cam1/mpegts?token=vlc'), 5);
    assert.ok(stats.opened, stats.log.slice(-2000));
    assert.ok(stats.videoDecoded > 0, `video decoded ${stats.videoDecoded}`);
  },
);
