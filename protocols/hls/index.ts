/**
 * The HLS adapter (SPEC §4): `GET /NAME/index.m3u8` (master), `/NAME/mono.m3u8` (live
 * media playlist) and `/NAME/mono-<seq>.ts` (segments), all on the shared HTTP listener.
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
  parseSegmentName,
  peakBandwidth,
  renderMasterPlaylist,
  renderMediaPlaylist,
} from './wire/playlist.js';

/** Segments kept in memory per stream; 6 × 2 s gives players the usual three-segment live offset and slack. */
const WINDOW_SIZE = 6;
const DEFAULT_TARGET_S = 2;
const PLAYLIST_TYPE = 'application/vnd.apple.mpegurl';
const METHODS = 'GET, HEAD, OPTIONS';

type Resource = { kind: 'master' } | { kind: 'media' } | { kind: 'segment'; seq: number };

function resourceOf(last: string): Resource | undefined {
  if (last === 'index.m3u8') return { kind: 'master' };
  if (last === MEDIA_PLAYLIST) return { kind: 'media' };
  const seq = parseSegmentName(last);
  return seq === undefined ? undefined : { kind: 'segment', seq };
}

export type HlsCore = Pick<Core, 'registry' | 'sessions' | 'router' | 'log'>;

export function createHlsAdapter(
  core: HlsCore,
  options: { clock?: Clock; windowSize?: number } = {},
): ProtocolAdapter {
  const clock = options.clock ?? systemClock;
  const windowSize = options.windowSize ?? WINDOW_SIZE;
  /** Egresses holding their bus, so stop() can let go of them and wake waiting requests. */
  const active = new Set<HlsEgress>();
  const matcher = streamResourceMatcher(/^(?:index\.m3u8|mono\.m3u8|mono-\d{1,15}\.ts)$/);

  const handle = async (req: IncomingMessage, res: ServerResponse, ctx: RouteContext): Promise<void> => {
    const name = ctx.params['name'] ?? '';
    const resource = resourceOf(ctx.params['resource'] ?? '');
    const cors = playbackCors(core.registry.configFor(name)?.playbackHeaders, 'hls');
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
      sendText(res, 404, '404 stream_not_found\n', { ...cors, 'Cache-Control': 'no-cache' });
      return;
    }
    if (!stream.allows('hls')) {
      sendText(res, 403, '403 protocol_disabled\n', { ...cors, 'Cache-Control': 'no-cache' });
      return;
    }
    const unplayable = codecRefusal('hls', stream.bus.tracks);
    if (unplayable) {
      return void sendText(res, 415, `415 ${unplayable}\n`, { ...cors, 'Cache-Control': 'no-cache' });
    }
    const target = stream.config.segmentDuration ?? DEFAULT_TARGET_S;
    const egress = stream.bus.egress(
      'hls',
      (bus) =>
        new HlsEgress(bus, { targetDuration: target, windowSize, clock, onIdle: (e) => active.delete(e) }),
    );
    egress.segmenter.setTargetDuration(target);
    egress.touch(session);
    active.add(egress);
    const head = req.method === 'HEAD';

    if (resource.kind === 'segment') {
      const seg = egress.segment(resource.seq);
      if (!seg) {
        sendText(res, 404, '404 segment_not_in_window\n', { ...cors, 'Cache-Control': 'no-cache' });
        return;
      }
      // A segment number is never reused while the process runs, so a player may cache it for the window's span.
      const maxAge = Math.max(1, Math.ceil(target * windowSize));
      res.writeHead(200, {
        ...cors,
        'Content-Type': 'video/mp2t',
        'Content-Length': seg.data.length,
        'Cache-Control': `max-age=${maxAge}`,
      });
      res.end(head ? undefined : seg.data);
      if (!head) session.addBytes(seg.data.length);
      return;
    }

    // Wait a little for the first segment so a player that starts with the publisher gets a playlist.
    if (!(await egress.waitForSegment(target * 2 * 1000))) {
      sendText(res, 404, '404 no_segments_yet\n', { ...cors, 'Cache-Control': 'no-cache' });
      return;
    }
    if (res.destroyed) return;
    const seg = egress.segmenter;
    const query = childQuery(ctx.url.searchParams, session.token);
    const body =
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
            query,
          });
    const bytes = Buffer.from(body);
    res.writeHead(200, {
      ...cors,
      'Content-Type': PLAYLIST_TYPE,
      'Content-Length': bytes.length,
      'Cache-Control': 'no-cache',
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
