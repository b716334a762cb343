/**
 * RTSP with the codecs and transports of issue 10, end to end with real clients:
 * - ffmpeg publishes H.265 + AAC and H.264 + Opus over RTSP, TCP interleaved and UDP;
 * - GStreamer's rtspclientsink publishes with its defaults (UDP; AAC as MP4A-LATM) H.264 +
 *   AAC and H.265 + Opus;
 * - ffprobe/ffmpeg play them back over RTSP (TCP and UDP), HTTP-TS and HLS, and the codecs
 *   and decoded frames are checked;
 * - an ffmpeg ANNOUNCE of VP8 gets 415 naming the codec.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { startStreamgate, type RunningStreamgate } from '../helpers/streamgate.js';
import { sleep, stopProcess } from '../helpers/clients.js';
import { skipWithout } from '../helpers/tools.js';

const skip = skipWithout(['ffmpeg'], ['ffprobe'], ['gst-inspect-1.0', ['--version']]);
/** The GStreamer elements these tests use (rtspclientsink is in gstreamer1.0-rtsp, x265enc in -bad, avenc_aac in -libav). */
const GST_ELEMENTS = [
  'rtspclientsink',
  'x264enc',
  'x265enc',
  'opusenc',
  'avenc_aac',
  'videotestsrc',
  'audiotestsrc',
];

let server: RunningStreamgate;
let rtsp = 0;
let http = 0;

before(async () => {
  if (skip) return;
  for (const e of GST_ELEMENTS) {
    const probe = spawn('gst-inspect-1.0', ['--exists', e], { stdio: 'ignore' });
    const [code] = (await once(probe, 'exit')) as [number | null];
    assert.equal(code, 0, `GStreamer element ${e} is installed (bash .ci/run installs it)`);
  }
  server = await startStreamgate(`template live { prefix live; input publish://; }`, {
    listeners: 'http 127.0.0.1:0;\nrtsp 127.0.0.1:0;\n',
  });
  rtsp = server.ports['rtsp'] ?? 0;
  http = server.ports['http'] ?? 0;
});

after(async () => {
  if (skip) return;
  assert.equal(await server.stop(), 0, 'streamgate exits 0 on SIGTERM');
});

type Video = 'h264' | 'h265' | 'vp8';
type Audio = 'aac' | 'opus';

/** ffmpeg publishing a live 320x240 test pattern and a tone over RTSP. */
function ffmpegRtsp(path: string, video: Video, audio: Audio, transport: 'tcp' | 'udp'): ChildProcess {
  const v = {
    h264: ['-c:v', 'libx264', '-preset', 'ultrafast', '-tune', 'zerolatency', '-g', '25'],
    h265: ['-c:v', 'libx265', '-preset', 'ultrafast', '-x265-params', 'log-level=error:keyint=25'],
    vp8: ['-c:v', 'libvpx', '-deadline', 'realtime', '-g', '25'],
  }[video];
  const a = audio === 'aac' ? ['-c:a', 'aac', '-b:a', '64k'] : ['-c:a', 'libopus', '-b:a', '64k'];
  // prettier-ignore
  const args = [
    '-hide_banner', '-loglevel', 'error', '-re',
    '-f', 'lavfi', '-i', 'testsrc2=size=320x240:rate=25',
    '-f', 'lavfi', '-i', 'sine=frequency=1000:sample_rate=48000',
    ...v, '-pix_fmt', 'yuv420p', ...a,
    '-f', 'rtsp', '-rtsp_transport', transport, `rtsp://127.0.0.1:${rtsp}/${path}`,
  ];
  return spawn('ffmpeg', args, { stdio: ['ignore', 'ignore', 'pipe'] });
}

/** GStreamer's rtspclientsink with its default protocols (UDP first). */
function gstRtsp(path: string, video: 'h264' | 'h265', audio: Audio): ChildProcess {
  const enc =
    video === 'h264'
      ? 'x264enc tune=zerolatency key-int-max=25 speed-preset=ultrafast'
      : 'x265enc tune=zerolatency key-int-max=25 speed-preset=ultrafast';
  const aenc = audio === 'aac' ? 'avenc_aac' : 'opusenc';
  const rate = audio === 'aac' ? 44100 : 48000;
  const pipeline =
    `rtspclientsink name=s location=rtsp://127.0.0.1:${rtsp}/${path} ` +
    `videotestsrc is-live=true ! video/x-raw,format=I420,width=320,height=240,framerate=25/1 ! ${enc} ! s. ` +
    `audiotestsrc is-live=true ! audio/x-raw,rate=${rate},channels=2 ! ${aenc} ! s.`;
  return spawn('gst-launch-1.0', ['-q', ...pipeline.split(' ')], { stdio: ['ignore', 'ignore', 'pipe'] });
}

interface Probe {
  code: number | null;
  codecs: { video?: string; audio?: string };
  video: number;
  audio: number;
  stderr: string;
}

/** `seconds` of a stream read with ffprobe: the streams' codecs and the packets of each kind. */
async function probe(url: string, seconds: number, inputArgs: string[] = []): Promise<Probe> {
  // prettier-ignore
  const proc = spawn('ffprobe', [
    '-v', 'error', '-rw_timeout', '8000000', '-read_intervals', `%+${seconds}`,
    '-show_entries', 'stream=codec_type,codec_name:packet=codec_type', '-of', 'csv=p=1',
    ...inputArgs, url,
  ], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let stderr = '';
  proc.stdout.on('data', (d: Buffer) => (out += d.toString()));
  proc.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const timer = setTimeout(() => proc.kill('SIGKILL'), 30_000);
  const [code] = (await once(proc, 'exit')) as [number | null];
  clearTimeout(timer);
  const r: Probe = { code, codecs: {}, video: 0, audio: 0, stderr };
  for (const line of out.split('\n')) {
    const [section, a, b] = line.trim().split(',');
    if (section === 'packet' && (a === 'video' || a === 'audio')) r[a]++;
    if (section === 'stream' && (b === 'video' || b === 'audio') && a) r.codecs[b] = a;
  }
  return r;
}

async function expectPlays(
  what: string,
  url: string,
  codecs: { video: string; audio: string },
  inputArgs: string[] = [],
): Promise<void> {
  const r = await probe(url, 3, inputArgs);
  assert.equal(r.code, 0, `${what}: ${r.stderr}`);
  assert.deepEqual(r.codecs, codecs, `${what}: codecs`);
  assert.ok(r.video >= 25, `${what}: ${r.video} video packets`);
  assert.ok(r.audio >= 25, `${what}: ${r.audio} audio packets`);
}

/** Plays over RTSP TCP and UDP, HTTP-TS and (when `hls`) HLS, and decodes RTSP with ffmpeg. */
async function checkOutputs(
  path: string,
  codecs: { video: string; audio: string },
  hls: boolean,
): Promise<void> {
  const rtspUrl = `rtsp://127.0.0.1:${rtsp}/${path}`;
  await expectPlays(`${path} rtsp/tcp`, rtspUrl, codecs, ['-rtsp_transport', 'tcp']);
  await expectPlays(`${path} rtsp/udp`, rtspUrl, codecs, ['-rtsp_transport', 'udp']);
  await expectPlays(`${path} http-ts`, `http://127.0.0.1:${http}/${path}/mpegts`, codecs);
  if (hls) await expectPlays(`${path} hls`, `http://127.0.0.1:${http}/${path}/index.m3u8`, codecs);
  const decoded = await decodeRtsp(rtspUrl, 2);
  assert.equal(decoded.code, 0, decoded.stderr);
  assert.ok(decoded.frames >= 25, `${path}: ${decoded.frames} frames decoded over RTSP`);
  assert.doesNotMatch(decoded.stderr, /error while decoding|Invalid data/i, `${path}: clean decode`);
}

/** Decodes `seconds` of an RTSP stream (TCP) with ffmpeg; the RTSP demuxer has no rw_timeout, so a timer bounds it. */
async function decodeRtsp(
  url: string,
  seconds: number,
): Promise<{ code: number | null; frames: number; stderr: string }> {
  // prettier-ignore
  const proc = spawn('ffmpeg', [
    '-hide_banner', '-v', 'error', '-rtsp_transport', 'tcp', '-i', url,
    '-t', String(seconds), '-f', 'null', '-', '-progress', 'pipe:1',
  ], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let stderr = '';
  proc.stdout.on('data', (d: Buffer) => (out += d.toString()));
  proc.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const timer = setTimeout(() => proc.kill('SIGKILL'), 25_000);
  const [code] = (await once(proc, 'exit')) as [number | null];
  clearTimeout(timer);
  const frames = [...out.matchAll(/^frame=(\d+)/gm)].map((m) => Number(m[1]));
  return { code, frames: frames.at(-1) ?? 0, stderr };
}

function publishedOverUdp(path: string): boolean {
  return server.logs.some((l) => l.includes('"publishing"') && l.includes('"udp":true') && l.includes(path));
}

/** Waits until the server logs that `path` publishes, or the publisher dies. */
async function waitPublishing(pub: ChildProcess, path: string, stderr: () => string): Promise<void> {
  for (let i = 0; i < 100; i++) {
    if (pub.exitCode !== null) assert.fail(`publisher exited ${pub.exitCode}: ${stderr()}`);
    if (server.logs.some((l) => l.includes('"publishing"') && l.includes(path))) {
      await sleep(1500); // a keyframe and the tracks
      return;
    }
    await sleep(100);
  }
  assert.fail(`${path} never started publishing: ${stderr()}`);
}

function collect(p: ChildProcess): () => string {
  let s = '';
  p.stderr?.on('data', (d: Buffer) => (s += d.toString()));
  return () => s;
}

for (const transport of ['tcp', 'udp'] as const) {
  test(
    `rtsp codecs: ffmpeg publishes H.265 + AAC over RTSP ${transport}; RTSP, HTTP-TS and HLS play HEVC`,
    { skip, timeout: 120_000 },
    async () => {
      const path = `live/hevc${transport}`;
      const pub = ffmpegRtsp(path, 'h265', 'aac', transport);
      const err = collect(pub);
      try {
        await waitPublishing(pub, path, err);
        assert.equal(publishedOverUdp(path), transport === 'udp', 'the transport ffmpeg was told to use');
        await checkOutputs(path, { video: 'hevc', audio: 'aac' }, transport === 'tcp');
      } finally {
        await stopProcess(pub);
      }
    },
  );
}

test(
  'rtsp codecs: ffmpeg publishes H.264 + Opus over RTSP udp; RTSP and HTTP-TS play Opus',
  { skip, timeout: 120_000 },
  async () => {
    const path = 'live/opus';
    const pub = ffmpegRtsp(path, 'h264', 'opus', 'udp');
    const err = collect(pub);
    try {
      await waitPublishing(pub, path, err);
      assert.ok(publishedOverUdp(path));
      await checkOutputs(path, { video: 'h264', audio: 'opus' }, false);
    } finally {
      await stopProcess(pub);
    }
  },
);

test(
  'rtsp codecs: GStreamer rtspclientsink with its defaults (UDP, AAC as MP4A-LATM) publishes H.264 + AAC',
  { skip, timeout: 120_000 },
  async () => {
    const path = 'live/gstavc';
    const pub = gstRtsp(path, 'h264', 'aac');
    const err = collect(pub);
    try {
      await waitPublishing(pub, path, err);
      assert.ok(publishedOverUdp(path), 'rtspclientsink records over UDP');
      await checkOutputs(path, { video: 'h264', audio: 'aac' }, true);
    } finally {
      await stopProcess(pub);
    }
  },
);

test(
  'rtsp codecs: GStreamer rtspclientsink publishes H.265 + Opus over UDP',
  { skip, timeout: 120_000 },
  async () => {
    const path = 'live/gsthevc';
    const pub = gstRtsp(path, 'h265', 'opus');
    const err = collect(pub);
    try {
      await waitPublishing(pub, path, err);
      assert.ok(publishedOverUdp(path));
      await checkOutputs(path, { video: 'hevc', audio: 'opus' }, false);
    } finally {
      await stopProcess(pub);
    }
  },
);

test(
  'rtsp codecs: an ffmpeg ANNOUNCE of VP8 is refused with 415 naming the codec',
  { skip, timeout: 30_000 },
  async () => {
    const pub = ffmpegRtsp('live/vp8', 'vp8', 'opus', 'tcp');
    const err = collect(pub);
    const [code] = (await once(pub, 'exit')) as [number | null];
    assert.notEqual(code, 0);
    assert.match(err(), /415 Unsupported Media Type \(cannot carry video\/VP8\)/);
  },
);
