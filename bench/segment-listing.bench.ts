/**
 * Time from a segment's last frame to the segment being listed in the HLS playlist (issue 9).
 *
 * A segment ends at a keyframe (protocols/hls/wire/segmenter.ts), so it is complete only when
 * the next keyframe arrives: one frame interval after its last frame, a wait every segmenter
 * that cuts at keyframes has (nginx-rtmp's hls module cuts the same way). What the server adds
 * is the work between that keyframe arriving and the segment being in the window that
 * playlists are rendered from (on request, from the window; nothing else is cached): muxing the
 * keyframe, closing the segment's buffer, sliding the window.
 *
 * Measured in-process on the segmenter the HLS egress feeds, with 720p-sized frames (2.5 Mbit/s,
 * 25 fps, a keyframe every 2 s, AAC at 44.1 kHz): for each cut, the time from the completing
 * keyframe's push to the segment being listed, p50 and p99 over `SEGMENTS` cuts. The RTMP
 * read path before the segmenter is the publish-to-viewer bench's subject, not this one's.
 * Rows: ours = µs, peer = one frame interval (the wait the cutting rule imposes on anyone),
 * ratio = ours / interval.
 *
 * Standalone: node --import tsx bench/segment-listing.bench.ts
 */
import { pathToFileURL } from 'node:url';
import { HlsSegmenter } from '../protocols/hls/wire/segmenter.js';
import { renderMediaPlaylist, segmentName } from '../protocols/hls/wire/playlist.js';
import type { Frame, Tracks } from '../src/media/types.js';
import type { BenchRow } from './util.js';

const FPS = 25;
const GOP_FRAMES = 50;
const SEGMENTS = 400;
const VIDEO_TICKS = 90_000 / FPS;
const AUDIO_TICKS = (1024 * 90_000) / 44_100;
const BITRATE = 2_500_000;

const TRACKS: Tracks = {
  // avcC with no parameter sets is enough for the muxer, which copies NAL units through.
  video: {
    kind: 'video',
    codec: 'h264',
    config: Buffer.from([1, 0x42, 0xc0, 0x1e, 0xff, 0xe0, 0x00]),
    width: 1280,
    height: 720,
  },
  audio: {
    kind: 'audio',
    codec: 'aac',
    config: Buffer.from([0x12, 0x10]),
    sampleRate: 44_100,
    channels: 2,
  },
};

function nal(key: boolean, size: number): Buffer {
  const b = Buffer.alloc(4 + size, 0x5a);
  b.writeUInt32BE(size, 0);
  b[4] = key ? 0x65 : 0x41;
  return b;
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] as number;
}

export function runSegmentListingBench(): Promise<BenchRow[]> {
  const seg = new HlsSegmenter({ targetDuration: 2, windowSize: 6 });
  seg.setTracks(TRACKS);
  // A keyframe carries about a fifth of its GOP's bytes, as encoders at this rate produce.
  const gopBytes = (BITRATE / 8) * (GOP_FRAMES / FPS);
  const keyFrame = nal(true, Math.round(gopBytes / 5));
  const deltaFrame = nal(false, Math.round((gopBytes * 4) / 5 / (GOP_FRAMES - 1)));
  const audio = Buffer.alloc(370, 0x21);
  const listedUs: number[] = [];
  let audioDts = 0;
  const frames = (SEGMENTS + 2) * GOP_FRAMES;
  for (let i = 0; i < frames; i++) {
    const dts = i * VIDEO_TICKS;
    while (audioDts <= dts) {
      const a: Frame = { kind: 'audio', dts: audioDts, pts: audioDts, keyframe: true, data: audio };
      seg.push(a);
      audioDts += AUDIO_TICKS;
    }
    const key = i % GOP_FRAMES === 0;
    const v: Frame = { kind: 'video', dts, pts: dts, keyframe: key, data: key ? keyFrame : deltaFrame };
    const t0 = process.hrtime.bigint();
    const closed = seg.push(v);
    const t1 = process.hrtime.bigint();
    if (closed === undefined) continue;
    // Listed: the window the playlist is rendered from holds it.
    if (seg.segments[seg.segments.length - 1] !== closed) throw new Error('closed segment not listed');
    if (i > 2 * GOP_FRAMES) listedUs.push(Number(t1 - t0) / 1000);
  }
  const text = renderMediaPlaylist({
    segments: seg.segments,
    mediaSequence: seg.mediaSequence,
    discontinuitySequence: seg.discontinuitySequence,
    targetDuration: seg.targetDuration ?? 2,
    query: '',
  });
  const last = seg.segments[seg.segments.length - 1];
  if (last === undefined || !text.includes(segmentName(last.seq))) {
    throw new Error('playlist lacks the last segment');
  }
  listedUs.sort((a, b) => a - b);
  const intervalUs = 1e6 / FPS;
  const row = (p: number): BenchRow => {
    const v = percentile(listedUs, p);
    return {
      name: `hls: segment listed after its keyframe p${p} (µs)`,
      ours: v,
      peer: intervalUs,
      ratio: v / intervalUs,
      note:
        `server work from the closing keyframe to the listing, ${listedUs.length} cuts of 2 s 720p 2.5 Mbit/s; ` +
        `peer = one frame interval at ${FPS} fps (the cut waits for the next keyframe), ratio = ours/interval`,
    };
  };
  return Promise.resolve([row(50), row(99)]);
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  for (const r of await runSegmentListingBench()) {
    console.log(
      `${r.name}: ${r.ours.toFixed(0)} µs (frame interval ${r.peer.toFixed(0)} µs, ratio ${r.ratio.toFixed(3)})`,
    );
  }
}
