/**
 * The DVR's pure parts and its disk store: URL grammar and `media_request`, the
 * `allowed_dvr_ranges` rule, archive playlists (golden text), the cutter's wall-clock times,
 * and the archive's index, retention, restart and disk-failure behaviour on a temp directory.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { DvrArchive, streamDir } from '../../../../protocols/dvr/archive.js';
import { DvrCutter } from '../../../../protocols/dvr/wire/cutter.js';
import { renderArchivePlaylist } from '../../../../protocols/dvr/wire/playlist.js';
import { mediaRequest, parseDvrResource, withinAllowed } from '../../../../protocols/dvr/wire/resources.js';
import { parseDvrRanges } from '../../../../src/auth/backend.js';
import { TsDemuxer } from '../../../../src/media/mpegts/index.js';
import { TRACKS, media } from '../hls/synthetic.js';

const log = pino({ level: 'silent' });
const T = 1_700_000_000; // Unix seconds

test('dvr urls: each archive URL parses, and nothing else does', () => {
  assert.deepEqual(parseDvrResource(`index-${T}-3600.m3u8`), { kind: 'range', from: T, duration: 3600 });
  assert.deepEqual(parseDvrResource(`index-${T}-now.m3u8`), { kind: 'event', from: T });
  assert.deepEqual(parseDvrResource(`timeshift_abs-${T}.m3u8`), { kind: 'timeshift', from: T });
  assert.deepEqual(parseDvrResource(`archive-${T}-60.mp4`), {
    kind: 'export',
    from: T,
    duration: 60,
    container: 'mp4',
  });
  assert.deepEqual(parseDvrResource(`archive-${T}-60.ts`), {
    kind: 'export',
    from: T,
    duration: 60,
    container: 'ts',
  });
  assert.deepEqual(parseDvrResource(`dvr-${T}123.ts`), { kind: 'segment', startMs: T * 1000 + 123 });
  for (const bad of [
    `index-${T}-0.m3u8`,
    `archive-${T}-100000.ts`,
    `archive-${T}-10.mkv`,
    'index.m3u8',
    `index-${T}.m3u8`,
  ]) {
    assert.equal(parseDvrResource(bad), undefined, bad);
  }
});

test('dvr urls: media_request follows the AUTH-SPEC §1.3 table', () => {
  assert.equal(
    mediaRequest({ kind: 'range', from: 1362504585, duration: 3600 }),
    'dvr_session-hls_mbr_playlist-1362504585-3600',
  );
  assert.equal(
    mediaRequest({ kind: 'export', from: 1362504585, duration: 3600, container: 'mp4' }),
    'dvr_handler-mp4-1362504585-3600',
  );
  assert.equal(
    mediaRequest({ kind: 'export', from: 1362504585, duration: 3600, container: 'ts' }),
    'dvr_stream_handler-ts_file-1362504585-3600',
  );
  assert.equal(
    mediaRequest({ kind: 'timeshift', from: 1362504585 }),
    'hls_timeshift_playlist-hls_timeshift_abs-1362504585',
  );
});

test('allowed_dvr_ranges: inside the union is allowed, any part outside is not', () => {
  const ranges = [
    { openedAt: 100, closedAt: 200 },
    { openedAt: 200, closedAt: 300 },
    { openedAt: 400, closedAt: 500 },
  ];
  assert.equal(withinAllowed(100_000, 300_000, ranges), true, 'touching ranges join');
  assert.equal(withinAllowed(150_000, 160_000, ranges), true);
  assert.equal(withinAllowed(250_000, 450_000, ranges), false, 'the gap 300..400 is not allowed');
  assert.equal(withinAllowed(50_000, 150_000, ranges), false);
  assert.equal(withinAllowed(0, 1e12, undefined), true, 'no list: no restriction');
  assert.equal(withinAllowed(100_000, 101_000, []), false, 'an empty list allows nothing');
});

test('allowed_dvr_ranges: malformed entries are dropped, never widened', () => {
  assert.equal(parseDvrRanges(undefined), undefined);
  assert.equal(parseDvrRanges('all'), undefined);
  assert.deepEqual(
    parseDvrRanges([
      { opened_at: 10, closed_at: 20 },
      { opened_at: 'x', closed_at: 5 },
      { opened_at: 30, closed_at: 25 },
      7,
    ]),
    [{ openedAt: 10, closedAt: 20 }],
  );
  assert.deepEqual(parseDvrRanges([{ opened_at: 'x' }]), []);
});

test('archive playlist: VOD text with program date times and a discontinuity at a gap', () => {
  const ms = T * 1000;
  const text = renderArchivePlaylist({
    segments: [
      { startMs: ms, durationMs: 2000 },
      { startMs: ms + 2000, durationMs: 2500 },
      { startMs: ms + 10_000, durationMs: 2000 },
    ],
    type: 'VOD',
    query: '?token=t',
  });
  assert.equal(
    text,
    [
      '#EXTM3U',
      '#EXT-X-VERSION:3',
      '#EXT-X-TARGETDURATION:3',
      '#EXT-X-PLAYLIST-TYPE:VOD',
      '#EXT-X-MEDIA-SEQUENCE:0',
      '#EXT-X-PROGRAM-DATE-TIME:2023-11-14T22:13:20.000Z',
      '#EXTINF:2.000,',
      `dvr-${ms}.ts?token=t`,
      '#EXT-X-PROGRAM-DATE-TIME:2023-11-14T22:13:22.000Z',
      '#EXTINF:2.500,',
      `dvr-${ms + 2000}.ts?token=t`,
      '#EXT-X-DISCONTINUITY',
      '#EXT-X-PROGRAM-DATE-TIME:2023-11-14T22:13:30.000Z',
      '#EXTINF:2.000,',
      `dvr-${ms + 10_000}.ts?token=t`,
      '#EXT-X-ENDLIST',
      '',
    ].join('\n'),
  );
  const live = renderArchivePlaylist({
    segments: [{ startMs: ms, durationMs: 2000 }],
    type: 'live',
    query: '',
    mediaSequence: 7,
  });
  assert.doesNotMatch(live, /ENDLIST|PLAYLIST-TYPE/);
  assert.match(live, /#EXT-X-MEDIA-SEQUENCE:7/);
});

test('dvr cutter: keyframe cuts with wall-clock starts that follow the media clock', () => {
  const cutter = new DvrCutter(2);
  cutter.setTracks(TRACKS);
  const arrived = T * 1000;
  const cut = [];
  for (const f of media(9, { gop: 25 })) {
    // Arrival jitters by up to 300 ms; segment times must not.
    const s = cutter.push(f, arrived + f.dts / 90 + (f.dts % 7) * 40);
    if (s) cut.push(s);
  }
  const last = cutter.flush();
  assert.ok(last);
  assert.deepEqual(
    cut.map((s) => [s.startMs - arrived, s.durationMs]),
    [
      [0, 2000],
      [2000, 2000],
      [4000, 2000],
      [6000, 2000],
    ],
  );
  // Each segment is a self-contained TS: PAT/PMT first, then its frames.
  const demuxer = new TsDemuxer();
  const events = [...demuxer.push(cut[1]?.data ?? Buffer.alloc(0)), ...demuxer.flush()];
  assert.equal(events[0]?.kind, 'tracks');
  const firstFrame = events.find((e) => e.kind === 'frame');
  assert.ok(firstFrame?.kind === 'frame' && firstFrame.frame.keyframe);
});

function archiveIn(dir: string, depthSec?: number, maxBytes?: number): DvrArchive {
  return new DvrArchive(
    'live/cam',
    { root: dir, ...(depthSec ? { depthSec } : {}), ...(maxBytes ? { maxBytes } : {}) },
    log,
  );
}

test('dvr archive: index, ranges, lookup, and the index rebuilt from disk after a restart', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'dvr-unit-'));
  const a = archiveIn(dir);
  const ms = T * 1000;
  for (let i = 0; i < 5; i++) a.write(ms + i * 2000, 2000, Buffer.alloc(1000, i));
  a.write(ms + 20_000, 2000, Buffer.alloc(1000, 9)); // after a gap
  await a.flushed();
  assert.deepEqual(a.ranges(), [
    { fromMs: ms, toMs: ms + 10_000 },
    { fromMs: ms + 20_000, toMs: ms + 22_000 },
  ]);
  assert.deepEqual(
    a.between(ms + 3000, ms + 7000).map((s) => s.startMs - ms),
    [2000, 4000, 6000],
  );
  assert.equal(a.at(ms + 4000)?.bytes, 1000);
  assert.equal(a.at(ms + 4001), undefined);
  assert.deepEqual(readdirSync(streamDir(dir, 'live/cam')), ['2023-11-14']);
  writeFileSync(join(streamDir(dir, 'live/cam'), '2023-11-14', '22', 'half.ts.tmp'), 'crash leftover');

  const again = archiveIn(dir);
  await again.load();
  assert.deepEqual(again.stats(), { ...a.stats() });
  assert.equal(again.between(0, Infinity).length, 6);
  assert.ok(
    !readdirSync(join(streamDir(dir, 'live/cam'), '2023-11-14', '22')).some((f) => f.endsWith('.tmp')),
  );
});

test('dvr archive: retention drops the oldest segments past the depth or the size cap', async () => {
  const ms = T * 1000;
  const byDepth = archiveIn(mkdtempSync(join(tmpdir(), 'dvr-unit-')), 6);
  for (let i = 0; i < 10; i++) {
    byDepth.write(ms + i * 2000, 2000, Buffer.alloc(100));
    await byDepth.flushed();
  }
  assert.deepEqual(
    byDepth.between(0, Infinity).map((s) => (s.startMs - ms) / 1000),
    [14, 16, 18],
  );
  const bySize = archiveIn(mkdtempSync(join(tmpdir(), 'dvr-unit-')), undefined, 2 ** 20);
  for (let i = 0; i < 10; i++) {
    bySize.write(ms + i * 2000, 2000, Buffer.alloc(300 * 1024));
    await bySize.flushed();
  }
  assert.equal(bySize.stats().segments, 3);
  // A disk that cannot keep up drops segments instead of queueing them without bound.
  for (let i = 10; i < 30; i++) bySize.write(ms + i * 2000, 2000, Buffer.alloc(10));
  await bySize.flushed();
  assert.ok(bySize.stats().writeErrors >= 10, `dropped ${bySize.stats().writeErrors}`);
  assert.ok(bySize.stats().bytes <= 2 ** 20);
});

test('dvr archive: a failing disk is counted and reported, and recording resumes when it heals', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'dvr-unit-'));
  const blocker = join(dir, 'file');
  writeFileSync(blocker, 'x');
  const a = new DvrArchive('cam', { root: join(blocker, 'sub') }, log);
  a.write(T * 1000, 2000, Buffer.alloc(10));
  await a.flushed();
  assert.equal(a.stats().writeErrors, 1);
  assert.match(a.stats().lastError?.code ?? '', /ENOTDIR|EEXIST/);
  assert.equal(a.stats().segments, 0);
  // The operator fixes the path: the next segment is written and the error clears.
  rmSync(blocker);
  a.write(T * 1000 + 2000, 2000, Buffer.alloc(10));
  await a.flushed();
  assert.equal(a.stats().writeErrors, 1);
  assert.equal(a.stats().segments, 1);
  assert.equal(a.stats().lastError, undefined);
});
