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
  /** With `workers N` (src/cluster/): a publisher (not a relay) took or left this stream. */
  onPublisher?: (stream: Stream, publishing: boolean) => void;
  /** With `workers N`: the stream (re)started; the cluster glue may attach a relay from the owner. */
  onStart?: (stream: Stream) => void;
  /** With `workers N`: whether this process runs the stream's pulled input (one worker does, the others relay it). */
  runsPulledInput?: (name: string) => boolean;
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
  /** The publishing slot is held by a relay from another worker (src/cluster/), not by a client. */
  private relayed = false;
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

  /** A client publishes here, in this process (a relay from another worker does not count). */
  get hasLocalPublisher(): boolean {
    return this.publisher !== undefined && !this.relayed;
  }

  /**
   * This process produces the stream's media (a local publisher or a pulled input it runs),
   * as opposed to relaying it from the worker that does: what should be recorded, once.
   */
  get producesLocally(): boolean {
    return this.hasLocalPublisher || this.input !== undefined;
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
    if (url && !this.input && (this.deps.runsPulledInput?.(this.name) ?? true)) {
      this.input = new FfmpegInput(
        url,
        this.bus,
        this.deps.log.child({ stream: this.name }),
        this.deps.ffmpeg,
      );
      this.input.start();
    }
    this.deps.onStart?.(this);
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

  /**
   * Takes the publishing slot, or returns undefined when someone already publishes here.
   * `relay` (src/cluster/): the slot is fed from the worker that owns the stream; it is taken
   * whatever the inputs say, is not announced, and `onRelease` tells the relay to let go.
   */
  claimPublisher(relay?: { onRelease(): void }): Publisher | undefined {
    if (this.publisher || (!relay && !this.acceptsPublish)) return undefined;
    const source = new Source(this.bus);
    const publisher: Publisher = {
      source,
      release: () => {
        source.end();
        if (this.publisher === publisher) {
          this.publisher = undefined;
          this.relayed = false;
          this.idleSince = Date.now();
          if (relay) relay.onRelease();
          else this.deps.onPublisher?.(this, false);
        }
      },
    };
    this.publisher = publisher;
    this.relayed = relay !== undefined;
    if (!relay) this.deps.onPublisher?.(this, true);
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
