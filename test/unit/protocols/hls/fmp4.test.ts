/**
 * The fMP4/CMAF muxer (src/media/fmp4.ts) box by box: the init segment's sample entries for
 * H.264, H.265, AAC and Opus, and a media segment whose trun offsets land on the sample
 * bytes in mdat. Real players read its output in test/e2e/hls.test.ts (ffprobe, ffmpeg,
 * hls.js).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  AUDIO_TRACK_ID,
  VIDEO_TRACK_ID,
  initSegment,
  mediaSegment,
  topLevelBoxes,
} from '../../../../src/media/fmp4.js';
import type { Frame, Tracks } from '../../../../src/media/types.js';
import { TRACKS, media } from './synthetic.js';

/** Children of the box at `offset` (its payload starts after `skip` bytes of fields). */
function children(buf: Buffer, offset: number, skip = 0): { type: string; size: number; offset: number }[] {
  const size = buf.readUInt32BE(offset);
  const inner = buf.subarray(offset + 8 + skip, offset + size);
  return topLevelBoxes(inner).map((b) => ({ ...b, offset: b.offset + offset + 8 + skip }));
}

/** Depth-first path lookup, e.g. find(buf, ['moov', 'trak', 'mdia']) → every match. */
function find(buf: Buffer, path: string[]): { type: string; size: number; offset: number }[] {
  const containers: Record<string, number> = {
    moov: 0,
    trak: 0,
    mdia: 0,
    minf: 0,
    stbl: 0,
    mvex: 0,
    moof: 0,
    traf: 0,
    stsd: 8,
    dinf: 0,
  };
  let level = topLevelBoxes(buf);
  for (let i = 0; i < path.length; i++) {
    const matches = level.filter((b) => b.type === path[i]);
    if (i === path.length - 1) return matches;
    level = matches.flatMap((b) => children(buf, b.offset, containers[b.type] ?? 0));
  }
  return [];
}

const HVCC = Buffer.from('0101600000009000000000005df000fcfdf8f800000f03', 'hex');

test('fmp4 init: ftyp + moov with avc1/avcC and mp4a/esds, one trex per track', () => {
  const init = initSegment(TRACKS);
  assert.deepEqual(
    topLevelBoxes(init).map((b) => b.type),
    ['ftyp', 'moov'],
  );
  assert.equal(init.toString('latin1', 8, 12), 'iso6');
  assert.equal(find(init, ['moov', 'trak']).length, 2);
  const entries = find(init, ['moov', 'trak', 'mdia', 'minf', 'stbl', 'stsd']).flatMap((b) =>
    children(init, b.offset, 8),
  );
  assert.deepEqual(
    entries.map((e) => e.type),
    ['avc1', 'mp4a'],
  );
  const avc1 = entries[0]!;
  assert.equal(init.readUInt16BE(avc1.offset + 8 + 24), 320, 'width');
  assert.equal(init.readUInt16BE(avc1.offset + 8 + 26), 240, 'height');
  const avcC = children(init, avc1.offset, 78).find((b) => b.type === 'avcC')!;
  assert.deepEqual(init.subarray(avcC.offset + 8, avcC.offset + avcC.size), TRACKS.video!.config);
  const mp4a = entries[1]!;
  assert.equal(init.readUInt16BE(mp4a.offset + 8 + 16), 2, 'channels');
  assert.equal(init.readUInt32BE(mp4a.offset + 8 + 24) >>> 16, 44100, 'sample rate');
  const esds = children(init, mp4a.offset, 28).find((b) => b.type === 'esds')!;
  const body = init.subarray(esds.offset, esds.offset + esds.size);
  assert.ok(body.includes(TRACKS.audio!.config), 'the AudioSpecificConfig is in the esds');
  const trex = find(init, ['moov', 'mvex', 'trex']);
  assert.deepEqual(
    trex.map((b) => init.readUInt32BE(b.offset + 12)),
    [VIDEO_TRACK_ID, AUDIO_TRACK_ID],
  );
  // mdhd timescales: 90 kHz video, the sample rate for audio.
  assert.deepEqual(
    find(init, ['moov', 'trak', 'mdia', 'mdhd']).map((b) => init.readUInt32BE(b.offset + 20)),
    [90000, 44100],
  );
});

test('fmp4 init: H.265 gets hvc1/hvcC, Opus gets Opus/dOps at 48 kHz', () => {
  const tracks: Tracks = {
    video: { kind: 'video', codec: 'h265', config: HVCC, width: 1280, height: 720 },
    audio: { kind: 'audio', codec: 'opus', config: Buffer.alloc(0), sampleRate: 48000, channels: 2 },
  };
  const init = initSegment(tracks);
  const entries = find(init, ['moov', 'trak', 'mdia', 'minf', 'stbl', 'stsd']).flatMap((b) =>
    children(init, b.offset, 8),
  );
  assert.deepEqual(
    entries.map((e) => e.type),
    ['hvc1', 'Opus'],
  );
  const hvcC = children(init, entries[0]!.offset, 78).find((b) => b.type === 'hvcC')!;
  assert.deepEqual(init.subarray(hvcC.offset + 8, hvcC.offset + hvcC.size), HVCC);
  const dOps = children(init, entries[1]!.offset, 28).find((b) => b.type === 'dOps')!;
  assert.equal(init[dOps.offset + 9], 2, 'OutputChannelCount');
  assert.equal(init.readUInt32BE(dOps.offset + 12), 48000, 'InputSampleRate');
  assert.deepEqual(
    find(init, ['moov', 'trak', 'mdia', 'mdhd']).map((b) => init.readUInt32BE(b.offset + 20)),
    [90000, 48000],
  );
});

test('fmp4 media segment: moof + mdat; tfdt, durations, sync flags and data offsets match the frames', () => {
  const frames = media(2, { startDts: 900_000 });
  const seg = mediaSegment(TRACKS, frames, 42, 900_000 + 2 * 90000);
  assert.deepEqual(
    topLevelBoxes(seg).map((b) => b.type),
    ['moof', 'mdat'],
  );
  const mfhd = find(seg, ['moof', 'mfhd'])[0]!;
  assert.equal(seg.readUInt32BE(mfhd.offset + 12), 42, 'sequence number');
  const trafs = find(seg, ['moof', 'traf']);
  assert.equal(trafs.length, 2);
  const moofStart = topLevelBoxes(seg)[0]!.offset;
  for (const [i, traf] of trafs.entries()) {
    const kids = children(seg, traf.offset);
    const tfhd = kids.find((b) => b.type === 'tfhd')!;
    const tfdt = kids.find((b) => b.type === 'tfdt')!;
    const trun = kids.find((b) => b.type === 'trun')!;
    const id = seg.readUInt32BE(tfhd.offset + 12);
    const video = id === VIDEO_TRACK_ID;
    assert.equal(id, i === 0 ? VIDEO_TRACK_ID : AUDIO_TRACK_ID);
    const base = Number(seg.readBigUInt64BE(tfdt.offset + 12));
    assert.equal(base, video ? 900_000 : Math.round((900_000 * 44100) / 90000));
    const own = frames.filter((f) => f.kind === (video ? 'video' : 'audio'));
    const count = seg.readUInt32BE(trun.offset + 12);
    assert.equal(count, own.length);
    let dataAt = moofStart + seg.readUInt32BE(trun.offset + 16);
    let p = trun.offset + 20;
    let total = 0;
    for (const f of own) {
      const duration = seg.readUInt32BE(p);
      const size = seg.readUInt32BE(p + 4);
      const flags = seg.readUInt32BE(p + 8);
      p += video ? 16 : 12;
      total += duration;
      assert.equal(size, f.data.length);
      assert.deepEqual(seg.subarray(dataAt, dataAt + size), f.data, 'the offset lands on the sample');
      dataAt += size;
      assert.equal(flags, !video || f.keyframe ? 0x02000000 : 0x01010000);
    }
    // The track's samples span the segment to the next one's start (no drift).
    assert.equal(total, video ? 2 * 90000 : Math.round(((900_000 + 180_000) * 44100) / 90000) - base);
  }
});

test('fmp4 media segment: a track without frames in this segment is left out', () => {
  const frames: Frame[] = media(1, { audio: false });
  const seg = mediaSegment(TRACKS, frames, 1, 90000);
  assert.equal(find(seg, ['moof', 'traf']).length, 1);
});
