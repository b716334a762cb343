/**
 * The DVR adapter (issue 12): records every stream whose config has `dvr PATH [DEPTH] [SIZE];`
 * and serves its archive on the shared HTTP listener, each request a play session of the
 * stream with `dvr=true` (AUTH-SPEC §3.5), limited to the backend's `allowed_dvr_ranges`.
 *
 * Recording listens to the stream's bus like an output that has no viewers: it never keeps a
 * template stream alive, and what happens to the disk never reaches the live outputs.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { readFile } from 'node:fs/promises';
import type { Core, ProtocolAdapter } from '../../src/adapter.js';
import { systemClock, type Clock } from '../../src/clock.js';
import { protocolAllowed } from '../../src/config/resolve.js';
import type { DvrConfig } from '../../src/config/types.js';
import type { Proto } from '../../src/core/proto.js';
import {
  httpClientRequest,
  playbackCors,
  sendDenial,
  sendPreflight,
  streamResourceMatcher,
} from '../../src/http/playback.js';
import { decodePathText, type RouteContext } from '../../src/http/router.js';
import { sendError, sendJson } from '../../src/http/api.js';
import { sendText } from '../../src/http/server.js';
import type { Session } from '../../src/sessions/types.js';
import { DvrArchive, streamDir, type ArchivedSegment } from './archive.js';
import { exportMp4, exportTs } from './export.js';
import { DvrRecorder } from './recorder.js';
import { renderArchivePlaylist } from './wire/playlist.js';
import {
  DVR_RESOURCE,
  mediaRequest,
  parseDvrResource,
  withinAllowed,
  type DvrResource,
} from './wire/resources.js';

const PLAYLIST_TYPE = 'application/vnd.apple.mpegurl';
const METHODS = 'GET, HEAD, OPTIONS';
/** How often recorders are matched to the running streams (a new template stream, a reload). */
const SYNC_MS = 1000;
/** Segments a time-shifted live playlist lists at once, as a live window does. */
const TIMESHIFT_WINDOW = 6;
/**
 * Archives kept in memory for streams that are not recording here (template names asked for
 * over HTTP): beyond this the least recently created goes, and is read from disk again if asked.
 */
const MAX_IDLE_ARCHIVES = 256;
/** An EVENT playlist lists at most this many segments (about a day of 2 s segments). */
const MAX_LISTED = 50_000;

export type DvrCore = Pick<Core, 'registry' | 'sessions' | 'router' | 'log' | 'metrics'>;

export interface DvrAdapter extends ProtocolAdapter {
  /** The archive of a stream with `dvr` configured (loaded from disk), for the API and tests. */
  archive(name: string): Promise<DvrArchive | undefined>;
}

export function createDvrAdapter(core: DvrCore, options: { clock?: Clock } = {}): DvrAdapter {
  const clock = options.clock ?? systemClock;
  const archives = new Map<string, DvrArchive>();
  const recorders = new Map<string, DvrRecorder>();
  let sync: NodeJS.Timeout | undefined;

  const archiveFor = (name: string, dvr: DvrConfig): DvrArchive => {
    let a = archives.get(name);
    if (a === undefined || a.dir !== streamDir(dvr.root, name)) {
      a = new DvrArchive(name, dvr, core.log, () => clock.now());
      archives.set(name, a);
      if (archives.size > recorders.size + MAX_IDLE_ARCHIVES) {
        for (const old of archives.keys()) {
          if (recorders.has(old) || old === name) continue;
          archives.delete(old);
          break;
        }
      }
    } else {
      a.reconfigure(dvr);
    }
    return a;
  };

  const archive = async (name: string): Promise<DvrArchive | undefined> => {
    const dvr = core.registry.configFor(name)?.dvr;
    if (dvr === undefined) return undefined;
    const a = archiveFor(name, dvr);
    await a.load();
    return a;
  };

  /** Starts a recorder for each running stream that wants one; stops those that no longer do. */
  const syncRecorders = (): void => {
    const wanted = new Set<string>();
    for (const stream of core.registry.list()) {
      const dvr = stream.config.dvr;
      // With workers, only the process that produces a stream records it; relays would duplicate it.
      if (dvr === undefined || !stream.producesLocally) continue;
      wanted.add(stream.name);
      const existing = recorders.get(stream.name);
      if (existing?.stream === stream && existing.listening) {
        existing.tick(clock.now());
        continue;
      }
      existing?.stop();
      const rec = new DvrRecorder(stream, archiveFor(stream.name, dvr), () => clock.now());
      recorders.set(stream.name, rec);
      rec.start();
      core.log.info({ stream: stream.name, dir: dvr.root }, 'dvr recording');
    }
    for (const [name, rec] of recorders) {
      if (!wanted.has(name)) {
        rec.stop();
        recorders.delete(name);
      }
    }
  };

  const handle = async (req: IncomingMessage, res: ServerResponse, ctx: RouteContext): Promise<void> => {
    const name = ctx.params['name'] ?? '';
    const resource = parseDvrResource(ctx.params['resource'] ?? '');
    const config = core.registry.configFor(name);
    const cors = playbackCors(config?.playbackHeaders, 'hls', 'dvr');
    const noCache = { ...cors, 'Cache-Control': 'no-cache' };
    if (!resource) {
      sendText(res, 404, '404 not_found\n', cors);
      return;
    }
    if (req.method === 'OPTIONS') {
      if (config === undefined) sendText(res, 404, '404 stream_not_found\n', cors);
      else sendPreflight(req, res, cors, METHODS);
      return;
    }
    const proto: Proto = resource.kind !== 'export' ? 'hls' : resource.container === 'mp4' ? 'mp4' : 'tshttp';
    const decision = await core.sessions.open({
      ...httpClientRequest(req, ctx, 'play', proto, name),
      dvr: { mediaRequest: mediaRequest(resource) },
    });
    if (!decision.allow) {
      sendDenial(res, decision, cors);
      return;
    }
    const session = decision.session;
    session.touch();
    // A download is its own connection-bound session; playlists and segments share one per identity.
    const done = (reason: 'client_closed' | 'refused' | 'head'): void => {
      if (proto !== 'hls') session.close(reason);
    };
    const refuse = (status: 403 | 404, word: string): void => {
      sendText(res, status, `${status} ${word}\n`, noCache);
      done('refused');
    };
    if (config?.dvr === undefined) {
      refuse(404, 'dvr_not_enabled');
      return;
    }
    if (!protocolAllowed(config.protocols, proto)) {
      refuse(403, 'protocol_disabled');
      return;
    }
    const a = await archive(name);
    if (a === undefined) {
      refuse(404, 'dvr_not_enabled');
      return;
    }
    const now = clock.now();
    const span = requestedSpan(resource, session, now, a);
    if (!withinAllowed(span.fromMs, span.toMs, session.allowedDvrRanges)) {
      refuse(403, 'dvr_range_denied');
      return;
    }
    const head = req.method === 'HEAD';

    if (resource.kind === 'segment') {
      const seg = a.at(resource.startMs);
      if (seg === undefined) {
        refuse(404, 'segment_not_in_archive');
        return;
      }
      await sendSegment(res, seg, cors, head, session);
      return;
    }

    if (resource.kind === 'export') {
      const segments = a.between(span.fromMs, span.toMs);
      if (segments.length === 0) {
        refuse(404, 'dvr_range_empty');
        return;
      }
      const mp4 = resource.container === 'mp4';
      const filename = `${name.replace(/[^A-Za-z0-9._-]/g, '_')}-${resource.from}-${resource.duration}.${resource.container}`;
      res.writeHead(200, {
        ...cors,
        'Content-Type': mp4 ? 'video/mp4' : 'video/mp2t',
        'Content-Disposition': `attachment; filename="${filename}"`,
        'Cache-Control': 'no-cache',
      });
      if (head) {
        res.end();
        done('head');
        return;
      }
      res.on('close', () => done('client_closed'));
      const sink = async (chunk: Buffer): Promise<void> => {
        if (res.destroyed) throw new Error('client went away');
        session.addBytes(chunk.length);
        if (!res.write(chunk)) {
          await new Promise<void>((resolve) => res.once('drain', resolve).once('close', resolve));
        }
      };
      try {
        await (mp4 ? exportMp4 : exportTs)(segments, span.fromMs, span.toMs, sink);
        res.end();
      } catch (err) {
        core.log.warn({ stream: name, err: (err as Error).message }, 'dvr export ended early');
        res.destroy();
      }
      return;
    }

    const listed = playlistSegments(resource, a, span);
    if (listed.segments.length === 0) {
      refuse(404, 'dvr_range_empty');
      return;
    }
    // Child URIs carry the client's query (session keys may read it) with the session's token.
    const q = new URLSearchParams(ctx.url.searchParams);
    q.set('token', session.token);
    const query = `?${q.toString()}`;
    const body = renderArchivePlaylist({ ...listed, query });
    res.writeHead(200, {
      ...cors,
      'Content-Type': PLAYLIST_TYPE,
      'Content-Length': Buffer.byteLength(body),
      'Cache-Control': listed.type === 'VOD' ? 'max-age=60' : 'no-cache',
    });
    res.end(head ? undefined : body);
    if (!head) session.addBytes(Buffer.byteLength(body));
  };

  const sendSegment = async (
    res: ServerResponse,
    seg: ArchivedSegment,
    cors: Record<string, string>,
    head: boolean,
    session: Session,
  ): Promise<void> => {
    let data: Buffer;
    try {
      data = await readFile(seg.path);
    } catch {
      // Retention removed it between the lookup and the read.
      sendText(res, 404, '404 segment_not_in_archive\n', { ...cors, 'Cache-Control': 'no-cache' });
      return;
    }
    res.writeHead(200, {
      ...cors,
      'Content-Type': 'video/mp2t',
      'Content-Length': data.length,
      // An archived segment never changes.
      'Cache-Control': 'max-age=86400',
    });
    res.end(head ? undefined : data);
    if (!head) session.addBytes(data.length);
  };

  const apiRoute = (p: string): Record<string, string> | undefined => {
    if (!p.startsWith('/api/streams/') || !p.endsWith('/dvr')) return undefined;
    return { name: decodePathText(p.slice('/api/streams/'.length, -'/dvr'.length)) };
  };

  return {
    name: 'dvr',
    archive,
    async start() {
      core.router.add(['GET', 'OPTIONS'], streamResourceMatcher(DVR_RESOURCE), handle);
      core.router.add('GET', apiRoute, async (_req, res, ctx) => {
        const name = ctx.params['name'] ?? '';
        const a = await archive(name);
        if (a === undefined) {
          sendError(res, 404, 'dvr_not_enabled', `stream ${name} has no dvr configured`);
          return;
        }
        sendJson(res, 200, describeArchive(a, core.registry.configFor(name)?.dvr));
      });
      // One label set per archive in memory: the recording streams plus at most
      // MAX_IDLE_ARCHIVES others, so a client cannot grow the series.
      const perArchive = (read: (a: DvrArchive) => number) => (): [Record<string, string>, number][] =>
        [...archives.values()].map((a) => [{ stream: a.name }, read(a)]);
      core.metrics?.gauge(
        'streamgate_dvr_bytes',
        'Bytes of a stream archive on disk.',
        ['stream'],
        perArchive((a) => a.stats().bytes),
      );
      core.metrics?.gauge(
        'streamgate_dvr_segments',
        'Segments in a stream archive.',
        ['stream'],
        perArchive((a) => a.stats().segments),
      );
      core.metrics?.counter(
        'streamgate_dvr_write_errors_total',
        'Archive segments that could not be written (disk full, unwritable, too slow); live viewing is not affected.',
        ['stream'],
        perArchive((a) => a.stats().writeErrors),
      );
      core.metrics?.gauge(
        'streamgate_dvr_failing',
        '1 while the latest archive write of the stream failed.',
        ['stream'],
        perArchive((a) => (a.stats().lastError === undefined ? 0 : 1)),
      );
      syncRecorders();
      sync = setInterval(syncRecorders, SYNC_MS);
      sync.unref();
    },
    async stop() {
      if (sync) clearInterval(sync);
      for (const rec of recorders.values()) rec.stop();
      recorders.clear();
      await Promise.all([...archives.values()].map((a) => a.flushed()));
    },
    address: () => undefined,
  };
}

/** The archive time a request reads, for the `allowed_dvr_ranges` check. */
function requestedSpan(
  r: DvrResource,
  session: Session,
  nowMs: number,
  a: DvrArchive,
): { fromMs: number; toMs: number } {
  switch (r.kind) {
    case 'range':
    case 'export':
      return { fromMs: r.from * 1000, toMs: (r.from + r.duration) * 1000 };
    case 'event':
      return { fromMs: r.from * 1000, toMs: Math.max(r.from * 1000 + 1, nowMs) };
    case 'timeshift':
      return { fromMs: r.from * 1000, toMs: r.from * 1000 + Math.max(1, nowMs - session.openedAt) };
    case 'segment': {
      const seg = a.at(r.startMs);
      return { fromMs: r.startMs, toMs: r.startMs + (seg?.durationMs ?? 1) };
    }
  }
}

function playlistSegments(
  r: DvrResource,
  a: DvrArchive,
  span: { fromMs: number; toMs: number },
): { segments: ArchivedSegment[]; type: 'VOD' | 'EVENT' | 'live'; mediaSequence?: number } {
  if (r.kind === 'range') return { segments: a.between(span.fromMs, span.toMs), type: 'VOD' };
  if (r.kind === 'event') {
    return { segments: a.between(span.fromMs, Infinity).slice(0, MAX_LISTED), type: 'EVENT' };
  }
  // Time-shifted live: the segments up to the session's play position, a live-sized window of
  // them; numbered from FROM so a segment keeps its number across reloads.
  const all = a.between(span.fromMs, span.toMs);
  const first = Math.max(0, all.length - TIMESHIFT_WINDOW);
  return { segments: all.slice(first), type: 'live', mediaSequence: first };
}

function describeArchive(a: DvrArchive, dvr: DvrConfig | undefined): Record<string, unknown> {
  const s = a.stats();
  const sec = (ms: number | undefined): number | null => (ms === undefined ? null : Math.floor(ms / 1000));
  return {
    name: a.name,
    depth: dvr?.depthSec ?? null,
    max_bytes: dvr?.maxBytes ?? null,
    segments: s.segments,
    bytes: s.bytes,
    oldest: sec(s.oldestMs),
    newest: s.newestMs === undefined ? null : Math.ceil(s.newestMs / 1000),
    ranges: a.ranges().map((r) => ({ from: Math.floor(r.fromMs / 1000), to: Math.ceil(r.toMs / 1000) })),
    write_errors: s.writeErrors,
    error:
      s.lastError === undefined
        ? null
        : { code: s.lastError.code, message: s.lastError.message, at: sec(s.lastError.atMs) },
  };
}
