/**
 * Playlist rendering: golden master playlist, and the AUTH-SPEC §3.4 rule that every URI
 * in every playlist carries the session token (the client's, or the generated one).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  childQuery,
  codecsOf,
  hevcCodecString,
  initName,
  parseInitName,
  parseSegmentName,
  peakBandwidth,
  renderMasterPlaylist,
  renderMediaPlaylist,
  segmentName,
  withQuery,
} from '../../../../protocols/hls/wire/playlist.js';
import { HlsSegmenter } from '../../../../protocols/hls/wire/segmenter.js';
import { AUDIO_ONLY, TRACKS, media } from './synthetic.js';

function uris(text: string): string[] {
  return text.split('\n').filter((l) => l !== '' && !l.startsWith('#'));
}

function window(): HlsSegmenter {
  const seg = new HlsSegmenter({ targetDuration: 2, windowSize: 6, firstSequence: 40 });
  seg.setTracks(TRACKS);
  for (const f of media(9)) seg.push(f);
  seg.flush();
  for (const f of media(5, { startDts: 9 * 90000 + 3000 })) seg.push(f);
  return seg;
}

test('hls playlist: golden master playlist with BANDWIDTH, CODECS and RESOLUTION', () => {
  const text = renderMasterPlaylist({ tracks: TRACKS, bandwidth: 812345.6, query: 'token=abc' });
  assert.equal(
    text,
    [
      '#EXTM3U',
      '#EXT-X-VERSION:3',
      '#EXT-X-STREAM-INF:BANDWIDTH=812346,CODECS="avc1.42c01e,mp4a.40.2",RESOLUTION=320x240',
      'mono.m3u8?token=abc',
      '',
    ].join('\n'),
  );
  assert.match(
    renderMasterPlaylist({ tracks: AUDIO_ONLY, bandwidth: 0, query: 'token=a' }),
    /BANDWIDTH=1,CODECS="mp4a\.40\.2"\n/,
  );
});

test('hls playlist: every URI in the master and media playlists carries token=<session token>', () => {
  const seg = window();
  for (const token of ['client-token', 'AUTO_generated-tok3n']) {
    const query = childQuery(new URLSearchParams('token=old&user=7'), token);
    const master = renderMasterPlaylist({ tracks: TRACKS, bandwidth: 1, query });
    const mono = renderMediaPlaylist({
      segments: seg.segments,
      mediaSequence: seg.mediaSequence,
      discontinuitySequence: seg.discontinuitySequence,
      targetDuration: 2,
      query,
    });
    const all = [...uris(master), ...uris(mono)];
    assert.equal(all.length, 1 + seg.segments.length);
    for (const uri of all) {
      const q = new URL(uri, 'http://h/live/cam1/index.m3u8').searchParams;
      assert.deepEqual(q.getAll('token'), [token], uri);
      assert.equal(q.get('user'), '7', 'other query parameters are kept (query session keys)');
    }
  }
});

test('hls playlist: a client without a token gets the generated one on every URI', () => {
  const query = childQuery(new URLSearchParams(''), 'gen123');
  assert.equal(query, 'token=gen123');
  assert.equal(withQuery('mono.m3u8', query), 'mono.m3u8?token=gen123');
  assert.equal(withQuery('a.ts?x=1', query), 'a.ts?x=1&token=gen123');
  assert.equal(childQuery(new URLSearchParams('token=a%2Bb'), 'a+b/='), 'token=a%2Bb%2F%3D');
});

test('hls playlist: segment names round-trip and reject anything else', () => {
  assert.equal(segmentName(1234), 'mono-1234.ts');
  assert.equal(segmentName(1234, 'fmp4'), 'mono-1234.m4s');
  assert.deepEqual(parseSegmentName('mono-1234.ts'), { seq: 1234, container: 'ts' });
  assert.deepEqual(parseSegmentName('mono-1234.m4s'), { seq: 1234, container: 'fmp4' });
  for (const bad of ['mono-.ts', 'mono-1.ts.ts', 'x-1.ts', 'mono-1a.ts', 'mono--1.ts', 'mono-1.mp4']) {
    assert.equal(parseSegmentName(bad), undefined, bad);
  }
  assert.equal(initName(3), 'init-3.mp4');
  assert.equal(parseInitName('init-3.mp4'), 3);
  for (const bad of ['init-.mp4', 'init-3.m4s', 'init--3.mp4', 'init-1234567890.mp4']) {
    assert.equal(parseInitName(bad), undefined, bad);
  }
});

test('hls playlist: peak bandwidth and codec strings', () => {
  const seg = window();
  const peak = peakBandwidth(seg.segments);
  assert.ok(peak > 0);
  assert.equal(peakBandwidth([]), 0);
  assert.deepEqual(codecsOf(TRACKS), ['avc1.42c01e', 'mp4a.40.2']);
  // Main profile, compat flags 0x60000000, level 93, constraints 0xb0: the example of 14496-15 Annex E.
  const hvcc = Buffer.from([1, 0x01, 0x60, 0, 0, 0, 0xb0, 0, 0, 0, 0, 0, 93]);
  assert.equal(hevcCodecString(hvcc), 'hvc1.1.6.L93.B0');
});
