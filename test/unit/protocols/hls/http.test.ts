/**
 * The HLS routes end to end in-process: real HTTP on loopback against the real session
 * manager (with a scripted backend) and the stream's bus fed with synthetic frames. A player
 * follows master → media playlist → segment; a denied one gets refusals and not one playlist
 * line or media byte; a killed session's player comes back as a new session, or is refused
 * when the kill was a ban.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHlsAdapter } from '../../../../protocols/hls/index.js';
import { parseConfig } from '../../../../src/config/parse.js';
import { limitHits } from '../../../../src/core/limits.js';
import { topLevelBoxes } from '../../../../src/media/fmp4.js';
import { allow, denyD } from '../../sessions/helpers.js';
import { TRACKS, media, pidAt } from './synthetic.js';
import {
  get,
  isTs,
  nextListener,
  refusal,
  startHttpCore,
  type Fetched,
  type HttpCore,
} from '../http-harness.js';

const NAME = 'live/cam1';
const PLAYLIST_TYPE = 'application/vnd.apple.mpegurl';

/** The URIs a playlist lists (its non-tag lines), resolved against the playlist's own URL. */
function uris(playlistUrl: string, r: Fetched): string[] {
  return r.body
    .toString('utf8')
    .split('\n')
    .filter((l) => l !== '' && !l.startsWith('#'))
    .map((l) => new URL(l, playlistUrl).toString());
}

function assertPlaylist(r: Fetched): void {
  assert.equal(r.status, 200, r.body.toString('utf8'));
  assert.equal(r.headers['content-type'], PLAYLIST_TYPE);
  assert.match(r.body.toString('utf8'), /^#EXTM3U\n/);
}

function assertRefused(r: Fetched, reason?: RegExp): void {
  assert.equal(r.status, 403);
  const text = refusal(r);
  assert.ok(!text.includes('#EXT'), 'no playlist line');
  if (reason) assert.match(text, reason);
}

/** What a player does first: master playlist, then the media playlist it points to. */
async function startPlaying(
  core: HttpCore,
  token: string,
): Promise<{ mediaUrl: string; segmentUrls: string[] }> {
  const masterUrl = core.url(`/${NAME}/index.m3u8?token=${token}`);
  const master = await get(masterUrl);
  assertPlaylist(master);
  const [mediaUrl] = uris(masterUrl, master);
  assert.ok(mediaUrl);
  assert.ok(mediaUrl.includes(`token=${token}`), 'the child URI carries the session token');
  const playlist = await get(mediaUrl);
  assertPlaylist(playlist);
  const segmentUrls = uris(mediaUrl, playlist);
  assert.ok(segmentUrls.length > 0);
  return { mediaUrl, segmentUrls };
}

/**
 * A live stream whose first player is already waiting for its playlist when the media comes:
 * the bus is fed only once the HLS egress listens, as a publisher would go on publishing.
 */
async function liveWithFirstPlayer(core: HttpCore, token: string): Promise<Fetched> {
  const bus = core.bus(NAME);
  bus.startSource(TRACKS);
  const listening = nextListener(bus);
  const master = get(core.url(`/${NAME}/index.m3u8?token=${token}`));
  await listening;
  for (const f of media(7)) bus.push(f);
  return master;
}

test('hls: an allowed player gets the master playlist, the media playlist and TS segments', async (t) => {
  const core = await startHttpCore((c) => createHlsAdapter(c));
  t.after(() => core.stop());
  const first = await liveWithFirstPlayer(core, 'good1');
  assertPlaylist(first);
  assert.match(first.body.toString('utf8'), /#EXT-X-STREAM-INF:.*CODECS=/);

  const { segmentUrls } = await startPlaying(core, 'good1');
  assert.equal(segmentUrls.length, 3, 'segments cut at 2, 4 and 6 s');
  const seg = await get(segmentUrls[0]!);
  assert.equal(seg.status, 200);
  assert.equal(seg.headers['content-type'], 'video/mp2t');
  assert.equal(Number(seg.headers['content-length']), seg.body.length);
  assert.ok(isTs(seg.body));
  assert.equal(pidAt(seg.body, 0), 0, 'a segment starts with the PAT');

  const sessions = core.manager.list({ name: NAME });
  assert.equal(sessions.length, 1, 'every request of the player is one session');
  assert.equal(core.backend.calls.length, 1, 'asked the backend once');
  assert.ok(sessions[0]!.bytes >= seg.body.length);
  assert.equal(core.bus(NAME).viewers, 1);
});

test('hls: a player the backend denies gets 403 for playlists and segments, and nothing else', async (t) => {
  const core = await startHttpCore((c) => createHlsAdapter(c));
  t.after(() => core.stop());
  core.backend.answer = () => denyD();
  const bus = core.bus(NAME);
  bus.startSource(TRACKS);
  for (const f of media(7)) bus.push(f);

  for (const resource of ['index.m3u8', 'mono.m3u8', `mono-${Math.floor(Date.now() / 1000)}.ts`]) {
    const r = await get(core.url(`/${NAME}/${resource}?token=bad`));
    assertRefused(r);
    assert.ok(!isTs(r.body) && r.body.length < 100, `${resource}: no media`);
  }
  assert.equal(bus.listenerCount, 0, 'nothing was segmented for a denied player');
  assert.equal(bus.viewers, 0);
  assert.deepEqual(core.manager.list(), []);
});

test('hls: a kicked session’s player comes back as a new session and finds its window', async (t) => {
  const core = await startHttpCore((c) => createHlsAdapter(c));
  t.after(() => core.stop());
  assertPlaylist(await liveWithFirstPlayer(core, 'good1'));
  const { mediaUrl, segmentUrls } = await startPlaying(core, 'good1');
  const [before] = core.manager.list({ name: NAME });
  assert.ok(before);

  assert.equal(core.manager.kick(before.id), true);
  assert.equal(before.closed, true);
  assert.equal(core.bus(NAME).viewers, 0, 'a closed session is no viewer');

  const again = await get(mediaUrl);
  assertPlaylist(again);
  assert.deepEqual(uris(mediaUrl, again), segmentUrls, 'the same window: segmenting went on');
  const [after] = core.manager.list({ name: NAME });
  assert.ok(after && after.id !== before.id, 'a new session');
  assert.equal(core.backend.calls.length, 2, 'the new session asked the backend');
  assert.equal((await get(segmentUrls[0]!)).status, 200);
  assert.equal(core.bus(NAME).viewers, 1);
});

test('hls: a session banned mid-play gets 403 on its next requests; the winner plays on', async (t) => {
  const core = await startHttpCore((c) => createHlsAdapter(c));
  t.after(() => core.stop());
  // X-Unique: the newest session of a user wins and the older ones are banned.
  core.backend.answer = () => allow({ userId: 'u1', unique: true });
  assertPlaylist(await liveWithFirstPlayer(core, 'good-a'));
  const a = await startPlaying(core, 'good-a');
  const b = await startPlaying(core, 'good-b');

  assertRefused(await get(a.mediaUrl), /banned/);
  const segment = await get(a.segmentUrls[0]!);
  assertRefused(segment, /banned/);
  assert.ok(!isTs(segment.body));
  assertPlaylist(await get(b.mediaUrl));
  assert.equal((await get(b.segmentUrls[0]!)).status, 200);
  assert.deepEqual(
    core.manager.list({ name: NAME }).map((s) => s.token),
    ['good-b'],
  );
  assert.equal(core.bus(NAME).viewers, 1);
});

/** Settles within `ms`, or resolves 'pending'. */
async function within<T>(p: Promise<T>, ms: number): Promise<T | 'pending'> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<'pending'>((resolve) => {
    timer = setTimeout(() => resolve('pending'), ms);
  });
  try {
    return await Promise.race([p, late]);
  } finally {
    clearTimeout(timer);
  }
}

test('hls: a playlist request before the first segment is held, and released the moment the segment is cut', async (t) => {
  const core = await startHttpCore((c) => createHlsAdapter(c));
  t.after(() => core.stop());
  const bus = core.bus(NAME);
  bus.startSource(TRACKS);
  const listening = nextListener(bus);
  const pending = get(core.url(`/${NAME}/mono.m3u8?token=early`));
  await listening;
  // OBS Simple mode: a keyframe every 250 frames. Up to just before the second keyframe
  // nothing can be cut, and the player is kept waiting instead of getting a 404.
  const frames = media(10.5, { gop: 250 });
  const secondKey = frames.findIndex((f) => f.kind === 'video' && f.keyframe && f.dts > 0);
  for (const f of frames.slice(0, secondKey)) bus.push(f);
  assert.equal(await within(pending, 200), 'pending', 'held while no segment exists');
  for (const f of frames.slice(secondKey)) bus.push(f);
  const r = await within(pending, 2000);
  assert.notEqual(r, 'pending', 'released by the cut');
  if (r === 'pending') return;
  assertPlaylist(r);
  const text = r.body.toString('utf8');
  assert.match(text, /^#EXT-X-TARGETDURATION:10$/m);
  assert.match(text, /^#EXT-X-PROGRAM-DATE-TIME:\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/m);
  assert.match(text, /^#EXTINF:10\.000,$/m);
});

test('hls: the hold is bounded by hls_playlist_hold: then 503 no_segments_yet with Retry-After', async (t) => {
  const core = await startHttpCore((c) => createHlsAdapter(c), 'limits { hls_playlist_hold 0.3; }');
  t.after(() => core.stop());
  core.bus(NAME).startSource(TRACKS);
  const started = performance.now();
  const r = await get(core.url(`/${NAME}/index.m3u8?token=early`));
  assert.ok(performance.now() - started >= 250, 'waited for the hold');
  assert.equal(r.status, 503);
  assert.equal(refusal(r), '503 no_segments_yet\n');
  assert.equal(r.headers['retry-after'], '1');
});

test('hls: over hls_held_requests the next early request gets 503 hold_limit at once, counted', async (t) => {
  const core = await startHttpCore(
    (c) => createHlsAdapter(c),
    'limits { hls_held_requests 1; hls_playlist_hold 1; }',
  );
  t.after(() => core.stop());
  core.bus(NAME).startSource(TRACKS);
  const before = limitHits().get('hls_held_requests') ?? 0;
  const first = get(core.url(`/${NAME}/mono.m3u8?token=early`));
  await new Promise((r) => setTimeout(r, 100));
  const second = await get(core.url(`/${NAME}/mono.m3u8?token=early`));
  assert.equal(second.status, 503);
  assert.equal(refusal(second), '503 hold_limit\n');
  assert.equal(limitHits().get('hls_held_requests'), before + 1);
  assert.equal((await first).status, 503, 'the held one still ends with its own answer');
});

test('hls: ?container=fmp4 gets a version 7 playlist with EXT-X-MAP, an init segment and moof+mdat segments', async (t) => {
  const core = await startHttpCore((c) => createHlsAdapter(c));
  t.after(() => core.stop());
  const bus = core.bus(NAME);
  bus.startSource(TRACKS);
  const listening = nextListener(bus);
  const masterUrl = core.url(`/${NAME}/index.m3u8?container=fmp4&token=good-f`);
  const pending = get(masterUrl);
  await listening;
  for (const f of media(7)) bus.push(f);
  const master = await pending;
  assertPlaylist(master);
  const mediaUrl = uris(masterUrl, master)[0] ?? '';
  assert.ok(mediaUrl.includes('container=fmp4'), 'the media playlist URI keeps the container');
  const playlist = await get(mediaUrl);
  assertPlaylist(playlist);
  const text = playlist.body.toString('utf8');
  assert.match(text, /^#EXT-X-VERSION:7$/m);
  const map = /^#EXT-X-MAP:URI="([^"]+)"$/m.exec(text)?.[1] ?? '';
  assert.ok(map.startsWith('init-') && map.includes('token=good-f'), text);
  const init = await get(new URL(map, mediaUrl).toString());
  assert.equal(init.status, 200);
  assert.equal(init.headers['content-type'], 'video/mp4');
  assert.deepEqual(
    topLevelBoxes(init.body).map((b) => b.type),
    ['ftyp', 'moov'],
  );
  const segs = uris(mediaUrl, playlist);
  assert.equal(segs.length, 3);
  assert.ok(segs.every((u) => /\/mono-\d+\.m4s\?/.test(u)));
  const seg = await get(segs[0]!);
  assert.equal(seg.headers['content-type'], 'video/mp4');
  assert.deepEqual(
    topLevelBoxes(seg.body).map((b) => b.type),
    ['moof', 'mdat'],
  );
  // The TS playlist of the same stream is still there for other players.
  const ts = await get(core.url(`/${NAME}/mono.m3u8?token=good-f`));
  assert.match(ts.body.toString('utf8'), /^#EXT-X-VERSION:3$/m);
  assert.match(ts.body.toString('utf8'), /mono-\d+\.ts\?/);
  const bad = await get(core.url(`/${NAME}/mono.m3u8?container=mkv&token=good-f`));
  assert.equal(bad.status, 400);
});

test('hls: hls_container fmp4 in a template makes fMP4 the default; ?container=ts still gets TS', async (t) => {
  const core = await startHttpCore(
    (c) => createHlsAdapter(c),
    'template cmaf { prefix cmaf; input publish://; hls_container fmp4; }',
  );
  t.after(() => core.stop());
  const name = 'cmaf/cam';
  const bus = core.bus(name);
  bus.startSource(TRACKS);
  const listening = nextListener(bus);
  const pending = get(core.url(`/${name}/mono.m3u8?token=good-c`));
  await listening;
  for (const f of media(5)) bus.push(f);
  const fmp4 = (await pending).body.toString('utf8');
  assert.match(fmp4, /^#EXT-X-VERSION:7$/m);
  assert.match(fmp4, /^mono-\d+\.m4s\?token=good-c$/m);
  const ts = (await get(core.url(`/${name}/mono.m3u8?container=ts&token=good-c`))).body.toString('utf8');
  assert.match(ts, /^#EXT-X-VERSION:3$/m);
  assert.match(ts, /^mono-\d+\.ts\?container=ts&token=good-c$/m);
});

test('config: hls_container accepts ts or fmp4 and refuses anything else with its position', () => {
  const ok = parseConfig('template a { prefix a; input publish://; hls_container fmp4; }', 'x.conf');
  assert.ok('config' in ok && ok.config.templates[0]?.hlsContainer === 'fmp4');
  const bad = parseConfig('stream a { input fake://fake; hls_container mkv; }', 'x.conf');
  assert.ok('errors' in bad);
  assert.match(JSON.stringify(bad.errors), /hls_container must be ts or fmp4, got 'mkv'/);
});
