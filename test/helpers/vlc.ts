/**
 * Headless VLC 3 (Debian) as a test client, following lab/README.md §4: VLC refuses to run
 * as root, so it runs as `vlcuser` through setpriv (exec, no fork, so signals reach it);
 * its exit code means nothing, so the rc interface's `stats` tells whether video decoded.
 */
import { spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { mkdirSync, chownSync } from 'node:fs';

export const VLC_USER = process.env['VLC_USER'] ?? 'vlcuser';
const VLC_HOME = '/tmp/vlchome';

function userExists(name: string): boolean {
  return spawnSync('id', ['-u', name], { stdio: 'ignore' }).status === 0;
}

/**
 * Whether VLC can run here: `vlc` is installed and there is an unprivileged user to run it
 * as. As root with the user missing, the user is created (what .ci/run does as well).
 */
export function vlcUsable(): { ok: boolean; why?: string } {
  if (spawnSync('which', ['vlc'], { stdio: 'ignore' }).status !== 0) {
    return { ok: false, why: 'vlc is not installed' };
  }
  if (process.getuid?.() !== 0) {
    return { ok: false, why: 'the VLC test needs root to drop to vlcuser with setpriv' };
  }
  if (!userExists(VLC_USER)) {
    const r = spawnSync('useradd', ['-r', '-M', '-d', VLC_HOME, '-s', '/usr/sbin/nologin', VLC_USER], {
      stdio: 'ignore',
    });
    if (r.status !== 0 || !userExists(VLC_USER)) {
      return { ok: false, why: `could not create user ${VLC_USER}` };
    }
  }
  return { ok: true };
}

export interface VlcStats {
  videoDecoded: number;
  framesDisplayed: number;
  audioDecoded: number;
  opened: boolean;
  log: string;
}

/** Plays `url` for `seconds` of wall time, then asks for `stats` and quits. */
export async function vlcPlay(url: string, seconds: number): Promise<VlcStats> {
  mkdirSync(VLC_HOME, { recursive: true });
  const uid = Number(spawnSync('id', ['-u', VLC_USER]).stdout.toString().trim());
  const gid = Number(spawnSync('id', ['-g', VLC_USER]).stdout.toString().trim());
  chownSync(VLC_HOME, uid, gid);
  const proc = spawn(
    'setpriv',
    [
      `--reuid=${VLC_USER}`, `--regid=${VLC_USER}`, '--init-groups', 'env', `HOME=${VLC_HOME}`,
      'vlc', '-I', 'rc', '--rc-fake-tty', '--no-color', '-vv', '--no-video-title-show',
      '--vout=dummy', '--aout=dummy', url,
    ], // prettier-ignore
    { stdio: ['pipe', 'pipe', 'pipe'] },
  );
  let out = '';
  let log = '';
  proc.stdout.on('data', (d: Buffer) => (out += d.toString()));
  proc.stderr.on('data', (d: Buffer) => (log += d.toString()));
  const kill = setTimeout(() => proc.kill('SIGKILL'), (seconds + 20) * 1000);
  await new Promise((r) => setTimeout(r, seconds * 1000));
  proc.stdin.write('stats\n');
  await new Promise((r) => setTimeout(r, 700));
  proc.stdin.write('quit\n');
  proc.stdin.end();
  if (proc.exitCode === null && proc.signalCode === null) await once(proc, 'exit');
  clearTimeout(kill);
  const num = (label: string): number => {
    const m = new RegExp(`${label}\\s*:\\s*(\\d+)`).exec(out.replace(/\r/g, ''));
    return m ? Number(m[1]) : 0;
  };
  return {
    videoDecoded: num('video decoded'),
    framesDisplayed: num('frames displayed'),
    audioDecoded: num('audio decoded'),
    opened: !log.includes("Your input can't be opened"),
    log,
  };
}
