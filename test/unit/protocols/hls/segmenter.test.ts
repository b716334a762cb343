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
    query,
  });
}

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
  const seg = new HlsSegmenter({ targetDuration: 2, windowSize: 3, firstSequence: 100 });
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
      '#EXTINF:2.000,',
      'mono-102.ts?token=T',
      '#EXTINF:2.000,',
      'mono-103.ts?token=T',
      '#EXTINF:2.000,',
      'mono-104.ts?token=T',
      '',
    ].join('\n'),
  );
});

test('hls segmenter: target duration is the ceiling of the longest listed segment', () => {
  const seg = new HlsSegmenter({ targetDuration: 2, windowSize: 6, firstSequence: 0 });
  seg.setTracks(TRACKS);
  feed(seg, media(7, { gop: 60 })); // 2.4 s GOP → 2.4 s segments
  assert.equal(seg.segments[0]?.duration, 2.4);
  assert.match(playlist(seg), /^#EXT-X-TARGETDURATION:3$/m);
  assert.match(playlist(seg), /^#EXTINF:2\.400,$/m);
});

test('hls segmenter: a publisher reconnect with new parameters is a discontinuity; numbers go on', () => {
  const seg = new HlsSegmenter({ targetDuration: 2, windowSize: 3, firstSequence: 7 });
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
      '#EXTINF:0.992,',
      'mono-9.ts?token=T',
      '#EXT-X-DISCONTINUITY',
      '#EXTINF:2.000,',
      'mono-10.ts?token=T',
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

test('hls segmenter: the same parameters after a reconnect continue without a discontinuity', () => {
  const seg = new HlsSegmenter({ targetDuration: 2, firstSequence: 0 });
  seg.setTracks(TRACKS);
  feed(seg, media(4.5));
  assert.equal(seg.setTracks({ ...TRACKS }), undefined);
  feed(seg, media(4.5, { startDts: 4.5 * 90000 + 3000, firstIndex: 0 }));
  assert.ok(seg.segments.every((s) => !s.discontinuity));
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
