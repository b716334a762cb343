/**
 * `GET /api/live`: the admin page's live view as Server-Sent Events. Once a second, while at
 * least one page listens, one snapshot (streams with input state, bitrate and viewers per
 * protocol; open sessions; bans) is built and written to every listener as an `event: state`
 * whose data is JSON, so the page never reloads and never polls.
 *
 * Bounded: at most MAX_CLIENTS listeners, the session and ban lists are cut at their caps with
 * the totals given, and a listener that stops reading is dropped rather than buffered for.
 */
import type { ServerResponse } from 'node:http';
import { describeBackend as describeBackendUrl } from './streams-api.js';
import { apiRoute, sendError } from '../http/api.js';
import type { HttpRouter } from '../http/router.js';
import { pathPattern } from '../http/router.js';
import { redactSecrets } from '../log.js';
import type { Sessions } from '../sessions/manager.js';
import type { StreamRegistry } from '../streams/registry.js';
import type { Stream } from '../streams/stream.js';

const TICK_MS = 1000;
export const MAX_LIVE_CLIENTS = 16;
const MAX_SESSIONS_SHOWN = 500;
const MAX_BANS_SHOWN = 200;
/** A listener with this much unsent is not reading; it is dropped. */
const MAX_BACKLOG_BYTES = 4 * 1024 * 1024;

export interface LiveDeps {
  registry: Pick<StreamRegistry, 'list'>;
  sessions: Pick<Sessions, 'list' | 'bans'>;
}

export class LiveFeed {
  private readonly clients = new Set<ServerResponse>();
  private timer: NodeJS.Timeout | undefined;
  private readonly lastBytes = new WeakMap<Stream, { bytes: number; at: number }>();

  constructor(private readonly deps: LiveDeps) {}

  get size(): number {
    return this.clients.size;
  }

  /** The state as the page shows it; bitrates are measured since the previous snapshot. */
  snapshot(now = Date.now()): Record<string, unknown> {
    const sessions = this.deps.sessions.list();
    const perStream = new Map<
      string,
      { viewers: Record<string, number>; publishers: Record<string, number> }
    >();
    for (const s of sessions) {
      let rec = perStream.get(s.name);
      if (rec === undefined) perStream.set(s.name, (rec = { viewers: {}, publishers: {} }));
      const side = s.kind === 'play' ? rec.viewers : rec.publishers;
      side[s.proto] = (side[s.proto] ?? 0) + 1;
    }
    const streams = this.deps.registry.list().map((st) => {
      const bytes = st.bus.bytesIn;
      const prev = this.lastBytes.get(st);
      this.lastBytes.set(st, { bytes, at: now });
      const dt = prev === undefined ? 0 : (now - prev.at) / 1000;
      const kbps = prev !== undefined && dt > 0 ? Math.round(((bytes - prev.bytes) * 8) / dt / 1000) : null;
      const tracks = st.bus.tracks;
      const rec = perStream.get(st.name);
      return {
        name: st.name,
        input: {
          state: st.inputState,
          urls: st.config.inputs.map(redactSecrets),
          restarts: st.inputRestarts,
        },
        bitrate_kbps: kbps,
        keyframe_interval: st.bus.keyframeIntervalS ?? 0,
        viewers: rec?.viewers ?? {},
        publishers: rec?.publishers ?? {},
        tracks: {
          video: tracks?.video
            ? { codec: tracks.video.codec, width: tracks.video.width, height: tracks.video.height }
            : null,
          audio: tracks?.audio ? { codec: tracks.audio.codec, sample_rate: tracks.audio.sampleRate } : null,
        },
        auth: {
          on_play: describeBackendUrl(st.config.onPlay?.url) ?? null,
          on_publish: describeBackendUrl(st.config.onPublish?.url) ?? null,
          session_keys: st.config.onPlay?.sessionKeys ?? null,
          max_sessions: st.config.onPlay?.maxSessions ?? null,
          soft_limitation: st.config.onPlay?.softLimitation ?? false,
          domains: st.config.onPlay?.domains ?? null,
          timeout_sec: st.config.onPlay?.timeoutSec ?? null,
          password_protected: st.config.password !== undefined,
          protocols: st.config.protocols ?? null,
        },
      };
    });
    const bans = this.deps.sessions.bans();
    return {
      time: now,
      streams,
      sessions: sessions.slice(0, MAX_SESSIONS_SHOWN),
      sessions_total: sessions.length,
      bans: bans.slice(0, MAX_BANS_SHOWN).map((b) => ({
        id_key: b.idKey,
        reason: b.reason,
        ban: b.ban,
        name: b.name,
        user_id: b.userId ?? null,
        until: b.until,
      })),
      bans_total: bans.length,
    };
  }

  /** Takes a listener; false when the feed is full. */
  add(res: ServerResponse): boolean {
    if (this.clients.size >= MAX_LIVE_CLIENTS) return false;
    res.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-store',
      'x-accel-buffering': 'no',
    });
    this.clients.add(res);
    res.on('close', () => {
      this.clients.delete(res);
      if (this.clients.size === 0) this.stop();
    });
    this.write(res, `retry: 2000\nevent: state\ndata: ${JSON.stringify(this.snapshot())}\n\n`);
    if (this.timer === undefined) {
      this.timer = setInterval(() => this.tick(), TICK_MS);
      this.timer.unref();
    }
    return true;
  }

  private write(res: ServerResponse, text: string): void {
    if (res.writableLength > MAX_BACKLOG_BYTES) {
      res.destroy();
      return;
    }
    res.write(text);
  }

  private tick(): void {
    if (this.clients.size === 0) return;
    const text = `event: state\ndata: ${JSON.stringify(this.snapshot())}\n\n`;
    for (const res of this.clients) this.write(res, text);
  }

  stop(): void {
    if (this.timer !== undefined) clearInterval(this.timer);
    this.timer = undefined;
  }

  /** Ends every listener (server shutdown). */
  close(): void {
    this.stop();
    for (const res of this.clients) res.end();
    this.clients.clear();
  }
}

export function registerLiveRoutes(router: HttpRouter, feed: LiveFeed): void {
  router.add(
    'GET',
    pathPattern('/api/live'),
    apiRoute((req, res) => {
      if (req.method === 'HEAD') {
        res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8' }).end();
        return;
      }
      if (!feed.add(res)) {
        sendError(res, 503, 'too_many_live_clients', `at most ${MAX_LIVE_CLIENTS} live views at once`, {
          'retry-after': '5',
        });
      }
    }),
  );
}
