/**
 * Real ffmpeg/ffprobe clients: a live H.264+AAC test-pattern publisher and players that
 * decode what they receive and report frames and timestamps.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';

/** Publishes a live 320x240 test pattern with a tone; runs until stopped (or `seconds`). */
export function ffmpegPublish(
  url: string,
  options: { seconds?: number; format?: string; rtspTransport?: 'tcp' | 'udp' } = {},
): ChildProcess {
  // prettier-ignore
  const args = [
    '-hide_banner', '-loglevel', 'error', '-re',
    '-f', 'lavfi', '-i', 'testsrc2=size=320x240:rate=25',
    '-f', 'lavfi', '-i', 'sine=frequency=1000:sample_rate=44100',
    ...(options.seconds ? ['-t', String(options.seconds)] : []),
    '-c:v', 'libx264', '-preset', 'ultrafast', '-tune', 'zerolatency', '-g', '25', '-pix_fmt', 'yuv420p',
    '-c:a', 'aac', '-b:a', '64k',
    '-f', options.format ?? 'flv',
    // RTSP publish (ANNOUNCE/RECORD): streamgate records over TCP interleaved only.
    ...(options.format === 'rtsp' ? ['-rtsp_transport', options.rtspTransport ?? 'tcp'] : []),
    url,
  ];
  return spawn('ffmpeg', args, { stdio: ['ignore', 'ignore', 'pipe'] });
}

export interface PlayResult {
  code: number | null;
  videoFrames: number;
  audioFrames: number;
  /** Video packet DTS values in seconds, in arrival order. */
  videoDts: number[];
  audioDts: number[];
  firstVideoKey: boolean | undefined;
  stderr: string;
}

/**
 * Reads `seconds` of a stream with ffprobe, listing every packet; decoding is checked by
 * `ffmpegDecode`. Packets carry dts and the key flag, which is what the tests assert on.
 */
export async function ffprobePackets(
  url: string,
  seconds: number,
  timeoutMs = 20_000,
  /** Extra input options placed before the URL, e.g. `['-rtsp_transport', 'udp']`. */
  inputArgs: readonly string[] = [],
): Promise<PlayResult> {
  const proc = spawn(
    'ffprobe',
    [
      '-v',
      'error',
      '-rw_timeout',
      '8000000',
      '-read_intervals',
      `%+${seconds}`,
      '-show_entries',
      'packet=codec_type,dts_time,flags',
      '-of',
      'csv=p=0',
      ...inputArgs,
      url,
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let out = '';
  let stderr = '';
  proc.stdout.on('data', (d: Buffer) => (out += d.toString()));
  proc.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const timer = setTimeout(() => proc.kill('SIGKILL'), timeoutMs);
  const [code] = (await once(proc, 'exit')) as [number | null];
  clearTimeout(timer);
  const result: PlayResult = {
    code,
    videoFrames: 0,
    audioFrames: 0,
    videoDts: [],
    audioDts: [],
    firstVideoKey: undefined,
    stderr,
  };
  for (const line of out.split('\n')) {
    const [type, dts, flags] = line.split(',');
    if (type === 'video') {
      if (result.firstVideoKey === undefined) result.firstVideoKey = (flags ?? '').includes('K');
      result.videoFrames++;
      result.videoDts.push(Number(dts));
    } else if (type === 'audio') {
      result.audioFrames++;
      result.audioDts.push(Number(dts));
    }
  }
  return result;
}

/** Decodes `seconds` of video and audio with ffmpeg; returns decoded frame counts from -progress. */
export async function ffmpegDecode(
  url: string,
  seconds: number,
  timeoutMs = 25_000,
): Promise<{ code: number | null; frames: number; stderr: string }> {
  const proc = spawn(
    'ffmpeg',
    [
      '-hide_banner',
      '-v',
      'error',
      '-rw_timeout',
      '8000000',
      '-i',
      url,
      '-t',
      String(seconds),
      '-f',
      'null',
      '-',
      '-progress',
      'pipe:1',
    ],
    {
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  let out = '';
  let stderr = '';
  proc.stdout.on('data', (d: Buffer) => (out += d.toString()));
  proc.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const timer = setTimeout(() => proc.kill('SIGKILL'), timeoutMs);
  const [code] = (await once(proc, 'exit')) as [number | null];
  clearTimeout(timer);
  const frames = [...out.matchAll(/^frame=(\d+)/gm)].map((m) => Number(m[1]));
  return { code, frames: frames.at(-1) ?? 0, stderr };
}

export function isMonotonic(values: number[]): boolean {
  return values.every((v, i) => i === 0 || v >= (values[i - 1] ?? -Infinity));
}

export async function stopProcess(proc: ChildProcess): Promise<void> {
  if (proc.exitCode !== null || proc.signalCode !== null) return;
  proc.kill('SIGTERM');
  const t = setTimeout(() => proc.kill('SIGKILL'), 5000);
  await once(proc, 'exit');
  clearTimeout(t);
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
