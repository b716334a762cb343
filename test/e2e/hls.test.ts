/**
 * HLS end to end with real clients: ffmpeg publishes a live H.264+AAC pattern over RTMP,
 * ffprobe/ffmpeg, hls.js in headless Chromium and VLC play it back over HLS; an on_play
 * backend on loopback decides who may play.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, statSync } from 'node:fs';
import { spawn, type ChildProcess } from 'node:child_process';
import { startBackend, type TestBackend } from '../helpers/backend.js';
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
import { CHROMIUM, playHlsInChromium } from '../helpers/chromium.js';
import { vlcPlay, vlcUsable } from '../helpers/vlc.js';

const skip = skipWithout(['ffmpeg'], ['ffprobe']);
const ARTIFACTS = new URL('../../test-artifacts/', import.meta.url).pathname;

let server: RunningStreamgate;
let backend: TestBackend;
const publishers: ChildProcess[] = [];
let http = 0;

const url = (path: string): string => `http://127.0.0.1:${http}${path}`;
const callsFor = (token: string): number => backend.calls.filter((q) => q.get('token') === token).length;

/** Publishes `name` over RTMP and waits until its HLS playlist lists a segment. */
async function publish(name: string, token = 'good-pub'): Promise<void> {
  publishers.push(ffmpegPublish(`rtmp://127.0.0.1:${server.ports['rtmp']}/${name}`));
  for (let i = 0; i < 40; i++) {
    await sleep(250);
    const r = await fetch(url(`/${name}/mono.m3u8?token=${token}`));
    if (r.status === 200 && (await r.text()).includes('.ts')) return;
  }
  throw new Error(`no HLS segment for ${name}`);
}

before(async () => {
  if (skip) return;
  // Allows tokens starting with "good", denies everything else (a slow answer makes races visible).
  backend = await startBackend((q) => ({
    status: q.get('token')?.startsWith('good') ? 200 : 403,
    delayMs: 150,
  }));
  const port = backend.port;
  server = await startStreamgate(`
    template live { prefix live; input publish://; }
    template paid { prefix paid; input publish://; on_play http://127.0.0.1:${port}/auth; }
    template cors { prefix cors; input publish://; playback_headers { protocols hls; header Access-Control-Allow-Origin https://example.com; } }
  `);
  http = server.ports['http'] ?? 0;
  await publish('live/cam1');
  await publish('paid/show');
});

after(async () => {
  if (skip) return;
  await Promise.all(publishers.map(stopProcess));
  const code = await server.stop();
  assert.equal(code, 0, 'streamgate exits 0 on SIGTERM');
  await backend.close();
});

test(
  'hls: ffprobe and ffmpeg read index.m3u8 and decode video and audio',
  { skip, timeout: 60_000 },
  async () => {
    const played = await ffprobePackets(url('/live/cam1/index.m3u8?token=probe'), 4);
    assert.equal(played.code, 0, played.stderr);
    assert.ok(played.videoFrames >= 50, `video frames ${played.videoFrames}`);
    assert.ok(played.audioFrames >= 80, `audio frames ${played.audioFrames}`);
    assert.equal(played.firstVideoKey, true, 'first video packet is a keyframe');
    assert.ok(isMonotonic(played.videoDts), 'video dts monotonic');
    const decoded = await ffmpegDecode(url('/live/cam1/index.m3u8?token=decode'), 3);
    assert.equal(decoded.code, 0, decoded.stderr);
    assert.ok(decoded.frames >= 50, `decoded ${decoded.frames} frames`);
  },
);

test(
  'hls: playlists and segments have the right HTTP headers, HEAD and CORS preflight',
  { skip, timeout: 30_000 },
  async () => {
    const master = await fetch(url('/live/cam1/index.m3u8?token=hdr&x=1'));
    assert.equal(master.status, 200);
    assert.equal(master.headers.get('content-type'), 'application/vnd.apple.mpegurl');
    assert.equal(master.headers.get('cache-control'), 'no-cache');
    assert.equal(master.headers.get('access-control-allow-origin'), '*');
    const masterText = await master.text();
    assert.equal(Number(master.headers.get('content-length')), Buffer.byteLength(masterText));
    assert.match(
      masterText,
      /#EXT-X-STREAM-INF:BANDWIDTH=\d+,CODECS="avc1\.[0-9a-f]{6},mp4a\.40\.2",RESOLUTION=320x240\n/,
    );
    assert.match(masterText, /^mono\.m3u8\?x=1&token=hdr$/m);

    const mono = await (await fetch(url('/live/cam1/mono.m3u8?token=hdr'))).text();
    assert.match(mono, /^#EXT-X-TARGETDURATION:[23]$/m);
    assert.match(mono, /^#EXT-X-MEDIA-SEQUENCE:\d+$/m);
    const segs = mono.split('\n').filter((l) => l.startsWith('mono-'));
    assert.ok(segs.length >= 1);
    for (const s of segs) assert.match(s, /^mono-\d+\.ts\?token=hdr$/);

    const seg = await fetch(url(`/live/cam1/${segs.at(-1)}`));
    assert.equal(seg.status, 200);
    assert.equal(seg.headers.get('content-type'), 'video/mp2t');
    assert.match(seg.headers.get('cache-control') ?? '', /^max-age=\d+$/);
    const body = Buffer.from(await seg.arrayBuffer());
    assert.equal(Number(seg.headers.get('content-length')), body.length);
    assert.equal(body[0], 0x47);
    assert.equal(body.length % 188, 0);

    const head = await fetch(url(`/live/cam1/${segs.at(-1)}`), { method: 'HEAD' });
    assert.equal(head.status, 200);
    assert.equal(Number(head.headers.get('content-length')), body.length);

    const pre = await fetch(url('/live/cam1/index.m3u8'), {
      method: 'OPTIONS',
      headers: {
        Origin: 'https://a.test',
        'Access-Control-Request-Method': 'GET',
        'Access-Control-Request-Headers': 'range',
      },
    });
    assert.equal(pre.status, 204);
    assert.equal(pre.headers.get('access-control-allow-origin'), '*');
    assert.match(pre.headers.get('access-control-allow-methods') ?? '', /GET/);
    assert.equal(pre.headers.get('access-control-allow-headers'), 'range');

    const cors = await fetch(url('/cors/x/index.m3u8'), { method: 'OPTIONS' });
    assert.equal(
      cors.headers.get('access-control-allow-origin'),
      'https://example.com',
      'playback_headers win',
    );

    const seq = Number(/^#EXT-X-MEDIA-SEQUENCE:(\d+)$/m.exec(mono)?.[1]);
    assert.equal(
      (await fetch(url(`/live/cam1/mono-${seq - 50}.ts?token=hdr`))).status,
      404,
      'segment outside the window',
    );
    assert.equal(
      (await fetch(url(`/live/cam1/mono-${seq + 500}.ts?token=hdr`))).status,
      404,
      'segment not made yet',
    );
    assert.equal((await fetch(url('/nosuch/index.m3u8?token=hdr'))).status, 404, 'unknown stream');
    assert.notEqual(
      (await fetch(url('/api/streams'))).headers.get('content-type'),
      'application/vnd.apple.mpegurl',
    );
  },
);

test(
  'hls: without a token every URI carries the generated one, and later requests reuse its session',
  { skip, timeout: 30_000 },
  async () => {
    const ids = async (): Promise<Set<string>> => {
      const r = (await (await fetch(url('/api/sessions?proto=hls&name=live/cam1'))).json()) as {
        sessions: { id: string }[];
      };
      return new Set(r.sessions.map((s) => s.id));
    };
    const before = await ids();
    const master = await (await fetch(url('/live/cam1/index.m3u8'))).text();
    const token = /token=([A-Za-z0-9_-]+)/.exec(master)?.[1];
    assert.ok(token, master);
    const mono = await (await fetch(url(`/live/cam1/mono.m3u8?token=${token}`))).text();
    const uris = mono.split('\n').filter((l) => l && !l.startsWith('#'));
    assert.ok(uris.length > 0 && uris.every((u) => u.endsWith(`?token=${token}`)), mono);
    assert.equal((await fetch(url(`/live/cam1/${uris[0]}`))).status, 200);
    const added = [...(await ids())].filter((id) => !before.has(id));
    assert.equal(added.length, 1, 'master, media playlist and segment are one session');
  },
);

test(
  'hls: a denied token gets 403 on the playlist and on a guessed segment URL',
  { skip, timeout: 30_000 },
  async () => {
    const ok = await (await fetch(url('/paid/show/mono.m3u8?token=good-look'))).text();
    const segment = ok
      .split('\n')
      .find((l) => l.startsWith('mono-'))
      ?.split('?')[0];
    assert.ok(segment);
    for (const path of ['/paid/show/index.m3u8', '/paid/show/mono.m3u8', `/paid/show/${segment}`]) {
      const r = await fetch(url(`${path}?token=bad-guess`));
      assert.equal(r.status, 403, path);
      assert.match(await r.text(), /^403 /);
    }
    assert.equal(callsFor('bad-guess'), 1, 'the denial is cached: one backend call');
  },
);

test(
  'hls: concurrent first requests with a new token make exactly one backend call',
  { skip, timeout: 30_000 },
  async () => {
    const ok = await (await fetch(url('/paid/show/mono.m3u8?token=good-look'))).text();
    const segment = ok
      .split('\n')
      .find((l) => l.startsWith('mono-'))
      ?.split('?')[0];
    const token = 'good-concurrent';
    const paths = ['index.m3u8', 'mono.m3u8', segment, segment].map((p) =>
      url(`/paid/show/${p}?token=${token}`),
    );
    const res = await Promise.all(paths.map((p) => fetch(p)));
    assert.deepEqual(
      res.map((r) => r.status),
      [200, 200, 200, 200],
    );
    assert.equal(callsFor(token), 1);
    const again = await fetch(url(`/paid/show/mono.m3u8?token=${token}`));
    assert.equal(again.status, 200);
    assert.equal(callsFor(token), 1, 'later requests are answered from the session table');
  },
);

test(
  'hls: hls.js in headless Chromium plays index.m3u8 and currentTime advances',
  { skip, timeout: 120_000 },
  async (t) => {
    if (!existsSync(CHROMIUM)) {
      if (inCI) throw new Error(`CI=true but ${CHROMIUM} is missing`);
      t.skip('chromium is not installed');
      return;
    }
    const shot = `${ARTIFACTS}hls-chromium.png`;
    const r = await playHlsInChromium(url('/paid/show/index.m3u8?token=good-chromium'), 6, shot);
    assert.ok(r.ok, JSON.stringify(r));
    const span = (r.samples.at(-1)?.t ?? 0) - (r.samples[0]?.t ?? 0);
    assert.ok(span >= 1, `currentTime advanced ${span.toFixed(2)} s`);
    assert.ok(statSync(shot).size > 1000, 'screenshot saved');
    assert.equal(callsFor('good-chromium'), 1, 'hls.js kept one session for all its requests');
  },
);

test('hls: VLC plays the HLS URL (rc stats show decoded video)', { skip, timeout: 60_000 }, async (t) => {
  const usable = vlcUsable();
  if (!usable.ok) {
    if (inCI) throw new Error(`CI=true but ${usable.why}`);
    t.skip(usable.why);
    return;
  }
  const stats = await vlcPlay(url('/live/cam1/index.m3u8?token=vlc'), 6);
  assert.ok(stats.opened, stats.log.slice(-2000));
  assert.ok(stats.videoDecoded > 0, `video decoded ${stats.videoDecoded}`);
});

/** ffmpeg publishing like OBS in Simple output mode: a keyframe every 250 frames at 25 fps (10 s). */
function publishLongGop(name: string): ChildProcess {
  // prettier-ignore
  const args = [
    '-hide_banner', '-loglevel', 'error', '-re',
    '-f', 'lavfi', '-i', 'testsrc2=size=320x240:rate=25',
    '-f', 'lavfi', '-i', 'sine=frequency=1000:sample_rate=44100',
    '-c:v', 'libx264', '-preset', 'ultrafast', '-g', '250', '-pix_fmt', 'yuv420p',
    '-c:a', 'aac', '-b:a', '64k',
    '-f', 'flv', `rtmp://127.0.0.1:${server.ports['rtmp']}/${name}`,
  ];
  const proc = spawn('ffmpeg', args, { stdio: ['ignore', 'ignore', 'pipe'] });
  publishers.push(proc);
  return proc;
}

function needChromium(t: { skip(why: string): void }): boolean {
  if (existsSync(CHROMIUM)) return true;
  if (inCI) throw new Error(`CI=true but ${CHROMIUM} is missing`);
  t.skip('chromium is not installed');
  return false;
}

test(
  'hls: hls.js opened before the first segment of a -g 250 publisher (OBS Simple mode) still plays',
  { skip, timeout: 120_000 },
  async (t) => {
    if (!needChromium(t)) return;
    publishLongGop('live/obs');
    // The player starts at once: its playlist request is held until the first 10 s segment.
    const r = await playHlsInChromium(
      url('/live/obs/index.m3u8?token=obs'),
      22,
      `${ARTIFACTS}hls-obs-gop250.png`,
    );
    assert.ok(r.ok, JSON.stringify(r));
    assert.ok(!r.errors.some((e) => /fatal/i.test(e)), r.errors.join('\n'));
    const mono = await (await fetch(url('/live/obs/mono.m3u8?token=obs'))).text();
    assert.match(mono, /^#EXT-X-TARGETDURATION:10$/m, mono);
  },
);

test(
  'hls: the live playlist keeps one EXT-X-TARGETDURATION, every EXTINF within it, each segment with PROGRAM-DATE-TIME',
  { skip, timeout: 30_000 },
  async () => {
    const targets = new Set<string>();
    for (let i = 0; i < 6; i++) {
      const mono = await (await fetch(url('/live/cam1/mono.m3u8?token=rfc'))).text();
      const target = /^#EXT-X-TARGETDURATION:(\d+)$/m.exec(mono)?.[1] ?? '';
      targets.add(target);
      const lines = mono.split('\n');
      for (const [n, line] of lines.entries()) {
        const d = /^#EXTINF:([\d.]+),$/.exec(line)?.[1];
        if (d === undefined) continue;
        assert.ok(Math.round(Number(d)) <= Number(target), `EXTINF ${d} within ${target}`);
        assert.match(lines[n - 1] ?? '', /^#EXT-X-PROGRAM-DATE-TIME:\d{4}-\d\d-\d\dT[\d:.]+Z$/);
      }
      await sleep(700);
    }
    assert.equal(targets.size, 1, [...targets].join(','));
  },
);

test(
  'hls: ffprobe and ffmpeg read and decode the fMP4 playlist (?container=fmp4)',
  { skip, timeout: 60_000 },
  async () => {
    const master = await (await fetch(url('/live/cam1/index.m3u8?container=fmp4&token=fmp4'))).text();
    assert.match(master, /^mono\.m3u8\?container=fmp4&token=fmp4$/m);
    const mono = await (await fetch(url('/live/cam1/mono.m3u8?container=fmp4&token=fmp4'))).text();
    assert.match(mono, /^#EXT-X-VERSION:7$/m);
    assert.match(mono, /^#EXT-X-MAP:URI="init-\d+\.mp4\?container=fmp4&token=fmp4"$/m);
    const played = await ffprobePackets(url('/live/cam1/index.m3u8?container=fmp4&token=fmp4'), 4);
    assert.equal(played.code, 0, played.stderr);
    assert.ok(played.videoFrames >= 50, `video frames ${played.videoFrames}`);
    assert.ok(played.audioFrames >= 80, `audio frames ${played.audioFrames}`);
    assert.equal(played.firstVideoKey, true, 'first video packet is a keyframe');
    assert.ok(isMonotonic(played.videoDts), 'video dts monotonic');
    const decoded = await ffmpegDecode(url('/live/cam1/index.m3u8?container=fmp4&token=fmp4-decode'), 3);
    assert.equal(decoded.code, 0, decoded.stderr);
    assert.equal(decoded.stderr.trim(), '', 'no decoder complaint');
    assert.ok(decoded.frames >= 50, `decoded ${decoded.frames} frames`);
  },
);

test('hls: hls.js in headless Chromium plays the fMP4 playlist', { skip, timeout: 120_000 }, async (t) => {
  if (!needChromium(t)) return;
  const r = await playHlsInChromium(
    url('/paid/show/index.m3u8?container=fmp4&token=good-fmp4'),
    6,
    `${ARTIFACTS}hls-fmp4-chromium.png`,
  );
  assert.ok(r.ok, JSON.stringify(r));
  const span = (r.samples.at(-1)?.t ?? 0) - (r.samples[0]?.t ?? 0);
  assert.ok(span >= 1, `currentTime advanced ${span.toFixed(2)} s`);
});
