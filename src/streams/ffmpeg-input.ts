/**
 * A pulled input (`fake://`, `file://`, `rtmp://`, `rtsp://`, `udp://`, `http(s)://`,
 * `tshttp://`) run by an ffmpeg child that remuxes to FLV on a pipe, which the core
 * demuxes into the stream's bus. The child is supervised: it is restarted with
 * exponential back-off when it dies, its stderr goes to the log, and it is killed on
 * shutdown. Viewers stay subscribed across restarts.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createRequire } from 'node:module';
import type { Logger } from 'pino';
import { FlvReader, FlvToFrames } from '../media/flv.js';
import type { MediaBus } from '../media/bus.js';
import { Source } from './source.js';
import { redactSecrets } from '../log.js';

/** The ffmpeg binary: `FFMPEG_PATH`, else the one shipped inside the @ffmpeg-installer npm package. */
export function ffmpegPath(): string {
  const fromEnv = process.env['FFMPEG_PATH'];
  if (fromEnv) return fromEnv;
  const require = createRequire(import.meta.url);
  return (require('@ffmpeg-installer/ffmpeg') as { path: string }).path;
}

/** ffmpeg arguments that turn an input URL into FLV (H.264 + AAC) on stdout. */
export function ffmpegArgs(url: string): string[] {
  const common = ['-hide_banner', '-nostats', '-loglevel', 'warning'];
  const out = ['-f', 'flv', 'pipe:1'];
  if (url.startsWith('fake://')) {
    // 640x360 keeps the always-on demo under ~10 % of one core; GOP of 2 s matches the HLS target.
    // prettier-ignore
    return [
      ...common,
      '-re',
      '-f', 'lavfi', '-i', 'testsrc2=size=640x360:rate=25',
      '-f', 'lavfi', '-i', 'sine=frequency=1000:sample_rate=48000:beep_factor=4',
      '-c:v', 'libx264', '-preset', 'ultrafast', '-tune', 'zerolatency', '-pix_fmt', 'yuv420p',
      '-g', '50', '-keyint_min', '50', '-sc_threshold', '0', '-b:v', '800k',
      '-c:a', 'aac', '-b:a', '96k', '-ar', '48000', '-ac', '2',
      ...out,
    ];
  }
  if (url.startsWith('file://')) {
    // ffmpeg's own `file:` prefix: a path such as `concat:a|b` is a file name, not a protocol.
    const path = `file:${url.slice('file://'.length)}`;
    return [...common, '-re', '-stream_loop', '-1', '-i', path, '-c', 'copy', ...out];
  }
  const input = url.startsWith('tshttp://') ? 'http://' + url.slice('tshttp://'.length) : url;
  return [...common, '-rw_timeout', '10000000', '-i', input, '-c', 'copy', ...out];
}

const MIN_BACKOFF_MS = 1000;
const MAX_BACKOFF_MS = 30_000;
/** A child that ran this long is considered healthy again, so the back-off starts over. */
const STABLE_MS = 10_000;

export type InputState = 'starting' | 'running' | 'backoff' | 'stopped';

export class FfmpegInput {
  state: InputState = 'stopped';
  restarts = 0;
  private child: ChildProcess | undefined;
  private timer: NodeJS.Timeout | undefined;
  private backoff = MIN_BACKOFF_MS;
  private stopping = false;
  /** What logs say about this input: its URL without credentials or tokens. */
  private readonly shownUrl: string;

  constructor(
    readonly url: string,
    private readonly bus: MediaBus,
    private readonly log: Logger,
    private readonly binary: string = ffmpegPath(),
  ) {
    this.shownUrl = redactSecrets(url);
  }

  start(): void {
    this.stopping = false;
    this.spawnChild();
  }

  private spawnChild(): void {
    this.state = 'starting';
    const startedAt = Date.now();
    const child = spawn(this.binary, ffmpegArgs(this.url), { stdio: ['ignore', 'pipe', 'pipe'] });
    this.child = child;
    const source = new Source(this.bus);
    const reader = new FlvReader();
    const demux = new FlvToFrames();
    child.stdout?.on('data', (chunk: Buffer) => {
      this.state = 'running';
      source.bytesIn += chunk.length;
      try {
        for (const tag of reader.push(chunk)) {
          const r =
            tag.type === 9
              ? demux.video(tag.timestamp, tag.data)
              : tag.type === 8
                ? demux.audio(tag.timestamp, tag.data)
                : {};
          if (r.tracks) source.tracks(r.tracks);
          if (r.frame) source.frame(r.frame);
        }
      } catch (err) {
        this.log.error({ input: this.shownUrl, err }, 'input produced unreadable FLV; restarting it');
        child.kill('SIGKILL');
      }
    });
    let stderrTail = '';
    child.stderr?.on('data', (chunk: Buffer) => {
      const lines = (stderrTail + chunk.toString('utf8')).split('\n');
      stderrTail = lines.pop() ?? '';
      for (const line of lines) {
        if (line.trim()) {
          this.log.warn({ input: this.shownUrl, ffmpeg: redactSecrets(line.trim()) }, 'ffmpeg');
        }
      }
    });
    child.on('error', (err) => {
      this.log.error({ input: this.shownUrl, err: err.message, binary: this.binary }, 'cannot run ffmpeg');
    });
    child.on('close', (code, signal) => {
      source.end();
      if (this.child === child) this.child = undefined;
      if (this.stopping) {
        this.state = 'stopped';
        return;
      }
      if (Date.now() - startedAt > STABLE_MS) this.backoff = MIN_BACKOFF_MS;
      this.state = 'backoff';
      this.restarts++;
      this.log.warn(
        { input: this.shownUrl, code, signal, retryInMs: this.backoff },
        'input ended; restarting',
      );
      this.timer = setTimeout(() => {
        this.timer = undefined;
        if (!this.stopping) this.spawnChild();
      }, this.backoff);
      this.backoff = Math.min(this.backoff * 2, MAX_BACKOFF_MS);
    });
  }

  /** Stops the child (SIGTERM, then SIGKILL after 2 s) and resolves when it has exited. */
  async stop(): Promise<void> {
    this.stopping = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    const child = this.child;
    if (!child || child.exitCode !== null || child.signalCode !== null) {
      this.state = 'stopped';
      return;
    }
    await new Promise<void>((resolve) => {
      const kill = setTimeout(() => child.kill('SIGKILL'), 2000);
      child.once('close', () => {
        clearTimeout(kill);
        resolve();
      });
      child.kill('SIGTERM');
    });
  }
}
