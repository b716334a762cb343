/**
 * The requests of one RTSP connection, answered in the order they came (RFC 2326 §9.1: a
 * client may pipeline). An answer that waits for something (the session manager, a stream's
 * tracks) holds every request behind it, so a SETUP or PLAY sent in the same write as a
 * DESCRIBE is looked at only after the DESCRIBE's decision: after a denial it is never
 * looked at. No I/O, no timers.
 */

/** Handles one request; returns a promise only when the answer waits for something. */
export type RequestHandler<T> = (request: T) => Promise<void> | undefined;

export class RequestQueue<T> {
  private readonly waiting: T[] = [];
  private busy = false;
  private stopped = false;

  /**
   * `failed` gets what a handler threw or rejected with, so that no failure escapes as an
   * uncaught exception or unhandled rejection; it must not throw itself. The queue carries on
   * afterwards unless `failed` stopped it.
   */
  constructor(
    private readonly handle: RequestHandler<T>,
    private readonly failed: (request: T, err: unknown) => void,
    /** Requests held behind a pending answer; a peer that piles up more is not a player. */
    private readonly limit: number,
  ) {}

  /** Requests not yet handed to the handler. */
  get pending(): number {
    return this.waiting.length;
  }

  /** Queues a request and handles what can be handled now; false when `limit` are already waiting. */
  push(request: T): boolean {
    if (this.stopped) return true;
    if (this.waiting.length >= this.limit) return false;
    this.waiting.push(request);
    this.drain();
    return true;
  }

  /** Drops what is waiting and hands nothing more to the handler (the connection is gone). */
  stop(): void {
    this.stopped = true;
    this.waiting.length = 0;
  }

  private drain(): void {
    while (!this.busy && !this.stopped) {
      const request = this.waiting.shift();
      if (request === undefined) return;
      let answer: Promise<void> | undefined;
      try {
        answer = this.handle(request);
      } catch (err) {
        this.failed(request, err);
        continue;
      }
      if (!answer) continue;
      this.busy = true;
      answer.then(
        () => this.next(),
        (err: unknown) => {
          this.failed(request, err);
          this.next();
        },
      );
    }
  }

  private next(): void {
    this.busy = false;
    this.drain();
  }
}
