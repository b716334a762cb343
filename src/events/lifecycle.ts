/**
 * What becomes a lifecycle event: the session manager's observer hooks (opened, denied, closed)
 * and a once-a-second look at the stream registry for inputs that went live or stopped (a
 * publisher or a pulled input alike). Events carry a token's short hash, never the token.
 */
import { tokenHash } from '../core/secrets.js';
import type { ManagedSession, SessionObserver } from '../sessions/session.js';
import type { StreamRegistry } from '../streams/registry.js';
import type { EventSink } from './sink.js';

/** Input states in which a stream is live. */
const LIVE_STATES = new Set(['publishing', 'running']);
const WATCH_MS = 1000;

function sessionFields(s: ManagedSession): Record<string, unknown> {
  return {
    session_id: s.id,
    kind: s.kind,
    name: s.name,
    proto: s.proto,
    ip: s.ip,
    user_id: s.userId ?? null,
    token_hash: s.tokenHash,
    admin_view: s.adminView,
    opened_at: s.openedAt,
  };
}

export function eventsObserver(sink: Pick<EventSink, 'emit'>): SessionObserver {
  return {
    decided(req, d, fresh) {
      if (d.allow) {
        if (fresh) sink.emit('session.opened', sessionFields(d.session as ManagedSession));
        return;
      }
      sink.emit('session.denied', {
        kind: req.kind,
        name: req.name,
        proto: req.proto,
        ip: req.ip,
        status: d.status,
        reason: d.reason,
        ...(d.detail !== undefined ? { detail: d.detail } : {}),
        token_hash: tokenHash(req.token) ?? null,
      });
    },
    closed(s, reason, closedAt) {
      // A session nobody was told about (refused by a limit inside its own admission) never opened.
      if (!s.observed) return;
      sink.emit('session.closed', {
        ...sessionFields(s),
        bytes: s.bytes,
        closed_at: closedAt,
        duration_ms: closedAt - s.openedAt,
        reason,
      });
    },
  };
}

/** Emits `stream.started` / `stream.stopped` as streams' inputs go live and stop. */
export class StreamWatcher {
  private readonly live = new Map<string, string>();
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly registry: Pick<StreamRegistry, 'list'>,
    private readonly sink: Pick<EventSink, 'emit'>,
  ) {}

  start(): void {
    this.timer = setInterval(() => this.tick(), WATCH_MS);
    this.timer.unref();
  }

  tick(): void {
    const seen = new Set<string>();
    for (const s of this.registry.list()) {
      const state = s.inputState;
      if (!LIVE_STATES.has(state)) continue;
      seen.add(s.name);
      if (!this.live.has(s.name)) {
        this.live.set(s.name, state);
        const tracks = s.bus.tracks;
        this.sink.emit('stream.started', {
          name: s.name,
          input: state === 'publishing' ? 'publish' : 'pull',
          video: tracks?.video?.codec ?? null,
          audio: tracks?.audio?.codec ?? null,
        });
      }
    }
    for (const [name, state] of this.live) {
      if (seen.has(name)) continue;
      this.live.delete(name);
      this.sink.emit('stream.stopped', { name, input: state === 'publishing' ? 'publish' : 'pull' });
    }
  }

  stop(): void {
    if (this.timer !== undefined) clearInterval(this.timer);
    this.timer = undefined;
  }
}
