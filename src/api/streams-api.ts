/**
 * Stream, health and metrics endpoints (SPEC §8): what is running, fed by what, and
 * who watches it.
 */
import { longGopWarning } from '../media/bus.js';
import type { SessionCacheStats } from '../sessions/manager.js';
import type { StreamRegistry } from '../streams/registry.js';
import type { Stream } from '../streams/stream.js';
import type { SessionManager } from '../sessions/types.js';
import type { HttpRouter } from '../http/router.js';
import { decodePathText, pathPattern } from '../http/router.js';
import { apiRoute, page, pageRequest, sendError, sendJson } from '../http/api.js';
import { redactSecrets } from '../log.js';
import { Metrics } from '../metrics/metrics.js';

/** A backend URL without its query or credentials: those may carry secrets (`ks://1?secret=…`). */
export function describeBackend(url: string | undefined): string | undefined {
  if (url === undefined) return undefined;
  const cut = url.search(/[?#]/);
  return (cut < 0 ? url : url.slice(0, cut)).replace(/\/\/[^/@]*@/, '//');
}

/** Things an operator should fix about the stream: for now a publisher's too-long keyframe interval. */
function warnings(stream: Stream): { warnings?: string[] } {
  const gop = longGopWarning(stream.bus.keyframeIntervalS, stream.config.segmentDuration);
  return gop ? { warnings: [gop] } : {};
}

export function describeStream(stream: Stream, sessions: SessionManager): Record<string, unknown> {
  const tracks = stream.bus.tracks;
  const clients: Record<string, number> = {};
  for (const s of sessions.list()) {
    if (s.name === stream.name && s.kind === 'play') clients[s.proto] = (clients[s.proto] ?? 0) + 1;
  }
  return {
    name: stream.name,
    input: {
      urls: stream.config.inputs.map(redactSecrets),
      state: stream.inputState,
      restarts: stream.inputRestarts,
      bytes_in: stream.bus.bytesIn,
      keyframe_interval: stream.bus.keyframeIntervalS ?? null,
    },
    tracks: {
      ...(tracks?.video
        ? { video: { codec: tracks.video.codec, width: tracks.video.width, height: tracks.video.height } }
        : {}),
      ...(tracks?.audio
        ? {
            audio: {
              codec: tracks.audio.codec,
              sample_rate: tracks.audio.sampleRate,
              channels: tracks.audio.channels,
            },
          }
        : {}),
    },
    clients,
    auth: {
      on_play: describeBackend(stream.config.onPlay?.url),
      on_publish: describeBackend(stream.config.onPublish?.url),
      session_keys: stream.config.onPlay?.sessionKeys,
      max_sessions: stream.config.onPlay?.maxSessions,
      domains: stream.config.onPlay?.domains,
      password_protected: stream.config.password !== undefined,
    },
    frames_in: stream.bus.framesIn,
    dropped_for_slow_viewers: stream.bus.droppedForSlowViewers,
    ...warnings(stream),
  };
}

export function registerStreamRoutes(
  router: HttpRouter,
  deps: {
    registry: StreamRegistry;
    sessions: SessionManager;
    /** The denial cache and rate limiter's sizes, for `/metrics`. */
    cacheStats: () => SessionCacheStats;
    reload: () => Promise<unknown>;
    /** `/metrics`; a server builds one with the session observer wired, tests may leave it out. */
    metrics?: Metrics;
  },
): void {
  const metrics =
    deps.metrics ??
    new Metrics({
      streams: () => deps.registry.list(),
      sessions: () => deps.sessions.list(),
      cacheStats: deps.cacheStats,
    });
  router.add('GET', pathPattern('/health'), (_req, res) => sendJson(res, 200, { status: 'ok' }));

  router.add(
    'GET',
    pathPattern('/api/streams'),
    apiRoute((_req, res, ctx) => {
      const p = pageRequest(ctx.url.searchParams);
      const streams = deps.registry.list();
      const shown = streams.slice(p.offset, p.offset + p.limit).map((s) => describeStream(s, deps.sessions));
      const body = page('streams', streams, p);
      body['streams'] = shown;
      sendJson(res, 200, body);
    }),
  );

  router.add(
    'GET',
    (p) =>
      // `/api/streams/NAME/dvr` belongs to the DVR adapter.
      p.startsWith('/api/streams/') && !p.endsWith('/dvr')
        ? { name: decodePathText(p.slice('/api/streams/'.length)) }
        : undefined,
    (_req, res, ctx) => {
      const stream = deps.registry.list().find((s) => s.name === ctx.params['name']);
      if (!stream) sendError(res, 404, 'stream_not_found', `no stream ${ctx.params['name'] ?? ''}`);
      else sendJson(res, 200, describeStream(stream, deps.sessions));
    },
  );

  router.add(
    'POST',
    pathPattern('/api/config/reload'),
    apiRoute(async (_req, res) => {
      try {
        sendJson(res, 200, await deps.reload());
      } catch (err) {
        sendError(res, 400, 'config_invalid', (err as Error).message);
      }
    }),
  );

  router.add('GET', pathPattern('/metrics'), async (req, res) => {
    const text = await metrics.text();
    res.writeHead(200, {
      'Content-Type': metrics.contentType,
      'Content-Length': Buffer.byteLength(text),
      'Cache-Control': 'no-store',
    });
    res.end(req.method === 'HEAD' ? undefined : text);
  });
}
