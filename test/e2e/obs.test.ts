/**
 * The real OBS Studio (Debian's obs-studio 29, under Xvfb) against the real server, both inside a
 * private network namespace with only loopback: OBS looks up outside hosts at start-up and must
 * not reach them. test/helpers/obs/driver.ts runs the scenarios in there and reports JSON.
 *
 * OBS costs ~60 % of a core while it streams; the whole file runs OBS four times, ~45 s in all.
 * It skips without obs, xvfb-run or unshare on a laptop, and fails in CI (bash .ci/run installs
 * obs-studio, obs-plugins, xvfb, xauth and libgl1-mesa-dri).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { skipWithout } from '../helpers/tools.js';

const skip = skipWithout(
  ['obs', ['--version']],
  ['xvfb-run', ['--help']],
  ['unshare', ['--version']],
  ['ffprobe'],
);
const ROOT = new URL('../..', import.meta.url).pathname;

interface Report {
  error?: string;
  play?: {
    started: boolean;
    rtmp?: { code: number | null; videoFrames: number; audioFrames: number; firstVideoKey: boolean };
    hls?: { client: string; ok: boolean; samples?: { t: number; decoded: number }[]; errors?: string[] };
    obs: string[];
  };
  refused?: { attempts: number; codes: string[]; obs: string[] };
  auth?: {
    started: boolean;
    play?: { code: number | null; videoFrames: number };
    challenges: number;
    keyframeWarning?: string;
  };
  wrongPassword?: { denied: number; published: boolean; obs: string[] };
  apiStreams?: { streams: { name: string; warnings?: string[] }[] };
  serverExit?: number | null;
}

function runDriver(): Promise<Report> {
  return new Promise((resolve, reject) => {
    // `ip link set lo up`: a new network namespace starts with loopback down.
    const proc = spawn(
      'unshare',
      ['-n', '--', 'sh', '-c', 'ip link set lo up && exec node --import tsx test/helpers/obs/driver.ts'],
      { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let out = '';
    let err = '';
    proc.stdout.on('data', (d: Buffer) => (out += d.toString()));
    proc.stderr.on('data', (d: Buffer) => (err += d.toString()));
    proc.once('error', reject);
    proc.once('exit', () => {
      const line = out.trim().split('\n').pop() ?? '';
      try {
        resolve(JSON.parse(line) as Report);
      } catch {
        reject(new Error(`no report from the OBS driver:\n${out}\n${err}`));
      }
    });
  });
}

test(
  'obs: OBS 29 publishes (RTMP + hls.js play it), a refused key stops it, username/password (authmod) works',
  { skip, timeout: 240_000 },
  async () => {
    const r = await runDriver();
    assert.equal(r.error, undefined, r.error);

    const play = r.play;
    assert.ok(play?.started, `OBS started publishing: ${JSON.stringify(play?.obs)}`);
    assert.equal(play.rtmp?.code, 0);
    assert.ok((play.rtmp?.videoFrames ?? 0) >= 50, `ffprobe RTMP video frames ${play.rtmp?.videoFrames}`);
    assert.ok((play.rtmp?.audioFrames ?? 0) >= 50, `ffprobe RTMP audio frames ${play.rtmp?.audioFrames}`);
    assert.equal(play.rtmp?.firstVideoKey, true);
    assert.ok(play.hls?.ok, `HLS (${play.hls?.client}) played: ${JSON.stringify(play.hls)}`);

    // OBS treats a publish refused on its first connection as final (OBS_OUTPUT_INVALID_STREAM),
    // even with automatic reconnect on: one attempt in ~12 s, not a loop.
    assert.equal(r.refused?.attempts, 1, JSON.stringify(r.refused));
    assert.deepEqual(r.refused?.codes, ['NetStream.Publish.BadName']);

    assert.ok(r.auth?.started, `OBS logged in with username/password: ${JSON.stringify(r.auth)}`);
    assert.equal(r.auth.play?.code, 0);
    assert.ok((r.auth.play?.videoFrames ?? 0) >= 25);
    assert.ok(r.auth.challenges >= 2, 'need auth, then salt/challenge');
    // OBS's Simple output mode leaves x264 at keyint 250 (10 s at 25 fps): the warning names the setting.
    assert.match(r.auth.keyframeWarning ?? '', /keyframe interval .* Keyframe Interval/);
    const listed = r.apiStreams?.streams.find((s) => s.name === 'obs/cam2');
    assert.match(
      listed?.warnings?.[0] ?? '',
      /keyframe interval .* Keyframe Interval/,
      'GET /api/streams says it too',
    );

    assert.ok((r.wrongPassword?.denied ?? 0) >= 1, JSON.stringify(r.wrongPassword));
    assert.equal(r.wrongPassword?.published, false);
    assert.equal(r.serverExit, 0);
  },
);
