/**
 * HlsSegmenter with synthetic frames: where it cuts, what the window keeps, and the exact
 * playlist text players get (golden strings), including discontinuities across a
 * publisher reconnect.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { HlsSegmenter, type Segment } from '../../../../protocols/hls/wire/segmenter.js';
import { renderMediaPlaylist } from '../../../../protocols/hls/wire/playlist.js';
import type { Frame, Tracks } from '../../../../src/media/types.js';
import { AUDIO_ONLY, TRACKS, media, pidAt } from './synthetic.js';

function feed(seg: HlsSegmenter, frames: Frame[]): Segment[] {
  const out: Segment[] = [];
  for (const f of frames) {
    const s = seg.push(f);
    if (s) out.push(s);
  }
  return out;
}

function playlist(seg: HlsSegmenter, query = 'token=T'): string {
  return renderMediaPlaylist({
    segments: seg.segments,
    mediaSequence: seg.mediaSequence,
    discontinuitySequence: seg.discontinuitySequence,
    targetDuration: seg.targetDuration ?? 0,
    query,
  });
}

/** 2026-01-01T00:00:00Z: the wall clock the golden PROGRAM-DATE-TIME lines start from. */
const WALL = Date.UTC(2026, 0, 1);
const pdt = (seconds: number): string =>
  `#EXT-X-PROGRAM-DATE-TIME:${new Date(WALL + seconds * 1000).toISOString()}`;

test('hls segmenter: cuts at the first keyframe at or after the target duration', () => {
  const seg = new HlsSegmenter({ targetDuration: 2, windowSize: 6, firstSequence: 0 });
  seg.setTracks(TRACKS);
  const closed = feed(seg, media(10.5, { gop: 25 }));
  assert.deepEqual(
    closed.map((s) => [s.seq, s.duration, s.startDts]),
    [
      [0, 2, 0],
      [1, 2, 180000],
      [2, 2, 360000],
      [3, 2, 540000],
      [4, 2, 720000],
    ],
  );
  for (const s of closed) {
    assert.equal(s.data.length % 188, 0, 'whole TS packets');
    assert.equal(pidAt(s.data, 0), 0, 'PAT first');
    assert.equal(pidAt(s.data, 188), 0x1000, 'PMT second');
    assert.equal(s.independent, true);
    assert.equal(s.discontinuity, false);
  }
});

test('hls segmenter: a 1.52 s GOP with a 2 s target gives 3.04 s segments', () => {
  const seg = new HlsSegmenter({ targetDuration: 2, firstSequence: 0 });
  seg.setTracks(TRACKS);
  // keyframes every 38 frames = 1.52 s: cuts at 3.04, 6.08 and 9.12 s
  const closed = feed(seg, media(9.5, { gop: 38 }));
  assert.deepEqual(
    closed.map((s) => s.duration),
    [3.04, 3.04, 3.04],
  );
});

test('hls segmenter: frames before the first keyframe are dropped', () => {
  const seg = new HlsSegmenter({ targetDuration: 2, firstSequence: 0 });
  seg.setTracks(TRACKS);
  // Joining mid-GOP: the first keyframe is video frame 10 (0.4 s).
  const closed = feed(seg, media(3, { gop: 25, firstIndex: 15 }));
  assert.equal(closed.length, 1);
  assert.equal(closed[0]?.startDts, 10 * 3600);
  assert.equal(closed[0]?.duration, 2);
});

test('hls segmenter: sliding window and golden media playlist', () => {
  const seg = new HlsSegmenter({
    targetDuration: 2,
    windowSize: 3,
    firstSequence: 100,
    wallClock: () => WALL,
  });
  seg.setTracks(TRACKS);
  feed(seg, media(10.5));
  assert.deepEqual(
    seg.segments.map((s) => s.seq),
    [102, 103, 104],
  );
  assert.equal(seg.segment(101), undefined, 'slid out');
  assert.equal(seg.segment(105), undefined, 'not yet cut');
  assert.equal(seg.segment(103)?.seq, 103);
  assert.equal(
    playlist(seg),
    [
      '#EXTM3U',
      '#EXT-X-VERSION:3',
      '#EXT-X-TARGETDURATION:2',
      '#EXT-X-MEDIA-SEQUENCE:102',
      pdt(4),
      '#EXTINF:2.000,',
      'mono-102.ts?token=T',
      pdt(6),
      '#EXTINF:2.000,',
      'mono-103.ts?token=T',
      pdt(8),
      '#EXTINF:2.000,',
      'mono-104.ts?token=T',
      '',
    ].join('\n'),
  );
});

test('hls segmenter: the first segment fixes the target: the configured duration rounded up to whole GOPs', () => {
  const seg = new HlsSegmenter({ targetDuration: 2, windowSize: 6, firstSequence: 0 });
  seg.setTracks(TRACKS);
  assert.equal(seg.targetDuration, undefined, 'no target before the first segment');
  feed(seg, media(7, { gop: 60 })); // 2.4 s GOP → 2.4 s segments
  assert.equal(seg.segments[0]?.duration, 2.4);
  assert.equal(seg.targetDuration, 3);
  assert.match(playlist(seg), /^#EXT-X-TARGETDURATION:3$/m);
  assert.match(playlist(seg), /^#EXTINF:2\.400,$/m);
  assert.equal(seg.keyframeInterval, 2.4);
});

test('hls segmenter: OBS Simple mode (a keyframe every 250 frames) gives a 10 s target and 10 s segments', () => {
  const seg = new HlsSegmenter({ targetDuration: 2, windowSize: 6, firstSequence: 0 });
  seg.setTracks(TRACKS);
  const closed = feed(seg, media(31, { gop: 250 }));
  assert.deepEqual(
    closed.map((s) => [s.duration, s.independent]),
    [
      [10, true],
      [10, true],
      [10, true],
    ],
  );
  assert.equal(seg.targetDuration, 10);
});

test('hls segmenter: EXT-X-TARGETDURATION never changes when a longer GOP appears; segments are cut to fit it', () => {
  const seg = new HlsSegmenter({ targetDuration: 2, windowSize: 20, firstSequence: 0 });
  seg.setTracks(TRACKS);
  feed(seg, media(6, { gop: 50 })); // 2 s GOP: cut at 2 and 4 s
  assert.equal(seg.targetDuration, 2);
  const targets = new Set<string>();
  // The encoder switches to a 10 s keyframe interval (same parameters, same timeline).
  for (const f of media(20.5, { gop: 250, startDts: 6 * 90000 })) {
    seg.push(f);
    targets.add(/#EXT-X-TARGETDURATION:(\d+)/.exec(playlist(seg))?.[1] ?? '');
  }
  assert.deepEqual([...targets], ['2'], 'one target for the playlist’s whole life');
  for (const s of seg.segments) {
    assert.ok(Math.round(s.duration) <= 2, `EXTINF ${s.duration} rounds within the target`);
    assert.equal(s.discontinuity, false, 'same encoding, same timeline: no discontinuity');
  }
  const forced = seg.segments.filter((s) => !s.independent);
  assert.ok(forced.length >= 6, `forced cuts between the 10 s keyframes (${forced.length})`);
  assert.ok(
    forced.every((s) => s.data.length % 188 === 0 && pidAt(s.data, 0) === 0),
    'each starts with PAT',
  );
  // Keyframes still start segments of their own.
  assert.ok(seg.segments.some((s) => s.independent && s.startDts === 16 * 90000));
});

test('hls segmenter: the target is chosen afresh only for a new playlist (after reset)', () => {
  const seg = new HlsSegmenter({ targetDuration: 2, firstSequence: 0 });
  seg.setTracks(TRACKS);
  feed(seg, media(4.5, { gop: 50 }));
  assert.equal(seg.targetDuration, 2);
  seg.reset();
  assert.equal(seg.targetDuration, undefined);
  feed(seg, media(12.5, { gop: 125, startDts: 10 * 90000 }));
  assert.equal(seg.targetDuration, 5);
});

test('hls segmenter: PROGRAM-DATE-TIME follows media time and re-anchors to the wall clock at a discontinuity', () => {
  let wall = WALL;
  const seg = new HlsSegmenter({ targetDuration: 2, firstSequence: 0, wallClock: () => wall });
  seg.setTracks(TRACKS);
  feed(seg, media(4.5));
  // The publisher goes away for a minute and comes back; the bus rebases its timestamps.
  seg.flush();
  wall += 65_000;
  seg.setTracks(TRACKS, true);
  feed(seg, media(4.5, { startDts: 4.5 * 90000 + 3000 }));
  assert.deepEqual(
    seg.segments.map((s) => [s.discontinuity, new Date(s.programDateTime).toISOString()]),
    [
      [false, '2026-01-01T00:00:00.000Z'],
      [false, '2026-01-01T00:00:02.000Z'],
      [false, '2026-01-01T00:00:04.000Z'],
      [true, '2026-01-01T00:01:05.000Z'],
      [false, '2026-01-01T00:01:07.000Z'],
    ],
  );
  assert.match(
    playlist(seg),
    /#EXT-X-DISCONTINUITY\n#EXT-X-PROGRAM-DATE-TIME:2026-01-01T00:01:05.000Z\n#EXTINF/,
  );
});

test('hls segmenter: every cut is reported with its bytes, duration and wall-clock start', () => {
  const cuts: Segment[] = [];
  const seg = new HlsSegmenter({
    targetDuration: 2,
    firstSequence: 5,
    wallClock: () => WALL,
    onSegment: (s) => cuts.push(s),
  });
  seg.setTracks(TRACKS);
  const returned = feed(seg, media(6.5));
  assert.deepEqual(cuts, returned);
  assert.deepEqual(
    cuts.map((s) => [s.seq, s.duration, s.programDateTime - WALL, s.data.length > 0]),
    [
      [5, 2, 0, true],
      [6, 2, 2000, true],
      [7, 2, 4000, true],
    ],
  );
});

test('hls segmenter: a publisher reconnect with new parameters is a discontinuity; numbers go on', () => {
  const seg = new HlsSegmenter({ targetDuration: 2, windowSize: 3, firstSequence: 7, wallClock: () => WALL });
  seg.setTracks(TRACKS);
  feed(seg, media(5));
  // Source ends mid-segment (4..5 s): the partial segment is closed and listed, its
  // duration running to the last frame seen (audio at 4.992 s).
  const flushed = seg.flush();
  assert.equal(flushed?.seq, 9);
  // The bus rebases the next source to continue the timeline after a small gap.
  const other: Tracks = {
    ...TRACKS,
    video: { ...TRACKS.video!, config: Buffer.from([1, 0x4d, 0x40, 0x1f, 0xff, 0xe0, 0]) },
  };
  assert.equal(seg.setTracks(other), undefined);
  feed(seg, media(4.5, { startDts: 5 * 90000 }));
  const text = playlist(seg);
  assert.deepEqual(
    seg.segments.map((s) => [s.seq, s.discontinuity]),
    [
      [9, false],
      [10, true],
      [11, false],
    ],
  );
  assert.equal(
    text,
    [
      '#EXTM3U',
      '#EXT-X-VERSION:3',
      '#EXT-X-TARGETDURATION:2',
      '#EXT-X-MEDIA-SEQUENCE:9',
      pdt(4),
      '#EXTINF:0.992,',
      'mono-9.ts?token=T',
      '#EXT-X-DISCONTINUITY',
      pdt(0),
      '#EXTINF:2.000,',
      'mono-10.ts?token=T',
      pdt(2),
      '#EXTINF:2.000,',
      'mono-11.ts?token=T',
      '',
    ].join('\n'),
  );
  // Once the discontinuity slides out, EXT-X-DISCONTINUITY-SEQUENCE counts it.
  feed(seg, media(4.5, { startDts: 9.5 * 90000, firstIndex: 0 }));
  assert.equal(seg.discontinuitySequence, 1);
  assert.match(playlist(seg), /^#EXT-X-DISCONTINUITY-SEQUENCE:1$/m);
  assert.ok(!playlist(seg).includes('#EXT-X-DISCONTINUITY\n'));
});

test('hls segmenter: the same parameters resent by the same source continue without a discontinuity', () => {
  const seg = new HlsSegmenter({ targetDuration: 2, firstSequence: 0 });
  seg.setTracks(TRACKS);
  feed(seg, media(4.5));
  assert.equal(seg.setTracks({ ...TRACKS }), undefined);
  feed(seg, media(4.5, { startDts: 4.5 * 90000, firstIndex: 0 }));
  assert.ok(seg.segments.every((s) => !s.discontinuity));
});

test('hls segmenter: a publisher restart with the same parameters is a new encoding sequence: a discontinuity', () => {
  const seg = new HlsSegmenter({ targetDuration: 2, firstSequence: 0 });
  seg.setTracks(TRACKS);
  feed(seg, media(4.5));
  const closed = seg.setTracks({ ...TRACKS }, true);
  assert.equal(closed?.seq, 2, 'the partial segment of the old publisher is closed');
  feed(seg, media(4.5, { startDts: 4.5 * 90000 + 3000, firstIndex: 0 }));
  assert.deepEqual(
    seg.segments.map((s) => s.discontinuity),
    [false, false, false, true, false],
  );
});

test('hls segmenter: a timestamp jump starts a new timeline', () => {
  const seg = new HlsSegmenter({ targetDuration: 2, firstSequence: 0 });
  seg.setTracks(TRACKS);
  feed(seg, media(4.5));
  feed(seg, media(4.5, { startDts: 3600 * 90000 }));
  // 0–2, 2–4, the partial 4–4.5 closed by the jump, then the new timeline's two segments.
  const flags = seg.segments.map((s) => s.discontinuity);
  assert.deepEqual(flags, [false, false, false, true, false]);
});

test('hls segmenter: audio-only streams cut on any audio frame', () => {
  const seg = new HlsSegmenter({ targetDuration: 2, firstSequence: 0 });
  seg.setTracks(AUDIO_ONLY);
  const closed = feed(seg, media(6.5, { video: false }));
  assert.equal(closed.length, 3);
  for (const s of closed) {
    assert.ok(s.duration >= 2 && s.duration < 2.03, `duration ${s.duration}`);
    assert.equal(pidAt(s.data, 0), 0, 'PAT first');
  }
});

test('hls segmenter: reset forgets the window but never reuses a sequence number', () => {
  const seg = new HlsSegmenter({ targetDuration: 2, firstSequence: 0 });
  seg.setTracks(TRACKS);
  feed(seg, media(6.5));
  seg.reset();
  assert.equal(seg.segments.length, 0);
  assert.equal(seg.mediaSequence, 3);
  feed(seg, media(4.5, { startDts: 6.5 * 90000, firstIndex: 0 }));
  assert.deepEqual(
    seg.segments.map((s) => [s.seq, s.discontinuity]),
    [
      [3, true],
      [4, false],
    ],
  );
});

test('hls segmenter: fMP4 from the next segment after it is asked for; EXT-X-MAP names each run’s init', () => {
  const seg = new HlsSegmenter({ targetDuration: 2, firstSequence: 0, wallClock: () => WALL });
  seg.setTracks(TRACKS);
  feed(seg, media(3));
  seg.enableFmp4(); // mid-segment: the open one (2–4 s) stays TS-only
  feed(seg, media(3, { startDts: 3 * 90000, firstIndex: 75 }));
  const other: Tracks = { ...TRACKS, video: { ...TRACKS.video!, width: 640, height: 480 } };
  seg.setTracks(other); // a resolution change: new init, discontinuity
  feed(seg, media(4.5, { startDts: 6 * 90000 }));
  assert.deepEqual(
    seg.segments.map((s) => [s.seq, s.fmp4 !== undefined, s.initId, s.discontinuity]),
    [
      [0, false, 1, false],
      [1, false, 1, false],
      [2, true, 1, false],
      [3, true, 2, true],
      [4, true, 2, false],
    ],
  );
  assert.ok(seg.initSegment(1) && seg.initSegment(2));
  const text = renderMediaPlaylist({
    segments: seg.segments,
    mediaSequence: seg.mediaSequence,
    discontinuitySequence: seg.discontinuitySequence,
    targetDuration: seg.targetDuration ?? 0,
    query: 'token=T',
    container: 'fmp4',
  });
  assert.equal(
    text,
    [
      '#EXTM3U',
      '#EXT-X-VERSION:7',
      '#EXT-X-TARGETDURATION:2',
      '#EXT-X-MEDIA-SEQUENCE:2',
      '#EXT-X-MAP:URI="init-1.mp4?token=T"',
      pdt(4),
      '#EXTINF:1.995,', // closed by the track change at the last frame seen
      'mono-2.m4s?token=T',
      '#EXT-X-DISCONTINUITY',
      '#EXT-X-MAP:URI="init-2.mp4?token=T"',
      pdt(0),
      '#EXTINF:2.000,',
      'mono-3.m4s?token=T',
      pdt(2),
      '#EXTINF:2.000,',
      'mono-4.m4s?token=T',
      '',
    ].join('\n'),
  );
});
