/**
 * The faststart MP4 header: box layout (ftyp, moov before mdat), sample tables and chunk
 * offsets that point at the bytes that follow; ffprobe reads a file built from it when
 * available.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mp4Header, type Mp4TrackSamples } from '../../../src/media/mp4.js';
import { TRACKS } from '../protocols/hls/synthetic.js';

function boxes(buf: Buffer, start = 0, end = buf.length): { type: string; start: number; size: number }[] {
  const out = [];
  for (let p = start; p + 8 <= end;) {
    const size = buf.readUInt32BE(p);
    out.push({ type: buf.toString('latin1', p + 4, p + 8), start: p, size });
    if (size < 8) break;
    p += size;
  }
  return out;
}

function find(buf: Buffer, path: string[]): { start: number; size: number } {
  let range = { start: 0, size: buf.length };
  let inner = { start: 0, end: buf.length };
  for (const type of path) {
    const b = boxes(buf, inner.start, inner.end).find((x) => x.type === type);
    assert.ok(b, `box ${type}`);
    range = b;
    inner = { start: b.start + 8, end: b.start + b.size };
  }
  return range;
}

test('mp4 header: ftyp, moov, then the mdat header; offsets point into mdat', () => {
  const video: Mp4TrackSamples = {
    track: TRACKS.video!,
    sizes: [100, 50, 60],
    dts: [0, 3600, 7200],
    ctsOffsets: [0, 7200, 0],
    keyframes: [true, false, false],
    offsets: [0, 130, 180],
  };
  const audio: Mp4TrackSamples = {
    track: TRACKS.audio!,
    sizes: [30],
    dts: [0],
    ctsOffsets: [0],
    keyframes: [true],
    offsets: [100],
  };
  const head = mp4Header([video, audio], 240);
  assert.deepEqual(
    boxes(head).map((b) => b.type),
    ['ftyp', 'moov', 'mdat'],
  );
  const mdat = boxes(head).find((b) => b.type === 'mdat');
  assert.equal(mdat?.size, 248);
  assert.equal(mdat?.start, head.length - 8, 'samples follow the header directly');
  const trak = boxes(head, find(head, ['moov']).start + 8).filter((b) => b.type === 'trak');
  assert.equal(trak.length, 2);
  const stco = find(head, ['moov', 'trak', 'mdia', 'minf', 'stbl', 'stco']);
  const count = head.readUInt32BE(stco.start + 12);
  assert.equal(count, 3);
  assert.deepEqual(
    [0, 1, 2].map((i) => head.readUInt32BE(stco.start + 16 + i * 4) - head.length),
    [0, 130, 180],
  );
  const stss = find(head, ['moov', 'trak', 'mdia', 'minf', 'stbl', 'stss']);
  assert.equal(head.readUInt32BE(stss.start + 12), 1, 'one sync sample');
  const ctts = find(head, ['moov', 'trak', 'mdia', 'minf', 'stbl', 'ctts']);
  assert.ok(ctts.size > 16);
  const avcC = find(head, ['moov', 'trak', 'mdia', 'minf', 'stbl', 'stsd']);
  assert.ok(head.subarray(avcC.start, avcC.start + avcC.size).includes(Buffer.from('avcC')));
});
