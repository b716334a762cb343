/**
 * One stream's DVR archive on disk: MPEG-TS segments as they are cut, an in-memory index of
 * them, retention by age and size, and what the API and `/metrics` report about it.
 *
 * The file names are the index: `ROOT/<stream>/<YYYY-MM-DD>/<HH>/<startMs>-<durationMs>.ts`
 * (UTC). A segment is written to a `.tmp` file and renamed, so a crash leaves either a whole
 * segment or a stray `.tmp` that the next start removes; a restart rebuilds the index with one
 * directory walk and nothing can disagree with what is actually on disk.
 *
 * Disk trouble (full, read-only, gone) is this archive's problem alone: the segment is dropped,
 * the error is kept for the API and counted, and the live stream never waits for the disk —
 * writes are asynchronous and a write queue that grows past a few segments drops instead.
 */
import { mkdir, readdir, rename, rm, rmdir, stat, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from 'pino';
import type { DvrConfig } from '../../src/config/types.js';
import { ThrottledWarn } from '../../src/log.js';

export interface ArchivedSegment {
  /** Wall-clock start, Unix milliseconds. */
  readonly startMs: number;
  readonly durationMs: number;
  readonly bytes: number;
  readonly path: string;
}

export interface DvrRangeMs {
  fromMs: number;
  toMs: number;
}

export interface ArchiveStats {
  segments: number;
  bytes: number;
  oldestMs: number | undefined;
  newestMs: number | undefined;
  /** Segments that could not be written since start. */
  writeErrors: number;
  /** The latest write failure, until a later write succeeds. */
  lastError: { code: string; message: string; atMs: number } | undefined;
}

/** Segments waiting for the disk; more than this and new ones are dropped (a stalled disk). */
const MAX_PENDING_WRITES = 8;
const SEGMENT_NAME = /^(\d{10,16})-(\d{1,9})\.ts$/;

/** The directory of one stream's archive; the name is escaped so no name can leave the root. */
export function streamDir(root: string, name: string): string {
  return join(root, encodeURIComponent(name));
}

function segmentPath(dir: string, startMs: number, durationMs: number): string {
  const iso = new Date(startMs).toISOString();
  return join(dir, iso.slice(0, 10), iso.slice(11, 13), `${startMs}-${durationMs}.ts`);
}

export class DvrArchive {
  private readonly index: ArchivedSegment[] = [];
  private totalBytes = 0;
  private pending = 0;
  private writeErrors = 0;
  private lastError: ArchiveStats['lastError'];
  private readonly warn: ThrottledWarn;
  private loaded: Promise<void> | undefined;
  /** Writes are chained so the index stays in time order and retention sees every segment. */
  private queue: Promise<void> = Promise.resolve();

  constructor(
    readonly name: string,
    private config: DvrConfig,
    private readonly log: Logger,
    private readonly now: () => number = Date.now,
  ) {
    this.warn = new ThrottledWarn(log, 60_000);
  }

  get dir(): string {
    return streamDir(this.config.root, this.name);
  }

  /** A reload may change depth or size; the next write applies them. */
  reconfigure(config: DvrConfig): void {
    this.config = config;
  }

  /** Rebuilds the index from the directory (once); a missing directory is an empty archive. */
  load(): Promise<void> {
    this.loaded ??= this.scan();
    return this.loaded;
  }

  private async scan(): Promise<void> {
    const found: ArchivedSegment[] = [];
    const walk = async (dir: string, depth: number): Promise<void> => {
      let entries;
      try {
        entries = await readdir(dir, { withFileTypes: true });
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT') this.fail(err as NodeJS.ErrnoException, 'read');
        return;
      }
      for (const e of entries) {
        const p = join(dir, e.name);
        if (e.isDirectory() && depth < 2) await walk(p, depth + 1);
        else if (e.isFile() && e.name.endsWith('.tmp')) await unlink(p).catch(() => undefined);
        else if (e.isFile()) {
          const m = SEGMENT_NAME.exec(e.name);
          if (!m) continue;
          const st = await stat(p).catch(() => undefined);
          if (st) found.push({ startMs: Number(m[1]), durationMs: Number(m[2]), bytes: st.size, path: p });
        }
      }
    };
    await walk(this.dir, 0);
    found.sort((a, b) => a.startMs - b.startMs);
    // Segments written while the scan ran are already indexed and newer than anything found.
    const firstLive = this.index[0]?.startMs ?? Infinity;
    const older = found.filter((s) => s.startMs < firstLive);
    this.index.unshift(...older);
    for (const s of older) this.totalBytes += s.bytes;
    if (found.length > 0) {
      this.log.info(
        { stream: this.name, segments: found.length, bytes: this.totalBytes },
        'dvr archive loaded',
      );
    }
  }

  /**
   * Queues one cut segment for the disk. Never throws and never blocks the caller: a failed
   * or dropped write is counted and reported, and recording goes on with the next segment.
   */
  write(startMs: number, durationMs: number, data: Buffer): void {
    if (this.pending >= MAX_PENDING_WRITES) {
      this.writeErrors++;
      this.lastError = { code: 'EBUSY', message: 'disk too slow: segment dropped', atMs: this.now() };
      this.warn.warn('dvr-slow', { stream: this.name }, 'dvr disk too slow, segment dropped');
      return;
    }
    this.pending++;
    this.queue = this.queue
      .then(() => this.load())
      .then(() => this.persist(Math.round(startMs), Math.max(1, Math.round(durationMs)), data))
      .finally(() => {
        this.pending--;
      });
  }

  /** Resolves when every queued write has reached the disk (or failed). */
  flushed(): Promise<void> {
    return this.queue;
  }

  private async persist(startMs: number, durationMs: number, data: Buffer): Promise<void> {
    const last = this.index[this.index.length - 1];
    // Two segments cannot start in the same millisecond; a clock step back would reorder the index.
    if (last !== undefined && startMs <= last.startMs) startMs = last.startMs + 1;
    const path = segmentPath(this.dir, startMs, durationMs);
    const tmp = `${path}.tmp`;
    try {
      await mkdir(join(path, '..'), { recursive: true });
      await writeFile(tmp, data);
      await rename(tmp, path);
    } catch (err) {
      await unlink(tmp).catch(() => undefined);
      this.fail(err as NodeJS.ErrnoException, 'write');
      return;
    }
    this.index.push({ startMs, durationMs, bytes: data.length, path });
    this.totalBytes += data.length;
    this.lastError = undefined;
    await this.retain();
  }

  private fail(err: NodeJS.ErrnoException, op: 'read' | 'write'): void {
    if (op === 'write') this.writeErrors++;
    const code = err.code ?? 'EIO';
    this.lastError = { code, message: `${op} failed: ${code}`, atMs: this.now() };
    this.warn.warn(
      `dvr-${op}-${code}`,
      { stream: this.name, dir: this.config.root, code },
      `dvr ${op} failed (${code}); live viewing is not affected`,
    );
  }

  /** Drops the oldest segments beyond the configured depth or size. */
  private async retain(): Promise<void> {
    const { depthSec, maxBytes } = this.config;
    const newest = this.index[this.index.length - 1];
    if (newest === undefined) return;
    const horizon = depthSec === undefined ? -Infinity : newest.startMs + newest.durationMs - depthSec * 1000;
    const doomed: ArchivedSegment[] = [];
    while (this.index.length > 1) {
      const oldest = this.index[0] as ArchivedSegment;
      const tooOld = oldest.startMs + oldest.durationMs <= horizon;
      const tooBig = maxBytes !== undefined && this.totalBytes > maxBytes;
      if (!tooOld && !tooBig) break;
      this.index.shift();
      this.totalBytes -= oldest.bytes;
      doomed.push(oldest);
    }
    for (const s of doomed) {
      await unlink(s.path).catch(() => undefined);
      // Empty hour and day directories go with their last segment; a non-empty one stays.
      await rmdir(join(s.path, '..'))
        .then(() => rmdir(join(s.path, '..', '..')))
        .catch(() => undefined);
    }
  }

  /** Segments overlapping [fromMs, toMs), oldest first. */
  between(fromMs: number, toMs: number): ArchivedSegment[] {
    const out: ArchivedSegment[] = [];
    // Binary search for the first segment that ends after fromMs.
    let lo = 0;
    let hi = this.index.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      const s = this.index[mid] as ArchivedSegment;
      if (s.startMs + s.durationMs <= fromMs) lo = mid + 1;
      else hi = mid;
    }
    for (let i = lo; i < this.index.length; i++) {
      const s = this.index[i] as ArchivedSegment;
      if (s.startMs >= toMs) break;
      out.push(s);
    }
    return out;
  }

  /** The segment that starts at exactly `startMs` (a playlist URI names it). */
  at(startMs: number): ArchivedSegment | undefined {
    return this.between(startMs, startMs + 1).find((s) => s.startMs === startMs);
  }

  /** Recorded time as continuous ranges; a gap longer than one second splits them. */
  ranges(): DvrRangeMs[] {
    const out: DvrRangeMs[] = [];
    for (const s of this.index) {
      const last = out[out.length - 1];
      const end = s.startMs + s.durationMs;
      if (last !== undefined && s.startMs - last.toMs <= 1000) last.toMs = Math.max(last.toMs, end);
      else out.push({ fromMs: s.startMs, toMs: end });
    }
    return out;
  }

  stats(): ArchiveStats {
    const first = this.index[0];
    const last = this.index[this.index.length - 1];
    return {
      segments: this.index.length,
      bytes: this.totalBytes,
      oldestMs: first?.startMs,
      newestMs: last === undefined ? undefined : last.startMs + last.durationMs,
      writeErrors: this.writeErrors,
      lastError: this.lastError,
    };
  }

  /** Removes the whole archive of this stream (tests, and an operator's explicit wipe). */
  async destroy(): Promise<void> {
    await this.queue;
    this.index.length = 0;
    this.totalBytes = 0;
    await rm(this.dir, { recursive: true, force: true });
  }
}
