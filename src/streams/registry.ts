/**
 * StreamRegistry: resolves a stream name to its Stream — a static `stream` block, or
 * one created on demand from the `template` whose prefix the name starts with.
 * Static streams with a pulled input run from start-up; template streams exist while
 * they have a publisher or viewers and are removed after a minute of idleness.
 * Viewers are the bus's count, summed over the stream's egresses: an egress that still
 * listens to the bus (an HLS window outliving its sessions) does not keep a stream alive.
 */
import type { Logger } from 'pino';
import type { Config, StreamConfig } from '../config/types.js';
import { effectiveStreamConfig, resolveStreamConfig } from '../config/resolve.js';
import { Stream, type StreamDeps } from './stream.js';

/** A template stream with neither publisher nor viewers for this long is removed. */
const IDLE_REMOVE_MS = 60_000;

export class StreamRegistry {
  private readonly statics = new Map<string, Stream>();
  private readonly dynamic = new Map<string, Stream>();
  private sweeper: NodeJS.Timeout | undefined;

  private readonly deps: StreamDeps;

  constructor(
    private config: Config,
    deps: { log: Logger; ffmpeg: string } & Pick<StreamDeps, 'onPublisher' | 'onStart' | 'runsPulledInput'>,
  ) {
    // Read when used, so an override or a viewer after a reload obeys the reloaded config.
    this.deps = { ...deps, files: () => this.config.files, limits: () => this.config.limits };
  }

  /** The configuration a name resolves to, with template and global defaults applied. */
  configFor(name: string): StreamConfig | undefined {
    // Every HLS request asks; a running stream already holds its effective config.
    const running = this.statics.get(name) ?? this.dynamic.get(name);
    return running ? running.config : resolveStreamConfig(name, this.config);
  }

  /** The running Stream for a name, created from its template when needed; undefined for unknown names. */
  resolve(name: string): Stream | undefined {
    const existing = this.statics.get(name) ?? this.dynamic.get(name);
    if (existing) return existing;
    if (this.config.streams.some((s) => s.name === name)) return undefined; // static, not started
    const config = resolveStreamConfig(name, this.config);
    if (!config) return undefined;
    const stream = new Stream(name, config, this.deps);
    this.dynamic.set(name, stream);
    stream.start();
    return stream;
  }

  list(): Stream[] {
    return [...this.statics.values(), ...this.dynamic.values()];
  }

  start(): void {
    for (const s of this.config.streams) {
      const stream = new Stream(s.name, effectiveStreamConfig(s, this.config), this.deps);
      this.statics.set(s.name, stream);
      stream.start();
    }
    this.sweeper = setInterval(() => this.removeIdle(Date.now()), 10_000);
    this.sweeper.unref();
  }

  async stop(): Promise<void> {
    if (this.sweeper) clearInterval(this.sweeper);
    const all = this.list();
    this.statics.clear();
    this.dynamic.clear();
    await Promise.all(all.map((s) => s.stop()));
  }

  /**
   * Applies a reloaded config: static streams whose effective config is unchanged keep
   * running (their viewers stay connected); changed ones restart; removed ones stop.
   */
  async reload(
    config: Config,
  ): Promise<{ kept: string[]; restarted: string[]; added: string[]; removed: string[] }> {
    this.config = config;
    const result = {
      kept: [] as string[],
      restarted: [] as string[],
      added: [] as string[],
      removed: [] as string[],
    };
    for (const [name, stream] of this.statics) {
      const next = this.configFor(name);
      if (!next || !config.streams.some((s) => s.name === name)) {
        this.statics.delete(name);
        await stream.stop();
        result.removed.push(name);
      } else if (sameConfig(next, stream.config)) {
        result.kept.push(name);
      } else {
        await stream.reconfigure(next);
        result.restarted.push(name);
      }
    }
    for (const s of config.streams) {
      if (this.statics.has(s.name)) continue;
      const stream = new Stream(s.name, effectiveStreamConfig(s, this.config), this.deps);
      this.statics.set(s.name, stream);
      stream.start();
      result.added.push(s.name);
    }
    for (const [name, stream] of this.dynamic) {
      const next = this.configFor(name);
      if (!next) {
        this.dynamic.delete(name);
        await stream.stop();
        result.removed.push(name);
      } else if (!sameConfig(next, stream.config)) {
        await stream.reconfigure(next);
        result.restarted.push(name);
      }
    }
    return result;
  }

  /** One sweep of the idle check; the registry runs it every 10 s once started. */
  removeIdle(now: number): void {
    for (const [name, stream] of this.dynamic) {
      // A relay from another worker keeps nothing alive: it is here for this worker's viewers.
      if (stream.hasLocalPublisher || stream.bus.viewers > 0) {
        stream.idleSince = now;
      } else if (now - stream.idleSince > IDLE_REMOVE_MS) {
        this.dynamic.delete(name);
        void stream.stop(); // a publish-only stream has no child to wait for
      }
    }
  }
}

function sameConfig(a: StreamConfig, b: StreamConfig): boolean {
  const strip = (c: StreamConfig): string =>
    JSON.stringify(c, (k, v: unknown) => (k === 'loc' ? undefined : v));
  return strip(a) === strip(b);
}
