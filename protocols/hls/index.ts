/**
 * The HLS adapter (SPEC §4): `GET /NAME/index.m3u8` (master), `/NAME/mono.m3u8` (live
 * media playlist), `/NAME/mono-<seq>.ts` (MPEG-TS segments) and, for players that ask with
 * `?container=fmp4` (or streams with `hls_container fmp4;`), `/NAME/init-<n>.mp4` and
 * `/NAME/mono-<seq>.m4s` (fMP4/CMAF), all on the shared HTTP listener.
 *
 * A playlist request that arrives before the stream's first segment is held until the cut
 * (bounded by `hls_playlist_hold` and `hls_held_requests`): hls.js treats a 404 for its
 * first playlist as fatal, and a publisher with a 10 s keyframe interval (OBS's default)
 * needs 10 s for the first segment.
 *
 * HLS is stateless, so every playlist and segment request asks the session manager
 * (AUTH-SPEC §3.5, A16): a known identity is answered from memory, a new one costs one
 * backend call, a denied or banned one gets 403. Every URI we write carries the session's
 * token, so a player that came without one stays in the session the server made for it.
 */
import { codecRefusal } from '../../src/media/codec-support.js';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Core, ProtocolAdapter } from '../../src/adapter.js';
import { systemClock, type Clock } from '../../src/clock.js';
import { countLimitHit, limitMs } from '../../src/core/limits.js';
import {
  httpClientRequest,
  playbackCors,
  sendDenial,
  sendPreflight,
  streamResourceMatcher,
} from '../../src/http/playback.js';
import type { RouteContext } from '../../src/http/router.js';
import { sendText } from '../../src/http/server.js';

import { HlsEgress } from './egress.js';
import {
  childQuery,
  MEDIA_PLAYLIST,
  parseInitName,
  parseSegmentName,
  peakBandwidth,
  renderMasterPlaylist,
  renderMediaPlaylist,
  requestedContainer,
  type Container,
} from './wire/playlist.js';
import type { Segment } from './wire/segmenter.js';

/** Segments kept in memory per stream; 6 × 2 s gives players the usual three-segment live offset and slack. */
const WINDOW_SIZE = 6;
const DEFAULT_TARGET_S = 2;
const PLAYLIST_TYPE = 'application/vnd.apple.mpegurl';
const METHODS = 'GET, HEAD, OPTIONS';
const NO_CACHE = { 'Cache-Control': 'no-cache' } as const;

type Resource =
  | { kind: 'master' }
  | { kind: 'media' }
  | { kind: 'segment'; seq: number; container: Container }
  | { kind: 'init'; id: number };

function resourceOf(last: string): Resource | undefined {
  if (last === 'index.m3u8') return { kind: 'master' };
  if (last === MEDIA_PLAYLIST) return { kind: 'media' };
  const seg = parseSegmentName(last);
  if (seg) return { kind: 'segment', ...seg };
  const id = parseInitName(last);
  return id === undefined ? undefined : { kind: 'init', id };
}

/**
 * The response head of one segment body, built once per segment and CORS header set and
 * reused by every request for it (issue 9: no per-request header objects on the hot path).
 */
interface SegmentHeads {
  cors: Record<string, string>;
  /** Flat [name, value, …] list as `writeHead` takes it. */
  head: (string | number)[];
}
const headCache = new WeakMap<Buffer, SegmentHeads>();

function segmentHead(
  body: Buffer,
  type: string,
  maxAge: number,
  cors: Record<string, string>,
): (string | number)[] {
  const cached = headCache.get(body);
  if (cached && cached.cors === cors) return cached.head;
  const head: (string | number)[] = [];
  for (const k in cors) head.push(k, cors[k] as string);
  head.push('Content-Type', type, 'Content-Length', body.length, 'Cache-Control', `max-age=${maxAge}`);
  headCache.set(body, { cors, head });
  return head;
}

export type HlsCore = Pick<Core, 'registry' | 'sessions' | 'router' | 'log' | 'config'>;

export function createHlsAdapter(
  core: HlsCore,
  options: { clock?: Clock; windowSize?: number } = {},
): ProtocolAdapter {
  const clock = options.clock ?? systemClock;
  const windowSize = options.windowSize ?? WINDOW_SIZE;
  /** Egresses holding their bus, so stop() can let go of them and wake waiting requests. */
  const active = new Set<HlsEgress>();
  /** Playlist requests waiting for a first segment, across streams (`hls_held_requests`). */
  let held = 0;
  const matcher = streamResourceMatcher(
    /^(?:index\.m3u8|mono\.m3u8|mono-\d{1,15}\.(?:ts|m4s)|init-\d{1,9}\.mp4)$/,
  );
  // One CORS object per stream configuration, so segment heads can be cached by identity.
  const corsCache = new WeakMap<object, Record<string, string>>();
  const defaultCors = playbackCors(undefined, 'hls');
  const corsFor = (name: string): Record<string, string> => {
    const configured = core.registry.configFor(name)?.playbackHeaders;
    if (configured === undefined) return defaultCors;
    let c = corsCache.get(configured);
    if (!c) {
      c = playbackCors(configured, 'hls');
      corsCache.set(configured, c);
    }
    return c;
  };

  const handle = async (req: IncomingMessage, res: ServerResponse, ctx: RouteContext): Promise<void> => {
    const name = ctx.params['name'] ?? '';
    const resource = resourceOf(ctx.params['resource'] ?? '');
    const cors = corsFor(name);
    if (!resource) {
      sendText(res, 404, 'not found\n', cors);
      return;
    }
    if (req.method === 'OPTIONS') {
      if (core.registry.configFor(name) === undefined) sendText(res, 404, '404 stream_not_found\n', cors);
      else sendPreflight(req, res, cors, METHODS);
      return;
    }

    const decision = await core.sessions.open(httpClientRequest(req, ctx, 'play', 'hls', name));
    if (!decision.allow) {
      sendDenial(res, decision, cors);
      return;
    }
    const session = decision.session;
    session.touch();
    const stream = core.registry.resolve(name);
    if (!stream) {
      sendText(res, 404, '404 stream_not_found\n', { ...cors, ...NO_CACHE });
      return;
    }
    if (!stream.allows('hls')) {
      sendText(res, 403, '403 protocol_disabled\n', { ...cors, ...NO_CACHE });
      return;
    }
    const configuredContainer = stream.config.hlsContainer ?? 'ts';
    const duration = stream.config.segmentDuration ?? DEFAULT_TARGET_S;
    const container =
      resource.kind === 'segment'
        ? resource.container
        : resource.kind === 'init'
          ? 'fmp4'
          : requestedContainer(ctx.url.searchParams, configuredContainer);
    if (container === undefined) {
      sendText(res, 400, '400 container must be ts or fmp4\n', { ...cors, ...NO_CACHE });
      return;
    }
    const unplayable = codecRefusal(container === 'fmp4' ? 'fmp4' : 'hls', stream.bus.tracks);
    if (unplayable) {
      sendText(res, 415, `415 ${unplayable}\n`, { ...cors, ...NO_CACHE });
      return;
    }
    const egress = stream.bus.egress(
      'hls',
      (bus) =>
        new HlsEgress(bus, {
          targetDuration: duration,
          windowSize,
          clock,
          fmp4: configuredContainer === 'fmp4',
          onIdle: (e) => active.delete(e),
        }),
    );
    egress.segmenter.setTargetDuration(duration);
    egress.touch(session);
    active.add(egress);
    const head = req.method === 'HEAD';

    if (resource.kind === 'segment' || resource.kind === 'init') {
      let body: Buffer | undefined;
      if (resource.kind === 'init') {
        body = egress.segmenter.initSegment(resource.id);
      } else {
        const seg: Segment | undefined = egress.segment(resource.seq);
        body = resource.container === 'ts' ? seg?.data : seg?.fmp4;
      }
      if (!body) {
        sendText(res, 404, `404 ${resource.kind === 'init' ? 'init' : 'segment'}_not_in_window\n`, {
          ...cors,
          ...NO_CACHE,
        });
        return;
      }
      // A segment or init number is never reused while the process runs, so a player may
      // cache it for the window's span.
      const target = egress.segmenter.targetDuration ?? duration;
      const type = resource.kind === 'init' || resource.container === 'fmp4' ? 'video/mp4' : 'video/mp2t';
      res.writeHead(200, segmentHead(body, type, Math.max(1, Math.ceil(target * windowSize)), cors));
      res.end(head ? undefined : body);
      if (!head) session.addBytes(body.length);
      return;
    }

    // A playlist request before the first segment waits for it (bounded), instead of a 404
    // that hls.js treats as fatal: with OBS's default 250-frame keyframe interval the first
    // segment takes 10 s to appear.
    if (!egress.hasSegment(container)) {
      const limits = core.config().limits;
      if (held >= limits.hls_held_requests) {
        countLimitHit('hls_held_requests');
        sendText(res, 503, '503 hold_limit\n', { ...cors, ...NO_CACHE, 'Retry-After': '1' });
        return;
      }
      held++;
      let ready: boolean;
      try {
        ready = await egress.waitForSegment(limitMs(limits, 'hls_playlist_hold'), container);
      } finally {
        held--;
      }
      if (!ready) {
        sendText(res, 503, '503 no_segments_yet\n', { ...cors, ...NO_CACHE, 'Retry-After': '1' });
        return;
      }
    }
    if (res.destroyed) return;
    const seg = egress.segmenter;
    const query = childQuery(ctx.url.searchParams, session.token);
    const text =
      resource.kind === 'master'
        ? renderMasterPlaylist({
            tracks: seg.currentTracks ?? {},
            bandwidth: peakBandwidth(seg.segments),
            query,
          })
        : renderMediaPlaylist({
            segments: seg.segments,
            mediaSequence: seg.mediaSequence,
            discontinuitySequence: seg.discontinuitySequence,
            targetDuration: seg.targetDuration ?? Math.max(1, Math.round(duration)),
            query,
            container,
          });
    const bytes = Buffer.from(text);
    res.writeHead(200, {
      ...cors,
      'Content-Type': PLAYLIST_TYPE,
      'Content-Length': bytes.length,
      ...NO_CACHE,
    });
    res.end(head ? undefined : bytes);
    if (!head) session.addBytes(bytes.length);
  };
  // A handler that throws is answered 500 (or cut off) and logged by the HTTP front.
  core.router.add(['GET', 'OPTIONS'], matcher, handle);

  return {
    name: 'hls',
    async start() {},
    async stop() {
      for (const e of active) e.close();
      active.clear();
    },
    address: () => undefined,
  };
}
