/**
 * DVR end to end (issue 12): ffmpeg publishes over RTMP for about 20 s into a stream with
 * `dvr`; the archive is exported as MP4 and TS (ffprobe checks duration and decodes), played
 * as an HLS range in ffmpeg and hls.js, guarded by the backend (`dvr=true`, denied tokens,
 * `allowed_dvr_ranges`), kept across a restart, trimmed by retention, and an unwritable DVR
 * path leaves live viewers playing.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startBackend, type TestBackend } from '../helpers/backend.js';
import { startStreamgate, type RunningStreamgate } from '../helpers/streamgate.js';
import { ffmpegDecode, ffmpegPublish, ffprobePackets, sleep, stopProcess } from '../helpers/clients.js';
import { skipWithout } from '../helpers/tools.js';
import { CHROMIUM, playHlsInChromium } from '../helpers/chromium.js';
import { existsSync } from 'node:fs';

const skip = skipWithout(['ffmpeg'], ['ffprobe']);
const ARTIFACTS = new URL('../../test-artifacts/', import.meta.url).pathname;

let server: RunningStreamgate;
let backend: TestBackend;
let config = '';
const publishers: ChildProcess[] = [];
let http = 0;
let t0 = 0; // Unix seconds: the start of the recorded range
const dvrRoot = mkdtempSync(join(tmpdir(), 'streamgate-dvr-'));

const url = (path: string): string => `http://127.0.0.1:${http}${path}`;

interface DvrInfo {
  segments: number;
  bytes: number;
  oldest: number | null;
  newest: number | null;
  ranges: { from: number; to: number }[];
  write_errors: number;
  error: { code: string } | null;
}

async function dvrInfo(name: string): Promise<DvrInfo> {
  const r = await fetch(url(`/api/streams/${name}/dvr`));
  assert.equal(r.status, 200, await r.clone().text());
  return (await r.json()) as DvrInfo;
}

/** Media duration of a file or URL, from ffprobe's format section. */
async function probeDuration(
  target: string,
): Promise<{ duration: number; streams: string; code: number | null }> {
  const p = spawn(
    'ffprobe',
    ['-v', 'error', '-show_entries', 'format=duration:stream=codec_name', '-of', 'json', target],
    {
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  let out = '';
  p.stdout.on('data', (d: Buffer) => (out += d.toString()));
  const [code] = (await once(p, 'exit')) as [number | null];
  const j = JSON.parse(out || '{}') as { format?: { duration?: string }; streams?: { codec_name: string }[] };
  return {
    code,
    duration: Number(j.format?.duration ?? NaN),
    streams: (j.streams ?? []).map((s) => s.codec_name).join(','),
  };
}

before(async () => {
  if (skip) return;
  // `good*` may play everything, `range*` only its first five recorded seconds, the rest nothing.
  backend = await startBackend((q) => {
    const token = q.get('token') ?? '';
    if (token.startsWith('range')) {
      return {
        status: 200,
        headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify({ allowed_dvr_ranges: [{ opened_at: t0, closed_at: t0 + 5 }] }),
      };
    }
    return { status: token.startsWith('good') ? 200 : 403 };
  });
  const blocker = join(dvrRoot, 'not-a-directory');
  writeFileSync(blocker, 'a file where the DVR wants a directory\n');
  config = `
    template live { prefix live; input publish://; dvr ${dvrRoot}/live 1h; on_play http://127.0.0.1:${backend.port}/auth; }
    template short { prefix short; input publish://; dvr ${dvrRoot}/short 6s; }
    template broken { prefix broken; input publish://; dvr ${blocker}/sub 1h; }
  `;
  server = await startStreamgate(config);
  http = server.ports['http'] ?? 0;
  for (const name of ['live/cam', 'short/cam', 'broken/cam']) {
    publishers.push(ffmpegPublish(`rtmp://127.0.0.1:${server.ports['rtmp']}/${name}`));
  }
  await sleep(22_000);
  const info = await dvrInfo('live/cam');
  assert.ok(info.oldest !== null, 'something was recorded');
  t0 = info.oldest + 2;
});

after(async () => {
  if (skip) return;
  await Promise.all(publishers.map(stopProcess));
  await server.stop();
  await backend.close();
});

test('dvr: the API reports the recorded range', { skip, timeout: 30_000 }, async () => {
  const info = await dvrInfo('live/cam');
  assert.equal(info.ranges.length, 1, JSON.stringify(info.ranges));
  const r = info.ranges[0] as { from: number; to: number };
  assert.ok(r.to - r.from >= 16, `recorded ${r.to - r.from} s`);
  assert.ok(info.bytes > 100_000 && info.segments >= 7, JSON.stringify(info));
  assert.equal(info.error, null);
  const missing = await fetch(url('/api/streams/nosuch/dvr'));
  assert.equal(missing.status, 404);
});

test(
  'dvr: a 10 s export as MP4 and as TS has the right duration and decodes',
  { skip, timeout: 60_000 },
  async () => {
    for (const ext of ['mp4', 'ts']) {
      const r = await fetch(url(`/live/cam/archive-${t0}-10.${ext}?token=good-export`));
      assert.equal(r.status, 200, await r.clone().text());
      assert.equal(r.headers.get('content-type'), ext === 'mp4' ? 'video/mp4' : 'video/mp2t');
      const file = join(dvrRoot, `export.${ext}`);
      writeFileSync(file, Buffer.from(await r.arrayBuffer()));
      const probe = await probeDuration(file);
      assert.equal(probe.code, 0);
      assert.ok(Math.abs(probe.duration - 10) <= 1, `${ext} duration ${probe.duration}`);
      assert.match(probe.streams, /h264/);
      assert.match(probe.streams, /aac/);
      const decoded = await ffmpegDecode(file, 20);
      assert.equal(decoded.code, 0, decoded.stderr);
      assert.ok(decoded.frames >= 225, `${ext}: decoded ${decoded.frames} video frames`);
      assert.equal(decoded.stderr.trim(), '', `${ext}: decoder complaints: ${decoded.stderr}`);
    }
    const call = backend.calls.find((q) => q.get('token') === 'good-export');
    assert.equal(call?.get('dvr'), 'true');
    assert.match(call?.get('media_request') ?? '', /^dvr_handler-mp4-\d+-10$/);
  },
);

test('dvr: the HLS range plays in ffmpeg and in hls.js', { skip, timeout: 90_000 }, async () => {
  const playlist = url(`/live/cam/index-${t0}-10.m3u8?token=good-hls`);
  const text = await (await fetch(playlist)).text();
  assert.match(text, /#EXT-X-PLAYLIST-TYPE:VOD/);
  assert.match(text, /#EXT-X-ENDLIST/);
  assert.match(text, /dvr-\d+\.ts\?token=good-hls/);
  const decoded = await ffmpegDecode(playlist, 30);
  assert.equal(decoded.code, 0, decoded.stderr);
  assert.ok(decoded.frames >= 225, `decoded ${decoded.frames} video frames`);
  if (existsSync(CHROMIUM)) {
    const played = await playHlsInChromium(playlist, 4, join(ARTIFACTS, 'dvr-hlsjs.png'));
    assert.ok(played.ok, `hls.js: ${played.errors.join('; ')} ${played.events.join(', ')}`);
  }
  const shifted = await fetch(url(`/live/cam/timeshift_abs-${t0}.m3u8?token=good-ts`));
  assert.equal(shifted.status, 200);
  assert.doesNotMatch(await shifted.text(), /#EXT-X-ENDLIST/);
});

test(
  'dvr: denied tokens and ranges outside allowed_dvr_ranges get 403',
  { skip, timeout: 30_000 },
  async () => {
    const denied = await fetch(url(`/live/cam/archive-${t0}-10.mp4?token=bad`));
    assert.equal(denied.status, 403);
    const inside = await fetch(url(`/live/cam/index-${t0}-5.m3u8?token=range1`));
    assert.equal(inside.status, 200, await inside.clone().text());
    const outside = await fetch(url(`/live/cam/index-${t0 + 6}-5.m3u8?token=range1`));
    assert.equal(outside.status, 403);
    assert.match(await outside.text(), /dvr_range_denied/);
    const partly = await fetch(url(`/live/cam/archive-${t0}-10.ts?token=range1`));
    assert.equal(partly.status, 403);
  },
);

test('dvr: retention keeps only the configured depth', { skip, timeout: 30_000 }, async () => {
  const info = await dvrInfo('short/cam');
  assert.ok(info.oldest !== null && info.newest !== null);
  assert.ok(info.newest - info.oldest <= 6 + 3, `kept ${info.newest - info.oldest} s with depth 6 s`);
  const live = await dvrInfo('live/cam');
  assert.ok(live.newest !== null && live.oldest !== null && live.newest - live.oldest >= 16);
});

test(
  'dvr: an unwritable DVR path keeps live viewers playing and is reported',
  { skip, timeout: 40_000 },
  async () => {
    const info = await dvrInfo('broken/cam');
    assert.ok(info.write_errors > 0, JSON.stringify(info));
    assert.notEqual(info.error, null);
    const metrics = await (await fetch(url('/metrics'))).text();
    assert.match(metrics, /streamgate_dvr_write_errors_total\{stream="broken\/cam"\} [1-9]/);
    assert.match(metrics, /streamgate_dvr_failing\{stream="broken\/cam"\} 1/);
    assert.match(metrics, /streamgate_dvr_bytes\{stream="live\/cam"\} [1-9]/);
    const played = await ffprobePackets(url('/broken/cam/index.m3u8'), 3);
    assert.equal(played.code, 0, played.stderr);
    assert.ok(played.videoFrames >= 40, `live video frames ${played.videoFrames}`);
  },
);

test('dvr: the archive survives a restart', { skip, timeout: 60_000 }, async () => {
  const before = await dvrInfo('live/cam');
  await Promise.all(publishers.splice(0).map(stopProcess));
  await server.stop();
  server = await startStreamgate(config);
  http = server.ports['http'] ?? 0;
  const after = await dvrInfo('live/cam');
  assert.equal(after.oldest, before.oldest);
  assert.ok(after.segments >= before.segments, `${after.segments} < ${before.segments}`);
  const r = await fetch(url(`/live/cam/archive-${t0}-5.ts?token=good-after`));
  assert.equal(r.status, 200);
  assert.ok((await r.arrayBuffer()).byteLength > 50_000);
});
