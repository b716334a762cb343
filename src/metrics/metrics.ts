/**
 * `/metrics` in the Prometheus text format, with prom-client: what each stream is doing per
 * protocol, why viewers are refused and how the auth backends behave, what the process costs,
 * and which limits were hit (README "Metrics" lists every family).
 *
 * Two kinds of source. Events the session manager reports through its observer hooks
 * (decisions, closes, kicks, backend calls, single-flight joins) are counted as they happen.
 * Everything that is already state somewhere (open sessions, a bus's byte and frame counters,
 * input state) is read when Prometheus scrapes, so a scrape costs a walk over the sessions and
 * streams and the media path pays nothing.
 *
 * Label cardinality: `stream` is an operator's choice for static streams but anyone who may
 * publish to a template can invent names, so static streams always get their own label, the
 * first `streamLabels` template streams seen get theirs while they exist, and every other
 * template stream is summed into `stream="_other"`. `backend` is an auth spec's URL without
 * its query or credentials, so it is bounded by the config file.
 */
import client from 'prom-client';
import type { AuthSpec, Config } from '../config/types.js';
import { LIMIT_NAMES, limitHits } from '../core/limits.js';
import type { CloseReason } from '../core/reasons.js';
import type { SessionCacheStats } from '../sessions/manager.js';
import type { ManagedSession, SessionObserver } from '../sessions/session.js';
import type { ClientRequest, Decision, Session } from '../sessions/types.js';
import type { Stream } from '../streams/stream.js';

/** Template streams that get a label of their own; the rest are `_other`. */
export const DEFAULT_STREAM_LABELS = 50;
export const OTHER_STREAM = '_other';

/** Seconds; from a local script's millisecond answer to the 3 s default deadline and beyond. */
const BACKEND_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

/** Egress keys of the bus, as the `proto` values backends and sessions use. */
const EGRESS_PROTO: Record<string, string> = { mpegts: 'tshttp' };

export interface MetricsDeps {
  /** Names of static streams (always labelled); without it every stream counts against the cap. */
  config?: () => Config;
  streams: () => Stream[];
  sessions: () => Session[];
  cacheStats: () => SessionCacheStats;
  /** Open connections of the HTTP listener. */
  httpConnections?: () => number;
  /** The event sink's counters, when `events` is configured. */
  events?: () => { queued: number; sent: number; dropped: number; failedPosts: number } | undefined;
  streamLabels?: number;
}

/** A backend's label: its URL without query, fragment or credentials (those may carry secrets). */
export function backendLabel(spec: Pick<AuthSpec, 'url'>): string {
  const url = spec.url;
  const cut = url.search(/[?#]/);
  return (cut < 0 ? url : url.slice(0, cut)).replace(/\/\/[^/@]*@/, '//');
}

/** Process-wide families (event loop, memory, descriptors): registered once, shared by every server. */
let processRegistry: client.Registry | undefined;
function processMetrics(): client.Registry {
  if (processRegistry === undefined) {
    processRegistry = new client.Registry();
    client.collectDefaultMetrics({ register: processRegistry, eventLoopMonitoringPrecision: 20 });
    new client.Gauge({
      name: 'streamgate_open_sockets',
      help: 'TCP sockets and servers open in the process (every protocol, clients and backends).',
      registers: [processRegistry],
      collect() {
        const kinds = process.getActiveResourcesInfo();
        this.set(kinds.filter((k) => k === 'TCPSocketWrap' || k === 'TCPServerWrap').length);
      },
    });
  }
  return processRegistry;
}

export class Metrics implements SessionObserver {
  readonly registry = new client.Registry();
  private readonly cap: number;
  /** Template streams that have a label of their own. */
  private readonly dynamicLabels = new Set<string>();
  /** Bytes of closed sessions, by `label\0proto\0kind`, so byte counters never go down. */
  private readonly closedBytes = new Map<string, number>();
  /** The last counters read from each stream (by `Stream` object), for streams that go away. */
  private readonly lastStream = new Map<Stream, { label: string; values: Record<string, number> }>();
  /** Counters of `_other` streams that went away, so `_other` never goes down either. */
  private readonly otherGone: Record<string, number> = {};

  private readonly decisions: client.Counter<'kind' | 'result' | 'reason'>;
  private readonly cacheHits: client.Counter<'cache'>;
  private readonly coalescedTotal: client.Counter;
  private readonly rechecks: client.Counter<'outcome'>;
  private readonly backendRequests: client.Counter<'backend' | 'request_type' | 'outcome'>;
  private readonly backendSeconds: client.Histogram<'backend' | 'request_type'>;
  private readonly kicks: client.Counter<'cause'>;
  private readonly opened: client.Counter<'proto' | 'kind'>;
  private readonly closedTotal: client.Counter<'proto' | 'kind' | 'reason'>;

  constructor(private readonly deps: MetricsDeps) {
    this.cap = deps.streamLabels ?? DEFAULT_STREAM_LABELS;
    const registers = [this.registry];
    this.decisions = new client.Counter({
      name: 'streamgate_auth_decisions_total',
      help: 'Answers to play and publish requests: result allow or deny, reason allow or the deny reason.',
      labelNames: ['kind', 'result', 'reason'],
      registers,
    });
    this.cacheHits = new client.Counter({
      name: 'streamgate_auth_cache_hits_total',
      help: 'Requests answered without a backend call: session (a granted HLS identity), denial (cached denial), ban.',
      labelNames: ['cache'],
      registers,
    });
    this.coalescedTotal = new client.Counter({
      name: 'streamgate_auth_singleflight_coalesced_total',
      help: 'New-session requests that joined a backend call already in flight for the same identity.',
      registers,
    });
    this.rechecks = new client.Counter({
      name: 'streamgate_auth_rechecks_total',
      help: 'update_session re-checks by outcome (allow, deny, redirect, unavailable, timeout, error).',
      labelNames: ['outcome'],
      registers,
    });
    this.backendRequests = new client.Counter({
      name: 'streamgate_auth_backend_requests_total',
      help: 'Auth backend calls by backend, request type and outcome.',
      labelNames: ['backend', 'request_type', 'outcome'],
      registers,
    });
    this.backendSeconds = new client.Histogram({
      name: 'streamgate_auth_backend_request_duration_seconds',
      help: 'Auth backend call latency by backend and request type.',
      labelNames: ['backend', 'request_type'],
      buckets: BACKEND_BUCKETS,
      registers,
    });
    this.kicks = new client.Counter({
      name: 'streamgate_session_kicks_total',
      help: 'Sessions the server ended by cause (kicked, recheck_denied, session_limit, duplicated_user_id, …).',
      labelNames: ['cause'],
      registers,
    });
    this.opened = new client.Counter({
      name: 'streamgate_sessions_opened_total',
      help: 'Sessions granted, by protocol and kind.',
      labelNames: ['proto', 'kind'],
      registers,
    });
    this.closedTotal = new client.Counter({
      name: 'streamgate_sessions_closed_total',
      help: 'Sessions closed, by protocol, kind and close reason.',
      labelNames: ['proto', 'kind', 'reason'],
      registers,
    });
    this.scrapeFamilies();
  }

  // ---------------------------------------------------------------------------------------
  // SessionObserver

  /** Bound children by label values: every HLS request is a decision, so no label hashing per request. */
  private readonly children = new Map<string, { inc(): void }>();

  private child<L extends string>(
    counter: client.Counter<L>,
    key: string,
    labels: Record<L, string>,
  ): { inc(): void } {
    let c = this.children.get(key);
    if (c === undefined) this.children.set(key, (c = counter.labels(labels)));
    return c;
  }

  /** See MetricsExtension. */
  gauge(name: string, help: string, labelNames: string[], read: () => Sample[]): void {
    new client.Gauge({
      name,
      help,
      labelNames,
      registers: [this.registry],
      collect() {
        this.reset();
        for (const [labels, value] of read()) this.set(labels, value);
      },
    });
  }

  /** See MetricsExtension; `read` returns the running totals. */
  counter(name: string, help: string, labelNames: string[], read: () => Sample[]): void {
    new client.Counter({
      name,
      help,
      labelNames,
      registers: [this.registry],
      collect() {
        this.reset();
        for (const [labels, value] of read()) this.inc(labels, value);
      },
    });
  }

  decided(req: ClientRequest, d: Decision, fresh: boolean): void {
    if (d.allow) {
      this.child(this.decisions, `d\0${req.kind}\0allow`, {
        kind: req.kind,
        result: 'allow',
        reason: 'allow',
      }).inc();
      const s = d.session;
      if (fresh) this.child(this.opened, `o\0${s.proto}\0${s.kind}`, { proto: s.proto, kind: s.kind }).inc();
      else this.child(this.cacheHits, 'c\0session', { cache: 'session' }).inc();
      return;
    }
    this.child(this.decisions, `d\0${req.kind}\0${d.reason}`, {
      kind: req.kind,
      result: 'deny',
      reason: d.reason,
    }).inc();
    if (d.reason === 'cached_negative') this.child(this.cacheHits, 'c\0denial', { cache: 'denial' }).inc();
    else if (d.reason === 'banned') this.child(this.cacheHits, 'c\0ban', { cache: 'ban' }).inc();
  }

  closed(s: ManagedSession, reason: CloseReason): void {
    this.closedTotal.inc({ proto: s.proto, kind: s.kind, reason });
    if (s.bytes > 0) {
      const key = `${this.labelFor(s.name)}\0${s.proto}\0${s.kind}`;
      this.closedBytes.set(key, (this.closedBytes.get(key) ?? 0) + s.bytes);
    }
  }

  killed(_s: ManagedSession, reason: CloseReason): void {
    this.kicks.inc({ cause: reason });
  }

  backendCall(spec: AuthSpec, requestType: string, outcome: string, seconds: number): void {
    const backend = backendLabel(spec);
    this.backendRequests.inc({ backend, request_type: requestType, outcome });
    this.backendSeconds.observe({ backend, request_type: requestType }, seconds);
    if (requestType === 'update_session') this.rechecks.inc({ outcome });
  }

  coalesced(): void {
    this.coalescedTotal.inc();
  }

  // ---------------------------------------------------------------------------------------
  // Scrape

  /** The text exposition of this server's families and the process's. */
  async text(): Promise<string> {
    const own = await this.registry.metrics();
    const proc = await processMetrics().metrics();
    return `${own}\n${proc}`;
  }

  get contentType(): string {
    return this.registry.contentType;
  }

  private statics: { config: Config; names: Set<string> } | undefined;

  /** A stream's `stream` label: its name when static or among the first template streams, else `_other`. */
  labelFor(name: string): string {
    if (this.dynamicLabels.has(name)) return name;
    const config = this.deps.config?.();
    if (config !== undefined) {
      // Once per loaded config, not per session and scrape.
      if (this.statics?.config !== config) {
        this.statics = { config, names: new Set(config.streams.map((s) => s.name)) };
      }
      if (this.statics.names.has(name)) return name;
    }
    if (this.dynamicLabels.size < this.cap) {
      this.dynamicLabels.add(name);
      return name;
    }
    return OTHER_STREAM;
  }

  /** Frees the labels of template streams that are gone and have no session left. */
  private sweepLabels(streams: Stream[], sessions: Session[]): void {
    if (this.dynamicLabels.size === 0) return;
    const alive = new Set<string>();
    for (const s of streams) alive.add(s.name);
    for (const s of sessions) alive.add(s.name);
    for (const name of this.dynamicLabels) {
      if (alive.has(name)) continue;
      this.dynamicLabels.delete(name);
      for (const key of this.closedBytes.keys()) {
        if (key.startsWith(`${name}\0`)) this.closedBytes.delete(key);
      }
    }
  }

  /** Per-stream counters, with `_other`'s departed streams kept in. */
  private streamCounters(streams: Stream[]): Map<string, Record<string, number>> {
    const out = new Map<string, Record<string, number>>();
    const add = (label: string, key: string, v: number): void => {
      let rec = out.get(label);
      if (rec === undefined) out.set(label, (rec = {}));
      rec[key] = (rec[key] ?? 0) + v;
    };
    const present = new Set(streams);
    for (const [stream, last] of this.lastStream) {
      if (present.has(stream)) continue;
      this.lastStream.delete(stream);
      if (last.label !== OTHER_STREAM) continue;
      for (const [k, v] of Object.entries(last.values)) this.otherGone[k] = (this.otherGone[k] ?? 0) + v;
    }
    for (const [k, v] of Object.entries(this.otherGone)) add(OTHER_STREAM, k, v);
    for (const s of streams) {
      const label = this.labelFor(s.name);
      const values: Record<string, number> = {
        bytes_in: s.bus.bytesIn,
        frames_in: s.bus.framesIn,
        restarts: s.inputRestarts,
      };
      for (const [key, dropped] of s.bus.droppedByEgress()) {
        values[`dropped\0${EGRESS_PROTO[key] ?? key}`] = dropped;
      }
      this.lastStream.set(s, { label, values });
      for (const [k, v] of Object.entries(values)) add(label, k, v);
    }
    return out;
  }

  /** Families computed from state at scrape time. */
  private scrapeFamilies(): void {
    const registers = [this.registry];
    const deps = this.deps;
    let snapshot:
      | {
          at: number;
          streams: Stream[];
          sessions: Session[];
          counters: Map<string, Record<string, number>>;
          bySession: Map<string, { viewers: number; publishers: number; bytes: number }>;
        }
      | undefined;
    /** One walk over streams and sessions per scrape, shared by every family below. */
    const snap = (): NonNullable<typeof snapshot> => {
      const now = Date.now();
      if (snapshot !== undefined && now - snapshot.at < 500) return snapshot;
      const streams = deps.streams();
      const sessions = deps.sessions();
      this.sweepLabels(streams, sessions);
      const bySession = new Map<string, { viewers: number; publishers: number; bytes: number }>();
      for (const s of sessions) {
        const key = `${this.labelFor(s.name)}\0${s.proto}`;
        let rec = bySession.get(key);
        if (rec === undefined) bySession.set(key, (rec = { viewers: 0, publishers: 0, bytes: 0 }));
        if (s.kind === 'play') rec.viewers++;
        else rec.publishers++;
      }
      snapshot = { at: now, streams, sessions, counters: this.streamCounters(streams), bySession };
      return snapshot;
    };
    const split = (key: string): [string, string] => {
      const i = key.indexOf('\0');
      return [key.slice(0, i), key.slice(i + 1)];
    };
    const labelFor = (name: string): string => this.labelFor(name);
    const closedBytes = this.closedBytes;
    const dynamicLabels = this.dynamicLabels;

    new client.Gauge({
      name: 'streamgate_streams',
      help: 'Streams currently known.',
      registers,
      collect() {
        snapshot = undefined;
        this.set(snap().streams.length);
      },
    });
    new client.Gauge({
      name: 'streamgate_sessions',
      help: 'Open sessions by protocol and kind (play, publish).',
      labelNames: ['proto', 'kind'],
      registers,
      collect() {
        this.reset();
        for (const s of snap().sessions) this.inc({ proto: s.proto, kind: s.kind });
      },
    });
    new client.Gauge({
      name: 'streamgate_stream_viewers',
      help: 'Play sessions per stream and protocol.',
      labelNames: ['stream', 'proto'],
      registers,
      collect() {
        this.reset();
        for (const [key, rec] of snap().bySession) {
          const [stream, proto] = split(key);
          if (rec.viewers > 0) this.set({ stream, proto }, rec.viewers);
        }
      },
    });
    new client.Gauge({
      name: 'streamgate_stream_publishers',
      help: 'Publish sessions per stream and protocol.',
      labelNames: ['stream', 'proto'],
      registers,
      collect() {
        this.reset();
        for (const [key, rec] of snap().bySession) {
          const [stream, proto] = split(key);
          if (rec.publishers > 0) this.set({ stream, proto }, rec.publishers);
        }
      },
    });
    const sessionBytes = (kind: 'play' | 'publish'): Map<string, number> => {
      const out = new Map<string, number>();
      for (const [key, v] of closedBytes) {
        const [label, proto, k] = key.split('\0');
        if (k !== kind) continue;
        const lk = `${label}\0${proto}`;
        out.set(lk, (out.get(lk) ?? 0) + v);
      }
      for (const s of snap().sessions) {
        if (s.kind !== kind) continue;
        const lk = `${labelFor(s.name)}\0${s.proto}`;
        out.set(lk, (out.get(lk) ?? 0) + s.bytes);
      }
      return out;
    };
    new client.Counter({
      name: 'streamgate_stream_bytes_out_total',
      help: 'Payload bytes sent to viewers, per stream and protocol (open and closed sessions).',
      labelNames: ['stream', 'proto'],
      registers,
      collect() {
        this.reset();
        for (const [key, v] of sessionBytes('play')) {
          const [stream, proto] = split(key);
          this.inc({ stream, proto }, v);
        }
      },
    });
    new client.Counter({
      name: 'streamgate_stream_publish_bytes_total',
      help: 'Payload bytes received from publishers, per stream and protocol.',
      labelNames: ['stream', 'proto'],
      registers,
      collect() {
        this.reset();
        for (const [key, v] of sessionBytes('publish')) {
          const [stream, proto] = split(key);
          this.inc({ stream, proto }, v);
        }
      },
    });
    const perStream = (name: string, help: string, key: string): void => {
      new client.Counter({
        name,
        help,
        labelNames: ['stream'],
        registers,
        collect() {
          this.reset();
          for (const [stream, rec] of snap().counters) this.inc({ stream }, rec[key] ?? 0);
        },
      });
    };
    perStream(
      'streamgate_stream_bytes_in_total',
      'Media payload bytes into the stream from its input (publisher or pulled), per stream.',
      'bytes_in',
    );
    perStream('streamgate_frames_in_total', 'Frames received per stream.', 'frames_in');
    perStream(
      'streamgate_stream_input_restarts_total',
      "Restarts of a stream's pulled input (its ffmpeg exited and was started again).",
      'restarts',
    );
    new client.Counter({
      name: 'streamgate_stream_frames_dropped_total',
      help: 'Frames skipped for slow viewers, per stream and protocol.',
      labelNames: ['stream', 'proto'],
      registers,
      collect() {
        this.reset();
        for (const [stream, rec] of snap().counters) {
          for (const [k, v] of Object.entries(rec)) {
            if (k.startsWith('dropped\0')) this.inc({ stream, proto: k.slice(8) }, v);
          }
        }
      },
    });
    new client.Gauge({
      name: 'streamgate_stream_input_state',
      help: "1 for each stream's current input state (publishing, running, starting, backoff, waiting_for_publisher, stopped).",
      labelNames: ['stream', 'state'],
      registers,
      collect() {
        this.reset();
        for (const s of snap().streams) {
          const stream = labelFor(s.name);
          if (stream === OTHER_STREAM) continue;
          this.set({ stream, state: s.inputState }, 1);
        }
      },
    });
    new client.Gauge({
      name: 'streamgate_stream_keyframe_interval_seconds',
      help: 'Decode-time distance between the last two video keyframes of the stream.',
      labelNames: ['stream'],
      registers,
      collect() {
        this.reset();
        for (const s of snap().streams) {
          const stream = labelFor(s.name);
          const gop = s.bus.keyframeIntervalS;
          if (stream === OTHER_STREAM || gop === undefined) continue;
          this.set({ stream }, gop);
        }
      },
    });
    new client.Gauge({
      name: 'streamgate_stream_label_sets',
      help: 'Template streams with a stream label of their own; others are summed into stream="_other".',
      registers,
      collect() {
        this.set(dynamicLabels.size);
      },
    });
    new client.Counter({
      name: 'streamgate_limit_hits_total',
      help: 'Offenders closed or refused because they hit a limit (README "Limits").',
      labelNames: ['limit'],
      registers,
      collect() {
        this.reset();
        const hits = limitHits();
        for (const name of LIMIT_NAMES) this.inc({ limit: name }, hits.get(name) ?? 0);
      },
    });
    new client.Gauge({
      name: 'streamgate_denial_cache_entries',
      help: 'Cached denials and bans (AUTH-SPEC §4.5).',
      labelNames: ['kind'],
      registers,
      collect() {
        const c = deps.cacheStats().denialCache;
        this.set({ kind: 'denial' }, c.entries - c.bans);
        this.set({ kind: 'ban' }, c.bans);
      },
    });
    new client.Gauge({
      name: 'streamgate_denial_cache_bytes',
      help: 'Estimated memory of the denial cache; capped by denial_cache_bytes.',
      registers,
      collect() {
        this.set(deps.cacheStats().denialCache.bytes);
      },
    });
    new client.Counter({
      name: 'streamgate_denial_cache_evictions_total',
      help: 'Entries dropped to stay under denial_cache_bytes.',
      registers,
      collect() {
        this.reset();
        this.inc(deps.cacheStats().denialCache.evictions);
      },
    });
    new client.Gauge({
      name: 'streamgate_rate_limit_tracked_addresses',
      help: 'Client addresses whose new-session budget is tracked.',
      registers,
      collect() {
        this.set(deps.cacheStats().rateLimitBuckets);
      },
    });
    if (deps.httpConnections) {
      const conns = deps.httpConnections;
      new client.Gauge({
        name: 'streamgate_http_connections',
        help: 'Open connections of the HTTP listener.',
        registers,
        collect() {
          this.set(conns());
        },
      });
    }
    if (deps.events) {
      const events = deps.events;
      const stat = (k: 'sent' | 'dropped' | 'failedPosts'): number => events()?.[k] ?? 0;
      const counter = (name: string, help: string, k: 'sent' | 'dropped' | 'failedPosts'): void => {
        new client.Counter({
          name,
          help,
          registers,
          collect() {
            this.reset();
            this.inc(stat(k));
          },
        });
      };
      counter('streamgate_events_sent_total', 'Lifecycle events the receiver accepted.', 'sent');
      counter(
        'streamgate_events_dropped_total',
        'Lifecycle events dropped because the queue was full (receiver down) or at shutdown.',
        'dropped',
      );
      counter(
        'streamgate_events_failed_posts_total',
        'Event batches the receiver did not accept (retried).',
        'failedPosts',
      );
      new client.Gauge({
        name: 'streamgate_events_queued',
        help: 'Lifecycle events waiting for the receiver.',
        registers,
        collect() {
          this.set(events()?.queued ?? 0);
        },
      });
    }
  }
}

/** Calls every observer's hook in turn. */
/** One sample of a series an adapter reports: label values and the number. */
export type Sample = [labels: Record<string, string>, value: number];

/**
 * What an adapter may add to `/metrics` (the DVR's archive sizes and write errors): series
 * read at scrape time, so the adapter keeps its own state and pays nothing between scrapes.
 */
export interface MetricsExtension {
  gauge(name: string, help: string, labelNames: string[], read: () => Sample[]): void;
  counter(name: string, help: string, labelNames: string[], read: () => Sample[]): void;
}

export function combineObservers(...all: SessionObserver[]): SessionObserver {
  return {
    decided(req, d, fresh) {
      for (const o of all) o.decided?.(req, d, fresh);
    },
    closed(s, reason, at) {
      for (const o of all) o.closed?.(s, reason, at);
    },
    killed(s, reason) {
      for (const o of all) o.killed?.(s, reason);
    },
    backendCall(spec, type, outcome, seconds) {
      for (const o of all) o.backendCall?.(spec, type, outcome, seconds);
    },
    coalesced() {
      for (const o of all) o.coalesced?.();
    },
  };
}
