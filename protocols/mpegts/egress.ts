/**
 * TsEgress: a stream's media as MPEG-TS packets, muxed once per stream by one TsMuxer and
 * handed as the same Buffers to every HTTP MPEG-TS viewer (ARCHITECTURE fan-out rule).
 *
 * Each viewer starts at an item that begins with PAT/PMT (the muxer writes them before every
 * video keyframe, or periodically for audio-only streams), so its first bytes decode on
 * their own; a viewer whose socket backs up skips ahead to the next such item (FanOut).
 */
import { Egress } from '../../src/media/egress.js';
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

export class TsEgress extends Egress<TsItem> {
  private muxer: TsMuxer | undefined;
  private tracksKey: string | undefined;

  protected onTracks(tracks: Tracks): void {
    const key = tracksKey(tracks);
    // Same parameters (a publisher reconnecting): keep the muxer so continuity counters go on.
    if (key === this.tracksKey && this.muxer) return;
    this.tracksKey = key;
    this.muxer = new TsMuxer(tracks);
    // Cached packets belong to the old program; new viewers must start after the change.
    this.fanout.reset();
  }

  protected onFrame(frame: Frame): void {
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
