/**
 * TsEgress: a stream's media as MPEG-TS packets, muxed once per stream by one TsMuxer and
 * handed as the same Buffers to every HTTP MPEG-TS viewer (ARCHITECTURE fan-out rule).
 *
 * Each viewer starts at an item that begins with PAT/PMT (the muxer writes them before every
 * video keyframe, or periodically for audio-only streams), so its first bytes decode on
 * their own; a viewer whose socket backs up skips ahead to the next such item (FanOut).
 * The egress listens to the bus only while it has viewers, so an unwatched stream costs
 * nothing and a template stream without publisher or viewers can be removed.
 */
import type { MediaBus } from '../../src/media/bus.js';
import { FanOut, type FanOutOptions, type FanOutSubscriber } from '../../src/media/fanout.js';
import { TsMuxer } from '../../src/media/mpegts/index.js';
import type { Frame, Tracks } from '../../src/media/types.js';

export interface TsItem {
  readonly bytes: Buffer;
  /** Begins with PAT/PMT at a random-access point: a viewer may start here. */
  readonly start: boolean;
}

/** Whether a run of TS packets begins with a PAT (PID 0), i.e. the muxer put tables in front. */
function startsWithPat(b: Buffer): boolean {
  return b.length >= 188 && b[0] === 0x47 && ((b[1] ?? 0) & 0x1f) === 0 && b[2] === 0;
}

export class TsEgress {
  private readonly fanout: FanOut<TsItem>;
  private muxer: TsMuxer | undefined;
  private tracksKey: string | undefined;
  private unsubscribeBus: (() => void) | undefined;

  constructor(
    private readonly bus: MediaBus,
    options: FanOutOptions = {},
  ) {
    this.fanout = new FanOut<TsItem>((i) => i.start, options);
  }

  get viewers(): number {
    return this.fanout.size;
  }

  get droppedForSlowViewers(): number {
    return this.fanout.dropped;
  }

  /**
   * Adds a viewer: it receives the cached items from the last start point, then live items.
   * Items before its first start point are withheld, so the first byte it gets is a PAT.
   */
  subscribe(viewer: FanOutSubscriber<TsItem>): () => void {
    let started = false;
    const gated: FanOutSubscriber<TsItem> = {
      deliver: (item) => {
        if (!started && !item.start) return;
        started = true;
        viewer.deliver(item);
      },
      backlog: () => viewer.backlog(),
    };
    const unsubscribe = this.fanout.subscribe(gated);
    // The bus replays its tracks and cached GOP on subscribe, which fills our cache for
    // the first viewer too.
    if (!this.unsubscribeBus) {
      this.unsubscribeBus = this.bus.subscribe({
        onTracks: (t) => this.onTracks(t),
        onFrame: (f) => this.onFrame(f),
        backlog: () => 0,
      });
    }
    return () => {
      unsubscribe();
      if (this.fanout.size === 0 && this.unsubscribeBus) {
        this.unsubscribeBus();
        this.unsubscribeBus = undefined;
        this.fanout.reset();
      }
    };
  }

  private onTracks(tracks: Tracks): void {
    const key = tracksKey(tracks);
    // Same parameters (a publisher reconnecting): keep the muxer so continuity counters go on.
    if (key === this.tracksKey && this.muxer) return;
    this.tracksKey = key;
    this.muxer = new TsMuxer(tracks);
    // Cached packets belong to the old program; new viewers must start after the change.
    this.fanout.reset();
  }

  private onFrame(frame: Frame): void {
    if (!this.muxer) return;
    const bytes = this.muxer.mux(frame);
    if (bytes.length === 0) return;
    this.fanout.publish({ bytes, start: startsWithPat(bytes) });
  }
}

function tracksKey(t: Tracks): string {
  const v = t.video ? `${t.video.codec}:${t.video.config.toString('hex')}` : '-';
  const a = t.audio
    ? `${t.audio.codec}:${t.audio.config.toString('hex')}:${t.audio.sampleRate}:${t.audio.channels}`
    : '-';
  return `${v}|${a}`;
}
