/**
 * Stream, health and metrics endpoints (SPEC §8): what is running, fed by what, and
 * who watches it.
 */
import { longGopWarning } from '../media/bus.js';
import type { SessionCacheStats } from '../sessions/manager.js';
import { LIMIT_NAMES, limitHits } from '../core/limits.js';
import type { StreamRegistry } from '../streams/registry.js';
import type { Stream } from '../streams/stream.js';
import type { SessionManager } from '../sessions/types.js';
import type { HttpRouter } from '../http/router.js';
import { decodePathText, pathPattern } from '../http/router.js';
import { sendJson, sendText } from '../http/server.js';
import { redactSecrets } from '../log.js';

/** A backend URL without its query or credentials: those may carry secrets (`ks://1?secret=…`). */
function describeBackend(url: string | undefined): string | undefined {
  if (url === undefined) return undefined;
  const cut = url.search(/[?#]/);
  return (cut < 0 ? url : url.slice(0, cut)).replace(/\/\/[^/@]*@/, '//');
}

/** Things an operator should fix about the stream: for now a publisher's too-long keyframe interval. */
function warnings(stream: Stream): { warnings?: string[] } {
  const gop = longGopWarning(stream.bus.keyframeIntervalS, stream.config.segmentDuration);
  return gop ? { warnings: [gop] } : {};
}

function describe(stream: Stream, sessions: SessionManager): Record<string, unknown> {
  const tracks = stream.bus.tracks;
  const clients: Record<string, number> = {};
  for (const s of sessions.list()) {
    if (s.name === stream.name && s.kind === 'play') clients[s.proto] = (clients[s.proto] ?? 0) + 1;
  }
  return {
    name: stream.name,
    input: { urls: stream.config.inputs.map(redactSecrets), state: stream.inputState },
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
  },
): void {
  router.add('GET', pathPattern('/health'), (_req, res) => sendJson(res, 200, { status: 'ok' }));

  router.add('GET', pathPattern('/api/streams'), (_req, res) => {
    sendJson(res, 200, { streams: deps.registry.list().map((s) => describe(s, deps.sessions)) });
  });

  router.add(
    'GET',
    (p) =>
      // `/api/streams/NAME/dvr` belongs to the DVR adapter.
      p.startsWith('/api/streams/') && !p.endsWith('/dvr')
        ? { name: decodePathText(p.slice('/api/streams/'.length)) }
        : undefined,
    (_req, res, ctx) => {
      const stream = deps.registry.list().find((s) => s.name === ctx.params['name']);
      if (!stream) sendJson(res, 404, { error: 'stream_not_found' });
      else sendJson(res, 200, describe(stream, deps.sessions));
    },
  );

  router.add('POST', pathPattern('/api/config/reload'), async (_req, res) => {
    try {
      sendJson(res, 200, await deps.reload());
    } catch (err) {
      sendJson(res, 400, { error: 'config_invalid', message: (err as Error).message });
    }
  });

  router.add('GET', pathPattern('/metrics'), (_req, res) => {
    const streams = deps.registry.list();
    const sessions = deps.sessions.list();
    const lines = [
      '# HELP streamgate_streams Streams currently known.',
      '# TYPE streamgate_streams gauge',
      `streamgate_streams ${streams.length}`,
      '# HELP streamgate_sessions Open sessions by protocol and kind.',
      '# TYPE streamgate_sessions gauge',
    ];
    const byKey = new Map<string, number>();
    for (const s of sessions) {
      byKey.set(
        `proto="${s.proto}",kind="${s.kind}"`,
        (byKey.get(`proto="${s.proto}",kind="${s.kind}"`) ?? 0) + 1,
      );
    }
    for (const [k, v] of byKey) lines.push(`streamgate_sessions{${k}} ${v}`);
    lines.push(
      '# HELP streamgate_frames_in_total Frames received per stream.',
      '# TYPE streamgate_frames_in_total counter',
    );
    for (const s of streams) lines.push(`streamgate_frames_in_total{stream="${s.name}"} ${s.bus.framesIn}`);
    lines.push(
      '# HELP streamgate_limit_hits_total Offenders closed or refused because they hit a limit (README "Limits").',
      '# TYPE streamgate_limit_hits_total counter',
    );
    const hits = limitHits();
    for (const name of LIMIT_NAMES) {
      lines.push(`streamgate_limit_hits_total{limit="${name}"} ${hits.get(name) ?? 0}`);
    }
    const cache = deps.cacheStats();
    lines.push(
      '# HELP streamgate_denial_cache_entries Cached denials and bans (AUTH-SPEC §4.5).',
      '# TYPE streamgate_denial_cache_entries gauge',
      `streamgate_denial_cache_entries{kind="denial"} ${cache.denialCache.entries - cache.denialCache.bans}`,
      `streamgate_denial_cache_entries{kind="ban"} ${cache.denialCache.bans}`,
      '# HELP streamgate_denial_cache_bytes Estimated memory of the denial cache; capped by denial_cache_bytes.',
      '# TYPE streamgate_denial_cache_bytes gauge',
      `streamgate_denial_cache_bytes ${cache.denialCache.bytes}`,
      '# HELP streamgate_denial_cache_evictions_total Entries dropped to stay under denial_cache_bytes.',
      '# TYPE streamgate_denial_cache_evictions_total counter',
      `streamgate_denial_cache_evictions_total ${cache.denialCache.evictions}`,
      '# HELP streamgate_rate_limit_tracked_addresses Client addresses whose new-session budget is tracked.',
      '# TYPE streamgate_rate_limit_tracked_addresses gauge',
      `streamgate_rate_limit_tracked_addresses ${cache.rateLimitBuckets}`,
    );
    sendText(res, 200, lines.join('\n') + '\n', { 'Content-Type': 'text/plain; version=0.0.4' });
  });
}
