/**
 * Stream: one named live stream — its effective config (template ⊕ stream ⊕ backend
 * override), its MediaBus, and the one thing feeding it: a publisher or a pulled input.
 */
import type { Logger } from 'pino';
import { MediaBus } from '../media/bus.js';
import type { ProtocolsConfig, StreamConfig } from '../config/types.js';
import { protocolAllowed } from '../config/resolve.js';
import type { Proto } from '../core/proto.js';
import { FfmpegInput } from './ffmpeg-input.js';
import { Source } from './source.js';
import { redactSecrets } from '../log.js';

export interface StreamDeps {
  log: Logger;
  ffmpeg: string;
}

export interface Publisher {
  readonly source: Source;
  /** Ends this publisher's hold on the stream; idempotent. */
  release(): void;
}

/** The keys a backend override may set (AUTH-SPEC §8.1); anything else refuses the override. */
const OVERRIDABLE = new Set(['inputs', 'protocols', 'password', 'segment_duration']);

export class Stream {
  readonly bus = new MediaBus();
  private input: FfmpegInput | undefined;
  private publisher: Publisher | undefined;
  private override: Record<string, unknown> | undefined;
  /** `base` with `override` applied; recomputed only when either changes. */
  private effective: StreamConfig;
  private running = false;
  /** Time the stream last had neither a publisher nor a viewer (for removing idle template streams). */
  idleSince = Date.now();

  constructor(
    readonly name: string,
    private base: StreamConfig,
    private readonly deps: StreamDeps,
  ) {
    this.effective = base;
  }

  /** The effective config: the configured one with any backend override applied. */
  get config(): StreamConfig {
    return this.effective;
  }

  get acceptsPublish(): boolean {
    return this.config.inputs.some((u) => u.startsWith('publish://'));
  }

  get pulledInputUrl(): string | undefined {
    return this.config.inputs.find((u) => !u.startsWith('publish://'));
  }

  get hasPublisher(): boolean {
    return this.publisher !== undefined;
  }

  get inputState(): string {
    if (this.publisher) return 'publishing';
    return this.input?.state ?? (this.acceptsPublish ? 'waiting_for_publisher' : 'stopped');
  }

  /** Whether the stream serves play over a protocol (AUTH-SPEC §8.2; everything is allowed by default). */
  allows(proto: Proto): boolean {
    return protocolAllowed(this.config.protocols, proto);
  }

  start(): void {
    this.running = true;
    const url = this.pulledInputUrl;
    if (url && !this.input) {
      this.input = new FfmpegInput(
        url,
        this.bus,
        this.deps.log.child({ stream: this.name }),
        this.deps.ffmpeg,
      );
      this.input.start();
    }
  }

  async stop(): Promise<void> {
    this.running = false;
    const input = this.input;
    this.input = undefined;
    this.publisher?.release();
    this.setOverride(undefined);
    await input?.stop();
  }

  private setOverride(override: Record<string, unknown> | undefined): void {
    this.override = override;
    this.effective = withOverride(this.base, override);
  }

  /** Takes the publishing slot, or returns undefined when someone already publishes here. */
  claimPublisher(): Publisher | undefined {
    if (this.publisher || !this.acceptsPublish) return undefined;
    const source = new Source(this.bus);
    const publisher: Publisher = {
      source,
      release: () => {
        source.end();
        if (this.publisher === publisher) {
          this.publisher = undefined;
          this.idleSince = Date.now();
        }
      },
    };
    this.publisher = publisher;
    return publisher;
  }

  /**
   * Applies a backend's partial config (AUTH-SPEC §8.1): computes the new effective
   * config, does nothing when it is unchanged, restarts the input when `inputs`
   * changed, and returns the play protocols the stream no longer serves so the caller
   * can close those sessions. Throws on keys it does not know (the grant still stands).
   */
  async applyOverride(
    partial: Record<string, unknown>,
  ): Promise<{ changed: boolean; closedProtocols: Proto[] }> {
    for (const key of Object.keys(partial)) {
      if (!OVERRIDABLE.has(key)) throw new Error(`override key '${key}' is not supported`);
    }
    const merged: Record<string, unknown> = { ...this.override };
    for (const [k, v] of Object.entries(partial)) {
      if (v === null) delete merged[k];
      else merged[k] = v;
    }
    const before = this.config;
    const beforeJson = JSON.stringify(before);
    const previousOverride = this.override;
    this.setOverride(Object.keys(merged).length > 0 ? merged : undefined);
    const after = this.config;
    if (JSON.stringify(after) === beforeJson) {
      this.setOverride(previousOverride);
      return { changed: false, closedProtocols: [] };
    }
    const closedProtocols = (['hls', 'rtmp', 'rtsp', 'tshttp'] as const).filter(
      (p) => protocolAllowed(before.protocols, p) && !protocolAllowed(after.protocols, p),
    );
    if (JSON.stringify(before.inputs) !== JSON.stringify(after.inputs) && this.running) {
      this.deps.log.info(
        { stream: this.name, inputs: after.inputs.map(redactSecrets) },
        'input replaced by backend override',
      );
      const old = this.input;
      this.input = undefined;
      await old?.stop();
      this.start();
    }
    return { changed: true, closedProtocols };
  }

  /** Replaces the configured base (config reload); the override is dropped (AUTH-SPEC A19). */
  async reconfigure(config: StreamConfig): Promise<void> {
    const wasRunning = this.running;
    await this.stop();
    this.base = config;
    this.setOverride(undefined);
    if (wasRunning) this.start();
  }
}

function withOverride(base: StreamConfig, o: Record<string, unknown> | undefined): StreamConfig {
  if (!o) return base;
  const c: StreamConfig = { ...base };
  if (Array.isArray(o['inputs'])) {
    c.inputs = o['inputs']
      .map((i: unknown) => (typeof i === 'string' ? i : (i as { url?: unknown } | null)?.url))
      .filter((u): u is string => typeof u === 'string');
  }
  if (o['protocols'] && typeof o['protocols'] === 'object') c.protocols = toProtocols(o['protocols']);
  if (typeof o['password'] === 'string') c.password = o['password'];
  if (typeof o['segment_duration'] === 'number') c.segmentDuration = o['segment_duration'];
  return c;
}

function toProtocols(raw: object): ProtocolsConfig {
  const r = raw as Record<string, unknown>;
  const flags: ProtocolsConfig['flags'] = {};
  for (const p of ['hls', 'rtmp', 'rtsp', 'tshttp'] as const) {
    if (typeof r[p] === 'boolean') flags[p] = r[p];
  }
  return { whitelist: r['whitelist'] === true, flags };
}
