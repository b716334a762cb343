/**
 * Records one running stream into its archive: listens to the stream's bus (not as a viewer:
 * a recorder keeps no template stream alive), cuts segments and queues them for the disk.
 * Any failure here stays here; the bus drops a listener that throws, and the adapter's next
 * sync starts a fresh recorder.
 */
import type { Stream } from '../../src/streams/stream.js';
import type { DvrArchive } from './archive.js';
import { DvrCutter, type CutSegment } from './wire/cutter.js';

const DEFAULT_SEGMENT_SEC = 2;

export class DvrRecorder {
  private unsubscribe: (() => void) | undefined;
  private readonly cutter: DvrCutter;
  private lastFrameAt = 0;
  private open = false;

  constructor(
    readonly stream: Stream,
    private readonly archive: DvrArchive,
    private readonly now: () => number,
  ) {
    this.cutter = new DvrCutter(stream.config.segmentDuration ?? DEFAULT_SEGMENT_SEC);
  }

  start(): void {
    void this.archive.load();
    this.unsubscribe = this.stream.bus.subscribe({
      onTracks: (t) => this.save(this.cutter.setTracks(t)),
      onFrame: (f) => {
        this.lastFrameAt = this.now();
        this.open = true;
        this.save(this.cutter.push(f, this.lastFrameAt));
      },
      backlog: () => 0,
      failed: () => {
        this.unsubscribe = undefined;
      },
    });
  }

  /**
   * Called about once a second: the bus does not tell listeners that a source stopped, so a
   * silence of a few segment lengths ends the open segment and puts it in the archive.
   */
  tick(nowMs: number): void {
    this.cutter.setTarget(this.stream.config.segmentDuration ?? DEFAULT_SEGMENT_SEC);
    const quietMs = 3 * (this.stream.config.segmentDuration ?? DEFAULT_SEGMENT_SEC) * 1000;
    if (this.open && nowMs - this.lastFrameAt > quietMs) {
      this.open = false;
      this.save(this.cutter.flush());
    }
  }

  get listening(): boolean {
    return this.unsubscribe !== undefined;
  }

  stop(): void {
    this.unsubscribe?.();
    this.unsubscribe = undefined;
    this.save(this.cutter.flush());
  }

  private save(seg: CutSegment | undefined): void {
    if (seg !== undefined) this.archive.write(seg.startMs, seg.durationMs, seg.data);
  }
}
