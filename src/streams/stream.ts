/**
 * Stream: one named live stream — its effective config (template ⊕ stream ⊕ backend
 * override), its MediaBus, and the one thing feeding it: a publisher or a pulled input.
 */
import type { Logger } from 'pino';
import { MediaBus, type Drop } from '../media/bus.js';
import type { Limits } from '../core/limits.js';
import type { FileRoots, StreamConfig } from '../config/types.js';
import { protocolAllowed } from '../config/resolve.js';
import type { Proto } from '../core/proto.js';
import { FfmpegInput } from './ffmpeg-input.js';
import { mergeOverride, type OverrideOutcome, type StreamOverride } from './override.js';
import { Source } from './source.js';
import { redactSecrets } from '../log.js';

export interface StreamDeps {
  log: Logger;
  ffmpeg: string;
  /** The loaded config's file roots, which a backend's `file://` input must obey; the working directory when absent. */
  files?: () => FileRoots;
  /** The loaded config's limits (viewer send queue and stall timeout); the defaults when absent. */
  limits?: () => Limits;
}

export interface Publisher {
  readonly source: Source;
  /** Ends this publisher's hold on the stream; idempotent. */
  release(): void;
}

export class Stream {
  readonly bus: MediaBus;
  private input: FfmpegInput | undefined;
  private publisher: Publisher | undefined;
  private override: StreamOverride | undefined;
  /** `base` with `override` applied; recomputed only when either changes. */
  private effective: StreamConfig;
  private running = false;
  /** The input replacement in progress, if any; replacements run one after another. */
  private inputSwap: Promise<void> = Promise.resolve();
  /** A replacement is queued and has not begun; later requests join it. */
  private swapQueued = false;
  /** Time the stream last had neither a publisher nor a viewer (for removing idle template streams). */
  idleSince = Date.now();

  constructor(
    readonly name: string,
    private base: StreamConfig,
    private readonly deps: StreamDeps,
  ) {
    this.effective = base;
    this.bus = new MediaBus({
      ...(deps.limits ? { limits: deps.limits } : {}),
      onDrop: (drop) => this.logDrop(drop),
    });
  }

  private logDrop(drop: Drop): void {
    const fields = {
      stream: this.name,
      reason: drop.reason,
      ...(drop.err !== undefined
        ? { err: drop.err instanceof Error ? drop.err.message : String(drop.err) }
        : {}),
      ...(drop.backlog !== undefined ? { backlog: drop.backlog } : {}),
    };
    // A whole output failing is a bug in our muxing; one viewer failing or stalling is the viewer's.
    if (drop.reason === 'egress_fault') {
      this.deps.log.error(fields, 'output format failed; its viewers were dropped');
    } else {
      this.deps.log.warn(fields, 'viewer dropped');
    }
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

  /** How often the pulled input's ffmpeg was restarted (for `/metrics`); 0 for published streams. */
  get inputRestarts(): number {
    return this.input?.restarts ?? 0;
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
    this.clearOverride();
    await input?.stop();
    // A replacement may still be waiting for the old ffmpeg to exit; stopped means that one too.
    await this.inputSwap;
  }

  private clearOverride(): void {
    this.override = undefined;
    this.effective = this.base;
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
   * Applies a backend's partial config (AUTH-SPEC §8.1) at once: the new config holds when
   * this returns. A refused override leaves the stream untouched. `restartInput` means the
   * pulled input is being replaced in the background; `closedProtocols` are the play
   * protocols the stream no longer serves, whose sessions the caller closes.
   */
  applyOverride(partial: unknown): OverrideOutcome {
    const files = this.deps.files?.() ?? { roots: [process.cwd()], base: process.cwd() };
    const r = mergeOverride(this.base, this.override, partial, files);
    if (!r.ok) return r;
    if (!r.changed) return { ok: true, changed: false, restartInput: false, closedProtocols: [] };
    this.override = r.override;
    this.effective = r.effective;
    const restartInput = r.restartInput && this.running;
    if (restartInput) {
      this.deps.log.info(
        { stream: this.name, inputs: r.effective.inputs.map(redactSecrets) },
        'input replaced by backend override',
      );
      this.replaceInput();
    }
    return { ok: true, changed: true, restartInput, closedProtocols: r.closedProtocols };
  }

  /**
   * Stops the pulled input, then starts the one the config names by then. Replacements run
   * one after another, so an override arriving while the old ffmpeg is still exiting cannot
   * leave two inputs running; requests made before a queued replacement begins join it.
   */
  private replaceInput(): void {
    if (this.swapQueued) return;
    this.swapQueued = true;
    this.inputSwap = this.inputSwap
      .then(async () => {
        this.swapQueued = false;
        const old = this.input;
        this.input = undefined;
        await old?.stop();
        if (this.running) this.start();
      })
      .catch((err: unknown) => {
        this.deps.log.error({ stream: this.name, err }, 'replacing the input failed');
      });
  }

  /** Replaces the configured base (config reload); the override is dropped (AUTH-SPEC A19). */
  async reconfigure(config: StreamConfig): Promise<void> {
    const wasRunning = this.running;
    await this.stop();
    this.base = config;
    this.clearOverride();
    if (wasRunning) this.start();
  }
}
