/**
 * Source: the write side of a stream's MediaBus for one publisher or pulled input.
 *
 * Codec configurations arrive as separate messages (video, then audio sequence
 * headers); the bus is told about a new source only when its first frame arrives, so
 * viewers and muxers see the complete track set once instead of a half-known one.
 */
import type { MediaBus } from '../media/bus.js';
import type { Frame, Tracks } from '../media/types.js';

export class Source {
  private pending: Tracks = {};
  private started = false;
  private ended = false;
  bytesIn = 0;

  constructor(private readonly bus: MediaBus) {}

  tracks(tracks: Tracks): void {
    if (this.ended) return;
    this.pending = tracks;
    if (this.started) this.bus.setTracks(tracks);
  }

  frame(frame: Frame): void {
    if (this.ended) return;
    if (!this.started) {
      if (frame.kind === 'video' && !this.pending.video) return; // no decoder config yet: useless to viewers
      if (frame.kind === 'audio' && !this.pending.audio) return;
      this.started = true;
      this.bus.startSource(this.pending);
    }
    this.bus.push(frame);
  }

  end(): void {
    if (this.ended) return;
    this.ended = true;
    if (this.started) this.bus.endSource();
  }
}
