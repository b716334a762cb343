/**
 * Runs inside a private network namespace that has only loopback (`unshare -n`, started by
 * test/e2e/obs.test.ts): OBS calls outside hosts at start-up (service list updates, Twitch ingest
 * list) and must not reach them. Starts streamgate, drives the real OBS Studio under Xvfb through
 * three scenarios and prints one JSON line with what it saw; the test asserts on it.
 *
 * 1. play:    OBS (Advanced output, keyframe every 1 s) publishes to live/cam1; ffprobe reads it
 *             over RTMP and hls.js in Chromium (ffprobe on the playlist without Chromium) over HLS.
 * 2. refused: OBS with its defaults (Simple output, automatic reconnect on) and a stream key the
 *             server refuses; publish attempts are counted in the server log for 10 s.
 * 3. auth:    OBS's "Use authentication" username/password (Adobe authmod) to a `rtmp_auth adobe`
 *             stream; ffprobe plays it; Simple mode's 10 s keyframe interval must draw the warning;
 *             then the same with a wrong password, which must be refused.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startStreamgate, type RunningStreamgate } from '../streamgate.js';
import { ffprobePackets, sleep } from '../clients.js';
import { CHROMIUM, playHlsInChromium } from '../chromium.js';

const HERE = new URL('.', import.meta.url).pathname;
/** OBS_SCENARIOS=play,refused,auth runs a subset (when debugging one; the test runs all). */
const wanted = process.env['OBS_SCENARIOS']?.split(',');
const want = (s: string): boolean => wanted === undefined || wanted.includes(s);
const work = mkdtempSync(join(tmpdir(), 'obs-e2e-'));

interface ObsRun {
  proc: ChildProcess;
  home: string;
}

function startObs(
  name: string,
  server: string,
  key: string,
  env: Record<string, string> = {},
  auth?: [string, string],
): ObsRun {
  const home = join(work, name);
  const made = spawnSync(
    'bash',
    [join(HERE, 'mkprofile.sh'), home, server, key, join(work, 'media.mp4'), ...(auth ?? [])],
    { env: { ...process.env, ...env }, encoding: 'utf8' },
  );
  if (made.status !== 0) throw new Error(`mkprofile failed: ${made.stderr}`);
  // Its own process group, so that stopping it stops xvfb-run, Xvfb and obs, and nothing else.
  const proc = spawn(
    'xvfb-run',
    [
      '-a',
      '-s',
      '-screen 0 1280x720x24 -nolisten tcp',
      'obs',
      '--startstreaming',
      '--minimize-to-tray',
      '--disable-shutdown-check',
      '--disable-missing-files-check',
    ],
    { env: { ...process.env, HOME: home }, stdio: 'ignore', detached: true },
  );
  return { proc, home };
}

async function stopObs(run: ObsRun): Promise<string> {
  const pid = run.proc.pid;
  if (pid !== undefined && run.proc.exitCode === null) {
    const exited = new Promise((r) => run.proc.once('exit', r));
    try {
      process.kill(-pid, 'SIGTERM');
    } catch {
      // already gone
    }
    const timer = setTimeout(() => {
      try {
        process.kill(-pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }, 8000);
    await exited;
    clearTimeout(timer);
  }
  const logs = join(run.home, '.config/obs-studio/logs');
  const files = existsSync(logs) ? readdirSync(logs).sort() : [];
  const last = files.at(-1);
  return last ? readFileSync(join(logs, last), 'utf8') : '';
}

/** Waits until a server log line satisfies `match`; false after `ms`. */
async function waitLog(sg: RunningStreamgate, match: (l: string) => boolean, ms: number): Promise<boolean> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (sg.logs.some(match)) return true;
    await sleep(200);
  }
  return false;
}

const publishing = (name: string) => (l: string) =>
  l.includes('"msg":"publishing"') && l.includes(`"stream":"${name}"`);
const obsLines = (log: string, re: RegExp): string[] =>
  log
    .split('\n')
    .filter((l) => re.test(l))
    .map((l) => l.slice(0, 200));

async function main(): Promise<void> {
  const media = spawnSync(
    'ffmpeg',
    [
      '-hide_banner',
      '-loglevel',
      'error',
      '-y',
      '-f',
      'lavfi',
      '-i',
      'testsrc2=size=640x360:rate=25',
      '-f',
      'lavfi',
      '-i',
      'sine=frequency=440:sample_rate=48000',
      '-t',
      '5',
      '-c:v',
      'libx264',
      '-preset',
      'ultrafast',
      '-pix_fmt',
      'yuv420p',
      '-c:a',
      'aac',
      join(work, 'media.mp4'),
    ],
    { encoding: 'utf8' },
  );
  if (media.status !== 0) throw new Error(`media: ${media.stderr}`);

  const sg = await startStreamgate(`
    template live { prefix live; input publish://; }
    template locked { prefix locked; input publish://; password right; }
    template obs { prefix obs; input publish://; password s3cret; rtmp_auth adobe; }
  `);
  const rtmp = sg.ports['rtmp'] ?? 0;
  const http = sg.ports['http'] ?? 0;
  const out: Record<string, unknown> = {};
  try {
    if (want('play')) await scenarioPlay();
    if (want('refused')) await scenarioRefused();
    if (want('auth')) await scenarioAuth();
    if (process.env['OBS_DEBUG']) out['serverLog'] = sg.logs.filter((l) => !l.includes('"level":20'));
  } finally {
    out['serverExit'] = await sg.stop();
  }
  process.stdout.write(`${JSON.stringify(out)}\n`);

  async function scenarioPlay(): Promise<void> {
    const play = startObs('play', `rtmp://127.0.0.1:${rtmp}/live`, 'cam1', { KEYINT: '1' });
    const t0 = Date.now();
    const started = await waitLog(sg, publishing('live/cam1'), 30_000);
    const startMs = Date.now() - t0;
    let rtmpPlay: unknown;
    let hlsPlay: unknown;
    if (started) {
      await sleep(3000);
      const p = await ffprobePackets(`rtmp://127.0.0.1:${rtmp}/live/cam1`, 3);
      rtmpPlay = {
        code: p.code,
        videoFrames: p.videoFrames,
        audioFrames: p.audioFrames,
        firstVideoKey: p.firstVideoKey,
      };
      const url = `http://127.0.0.1:${http}/live/cam1/index.m3u8`;
      if (existsSync(CHROMIUM)) {
        const r = await playHlsInChromium(url, 6, join(work, 'obs-hls.png'));
        hlsPlay = { client: 'hls.js', ok: r.ok, samples: r.samples, errors: r.errors };
      } else {
        const h = await ffprobePackets(url, 3);
        hlsPlay = { client: 'ffprobe', ok: h.code === 0 && h.videoFrames > 0, videoFrames: h.videoFrames };
      }
    }
    const playLog = await stopObs(play);
    out['play'] = {
      started,
      startMs,
      rtmp: rtmpPlay,
      hls: hlsPlay,
      obs: obsLines(playLog, /Streaming Start|Connection to|rtmp-stream|error/i),
    };
  }

  /** Refused key, OBS defaults (Simple output, reconnect on). */
  async function scenarioRefused(): Promise<void> {
    const before = sg.logs.length;
    const refused = startObs('refused', `rtmp://127.0.0.1:${rtmp}/locked`, 'cam3', { RECONNECT: 'true' });
    await sleep(12_000);
    const refusedLog = await stopObs(refused);
    const lines = sg.logs.slice(before);
    out['refused'] = {
      attempts: lines.filter((l) => l.includes('session_denied') && l.includes('locked/cam3')).length,
      codes: lines
        .filter((l) => l.includes('"msg":"refused"'))
        .map((l) => (JSON.parse(l) as { code: string }).code),
      obs: obsLines(refusedLog, /Connection to|rtmp-stream|reconnect|Invalid|error/i),
    };
  }

  /** Username/password (authmod=adobe), Simple output (keyframes 10 s apart), then a wrong password. */
  async function scenarioAuth(): Promise<void> {
    const auth = startObs('auth', `rtmp://127.0.0.1:${rtmp}/obs`, 'cam2', {}, ['alice', 's3cret']);
    const authStarted = await waitLog(sg, publishing('obs/cam2'), 30_000);
    let authPlay: unknown;
    let warning: string | undefined;
    if (authStarted) {
      await sleep(2000);
      const p = await ffprobePackets(`rtmp://127.0.0.1:${rtmp}/obs/cam2`, 2);
      authPlay = { code: p.code, videoFrames: p.videoFrames };
      await waitLog(sg, (l) => l.includes('keyframe interval'), 14_000);
      warning = sg.logs.find((l) => l.includes('keyframe interval'));
    }
    const authLog = await stopObs(auth);
    const apiStreams = (await (await fetch(`http://127.0.0.1:${http}/api/streams`)).json()) as unknown;
    out['auth'] = {
      started: authStarted,
      play: authPlay,
      challenges: sg.logs.filter((l) => l.includes('authmod=adobe challenge sent')).length,
      keyframeWarning: warning,
      obs: obsLines(authLog, /Connection to|rtmp-stream|auth|error/i),
    };
    out['apiStreams'] = apiStreams;

    const beforeWrong = sg.logs.length;
    const wrong = startObs('wrong', `rtmp://127.0.0.1:${rtmp}/obs`, 'cam4', {}, ['alice', 'wrong']);
    await sleep(8000);
    const wrongLog = await stopObs(wrong);
    const wrongLines = sg.logs.slice(beforeWrong);
    out['wrongPassword'] = {
      denied: wrongLines.filter((l) => l.includes('"reason":"wrong_password"')).length,
      published: wrongLines.some(publishing('obs/cam4')),
      obs: obsLines(wrongLog, /Connection to|rtmp-stream|auth|error/i),
    };
  }
}

main().catch((err: unknown) => {
  process.stdout.write(`${JSON.stringify({ error: String(err instanceof Error ? err.stack : err) })}\n`);
  process.exitCode = 1;
});
