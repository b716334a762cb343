/**
 * `/metrics` against the real composition root and a real HTTP auth backend on loopback:
 * every family the README lists is exposed, and each moves when what it counts happens —
 * decisions by reason, cache hits, single-flight joins, backend latency and timeouts,
 * re-checks, kicks, per-stream bytes, frames, keyframe interval, input state, label capping,
 * process figures and limit hits.
 */
import { test } from 'node:test';
import { readFileSync } from 'node:fs';
import assert from 'node:assert/strict';
import { startBackend } from '../../helpers/backend.js';
import { countLimitHit } from '../../../src/core/limits.js';
import { Metrics, OTHER_STREAM } from '../../../src/metrics/metrics.js';
import type { Sessions } from '../../../src/sessions/manager.js';
import type { ManagedSession } from '../../../src/sessions/session.js';
import type { ClientRequest } from '../../../src/sessions/types.js';
import type { Stream } from '../../../src/streams/stream.js';
import { sample, startRunning } from './harness.js';

function req(name: string, token: string, proto: ClientRequest['proto'] = 'rtmp'): ClientRequest {
  return {
    kind: 'play',
    proto,
    name,
    ip: '127.0.0.1',
    token,
    qs: `token=${token}`,
    query: new URLSearchParams({ token }),
  };
}

const FAMILIES = [
  'streamgate_streams',
  'streamgate_sessions',
  'streamgate_stream_viewers',
  'streamgate_stream_publishers',
  'streamgate_stream_bytes_out_total',
  'streamgate_stream_publish_bytes_total',
  'streamgate_stream_bytes_in_total',
  'streamgate_frames_in_total',
  'streamgate_stream_frames_dropped_total',
  'streamgate_stream_input_state',
  'streamgate_stream_input_restarts_total',
  'streamgate_stream_keyframe_interval_seconds',
  'streamgate_stream_label_sets',
  'streamgate_auth_decisions_total',
  'streamgate_auth_cache_hits_total',
  'streamgate_auth_singleflight_coalesced_total',
  'streamgate_auth_rechecks_total',
  'streamgate_auth_backend_requests_total',
  'streamgate_auth_backend_request_duration_seconds',
  'streamgate_session_kicks_total',
  'streamgate_sessions_opened_total',
  'streamgate_sessions_closed_total',
  'streamgate_limit_hits_total',
  'streamgate_denial_cache_entries',
  'streamgate_denial_cache_bytes',
  'streamgate_denial_cache_evictions_total',
  'streamgate_rate_limit_tracked_addresses',
  'streamgate_http_connections',
  'streamgate_open_sockets',
  'nodejs_eventloop_lag_seconds',
  'process_resident_memory_bytes',
  'process_open_fds',
];

test('auth families: decisions by reason, caches, single-flight, latency, timeouts, re-checks, kicks', async (t) => {
  const backend = await startBackend((q) => {
    const token = q.get('token') ?? '';
    if (token === 'slow') return { status: 200, delayMs: 2600 };
    if (token === 'shared') return { status: 200, delayMs: 100 };
    return { status: token.startsWith('good') ? 200 : 403 };
  });
  t.after(() => backend.close());
  const s = await startRunning(
    t,
    `template live { prefix live; input publish://; on_play ${backend.url} timeout=2; }\ntemplate warm { prefix warm; input publish://; on_play ${backend.url.replace('/auth', '/warm')}; }`,
  );
  const sessions = s.server.core.sessions as Sessions;
  const metrics = async (): Promise<string> => {
    const r = await s.call('GET', '/metrics');
    assert.equal(r.status, 200);
    assert.match(r.type, /^text\/plain; version=0\.0\.4/);
    return r.text;
  };

  // The first backend call loads the HTTP client; done on another backend label, so a slow
  // first load under a busy CI cannot push a measured call past its deadline.
  assert.ok((await sessions.open(req('warm/a', 'goodwarm'))).allow);
  const ok = await sessions.open(req('live/a', 'good1'));
  assert.ok(ok.allow);
  assert.ok(!(await sessions.open(req('live/a', 'bad'))).allow);
  const cached = await sessions.open(req('live/a', 'bad'));
  assert.ok(!cached.allow && cached.reason === 'cached_negative');
  const [x, y] = await Promise.all([
    sessions.open(req('live/a', 'shared')),
    sessions.open(req('live/a', 'shared')),
  ]);
  assert.ok(x.allow && y.allow);
  const slow = await sessions.open(req('live/a', 'slow'));
  assert.ok(!slow.allow && slow.reason === 'failed_to_open_session');
  const hls1 = await sessions.open(req('live/a', 'goodhls', 'hls'));
  const hls2 = await sessions.open(req('live/a', 'goodhls', 'hls'));
  assert.ok(hls1.allow && hls2.allow && hls1.session === hls2.session);
  await sessions.recheck(ok.session as ManagedSession);
  assert.equal((await s.call('DELETE', `/api/sessions/${ok.session.id}`)).status, 204);
  assert.equal((await s.call('POST', '/api/bans', { body: { session_id: x.session.id } })).status, 201);
  const banned = await sessions.open(req('live/a', 'shared'));
  assert.ok(!banned.allow && banned.reason === 'banned');
  countLimitHit('max_connections');
  // The slow backend's answer arrives after the deadline: wait until it has been measured.
  const be = { backend: backend.url, request_type: 'new_session' };
  let text = await metrics();
  for (
    let i = 0;
    i < 100 && sample(text, 'streamgate_auth_backend_request_duration_seconds_count', be) !== 5;
    i++
  ) {
    await new Promise((r) => setTimeout(r, 50));
    text = await metrics();
  }
  for (const f of FAMILIES) assert.match(text, new RegExp(`^# TYPE ${f} `, 'm'), `family ${f}`);
  const d = (reason: string, result = 'deny') =>
    sample(text, 'streamgate_auth_decisions_total', { kind: 'play', result, reason });
  assert.equal(d('allow', 'allow'), 6);
  assert.equal(d('backend_denied'), 1);
  assert.equal(d('cached_negative'), 1);
  assert.equal(d('failed_to_open_session'), 1);
  assert.equal(d('banned'), 1);
  assert.equal(sample(text, 'streamgate_auth_cache_hits_total', { cache: 'denial' }), 1);
  assert.equal(sample(text, 'streamgate_auth_cache_hits_total', { cache: 'ban' }), 1);
  assert.equal(sample(text, 'streamgate_auth_cache_hits_total', { cache: 'session' }), 1);
  assert.equal(sample(text, 'streamgate_auth_singleflight_coalesced_total'), 1);
  assert.equal(sample(text, 'streamgate_auth_backend_requests_total', { ...be, outcome: 'allow' }), 3);
  assert.equal(sample(text, 'streamgate_auth_backend_requests_total', { ...be, outcome: 'deny' }), 1);
  assert.equal(sample(text, 'streamgate_auth_backend_requests_total', { ...be, outcome: 'timeout' }), 1);
  assert.equal(sample(text, 'streamgate_auth_backend_request_duration_seconds_count', be), 5);
  assert.ok(
    (sample(text, 'streamgate_auth_backend_request_duration_seconds_bucket', { ...be, le: '+Inf' }) ?? 0) >=
      5,
  );
  assert.equal(sample(text, 'streamgate_auth_rechecks_total', { outcome: 'allow' }), 1);
  assert.equal(sample(text, 'streamgate_session_kicks_total', { cause: 'kicked' }), 2);
  assert.equal(sample(text, 'streamgate_sessions_opened_total', { proto: 'rtmp', kind: 'play' }), 4);
  assert.equal(sample(text, 'streamgate_sessions_opened_total', { proto: 'hls', kind: 'play' }), 1);
  assert.equal(sample(text, 'streamgate_sessions_closed_total', { proto: 'rtmp', reason: 'kicked' }), 2);
  assert.equal(sample(text, 'streamgate_sessions', { proto: 'rtmp', kind: 'play' }), 2);
  assert.equal(sample(text, 'streamgate_stream_viewers', { stream: 'live/a', proto: 'hls' }), 1);
  assert.ok((sample(text, 'streamgate_limit_hits_total', { limit: 'max_connections' }) ?? 0) >= 1);
  assert.equal(sample(text, 'streamgate_denial_cache_entries', { kind: 'ban' }), 1);
  assert.ok((sample(text, 'streamgate_http_connections') ?? 0) >= 1);
  assert.ok((sample(text, 'streamgate_open_sockets') ?? 0) >= 2);
  assert.ok((sample(text, 'process_resident_memory_bytes') ?? 0) > 10_000_000);
  assert.ok((sample(text, 'nodejs_eventloop_lag_seconds') ?? -1) >= 0);
  // The sample Grafana dashboard only queries families this server exports.
  const dashboard = readFileSync(new URL('../../../samples/grafana-dashboard.json', import.meta.url), 'utf8');
  const used = new Set(
    [...dashboard.matchAll(/\b((?:streamgate|nodejs|process)_[a-z0-9_]+)/g)].map((m) =>
      (m[1] ?? '').replace(/_(bucket|count|sum)$/, ''),
    ),
  );
  assert.ok(used.size >= 25, `dashboard uses ${used.size} families`);
  for (const f of used) {
    const exported = new RegExp(`^# TYPE ${f} `, 'm').test(text) || f.startsWith('streamgate_events_');
    assert.ok(exported, `the dashboard queries ${f}, which /metrics does not export`);
  }
  assert.ok(JSON.parse(dashboard).panels.length >= 20);
  // No backend URL query (it may carry secrets) and no token ever reaches a label.
  assert.doesNotMatch(text, /good1|goodhls|token=/);
});

test('stream families: bytes in and out, frames, keyframe interval, input state, publishers', async (t) => {
  const s = await startRunning(t, 'stream demo { input publish://; }');
  const sessions = s.server.core.sessions as Sessions;
  const stream = s.server.core.registry.resolve('demo');
  assert.ok(stream);
  const pub = await sessions.open({ ...req('demo', 'p'), kind: 'publish' });
  assert.ok(pub.allow);
  const publisher = stream.claimPublisher();
  assert.ok(publisher);
  stream.bus.startSource({
    video: { kind: 'video', codec: 'h264', config: Buffer.alloc(8), width: 320, height: 240 },
  });
  for (const dts of [0, 3000, 180_000]) {
    stream.bus.push({ kind: 'video', dts, pts: dts, keyframe: dts !== 3000, data: Buffer.alloc(100) });
  }
  pub.session.addBytes(300);
  const viewer = await sessions.open(req('demo', 'v'));
  assert.ok(viewer.allow);
  viewer.session.addBytes(1000);
  viewer.session.close('client_closed');
  const again = await sessions.open(req('demo', 'w'));
  assert.ok(again.allow);
  again.session.addBytes(500);

  const text = (await s.call('GET', '/metrics')).text;
  assert.equal(sample(text, 'streamgate_stream_bytes_in_total', { stream: 'demo' }), 300);
  assert.equal(sample(text, 'streamgate_frames_in_total', { stream: 'demo' }), 3);
  assert.equal(sample(text, 'streamgate_stream_keyframe_interval_seconds', { stream: 'demo' }), 2);
  assert.equal(sample(text, 'streamgate_stream_input_state', { stream: 'demo', state: 'publishing' }), 1);
  assert.equal(sample(text, 'streamgate_stream_input_restarts_total', { stream: 'demo' }), 0);
  // Closed sessions' bytes stay in the counter: it never goes down when a viewer leaves.
  assert.equal(sample(text, 'streamgate_stream_bytes_out_total', { stream: 'demo', proto: 'rtmp' }), 1500);
  assert.equal(sample(text, 'streamgate_stream_publish_bytes_total', { stream: 'demo', proto: 'rtmp' }), 300);
  assert.equal(sample(text, 'streamgate_stream_publishers', { stream: 'demo', proto: 'rtmp' }), 1);
  assert.equal(sample(text, 'streamgate_stream_viewers', { stream: 'demo', proto: 'rtmp' }), 1);
  assert.equal(sample(text, 'streamgate_streams'), 1);
  publisher.release();
});

test('template streams beyond the label cap are summed into stream="_other"; static ones always labelled', async () => {
  const fakeStream = (name: string, bytesIn: number): Stream =>
    ({
      name,
      inputState: 'publishing',
      inputRestarts: 0,
      bus: { bytesIn, framesIn: 1, keyframeInterval: 0, droppedByEgress: () => [['hls', 2]] },
    }) as unknown as Stream;
  let streams = [
    fakeStream('static1', 1),
    fakeStream('live/a', 10),
    fakeStream('live/b', 20),
    fakeStream('live/c', 40),
  ];
  const m = new Metrics({
    config: () => ({ streams: [{ name: 'static1' }] }) as never,
    streams: () => streams,
    sessions: () => [],
    cacheStats: () =>
      ({
        denialCache: { entries: 0, bans: 0, bytes: 0, evictions: 0, limitBytes: 0 },
        rateLimitBuckets: 0,
      }) as never,
    streamLabels: 2,
  });
  let text = await m.text();
  assert.equal(sample(text, 'streamgate_stream_bytes_in_total', { stream: 'static1' }), 1);
  assert.equal(sample(text, 'streamgate_stream_bytes_in_total', { stream: 'live/a' }), 10);
  assert.equal(sample(text, 'streamgate_stream_bytes_in_total', { stream: 'live/b' }), 20);
  assert.equal(sample(text, 'streamgate_stream_bytes_in_total', { stream: 'live/c' }), undefined);
  assert.equal(sample(text, 'streamgate_stream_bytes_in_total', { stream: OTHER_STREAM }), 40);
  assert.equal(
    sample(text, 'streamgate_stream_frames_dropped_total', { stream: OTHER_STREAM, proto: 'hls' }),
    2,
  );
  assert.equal(sample(text, 'streamgate_stream_label_sets'), 2);
  // An `_other` stream that goes away keeps its share, so the counter does not go down.
  streams = streams.filter((s) => s.name !== 'live/c');
  await new Promise((r) => setTimeout(r, 600));
  text = await m.text();
  assert.equal(sample(text, 'streamgate_stream_bytes_in_total', { stream: OTHER_STREAM }), 40);
  // A labelled template stream that goes away frees its label set.
  streams = streams.filter((s) => s.name !== 'live/a');
  await new Promise((r) => setTimeout(r, 600));
  text = await m.text();
  assert.equal(sample(text, 'streamgate_stream_label_sets'), 1);
  assert.equal(sample(text, 'streamgate_stream_bytes_in_total', { stream: 'live/a' }), undefined);
});
