/**
 * Synthetic media for HLS and HTTP-TS unit tests: a 25 fps H.264 track with a keyframe every
 * `gop` frames and 44.1 kHz AAC, with exact 90 kHz timestamps, so segment boundaries and
 * durations in golden texts are predictable.
 */
import type { Frame, Tracks } from '../../../../src/media/types.js';

/** avcC with profile 66 (Baseline), constraint 0xc0, level 30 and no parameter sets. */
export const AVCC = Buffer.from([1, 0x42, 0xc0, 0x1e, 0xff, 0xe0, 0x00]);
/** AudioSpecificConfig: AAC-LC, 44.1 kHz, stereo. */
export const ASC = Buffer.from([0x12, 0x10]);

export const TRACKS: Tracks = {
  video: { kind: 'video', codec: 'h264', config: AVCC, width: 320, height: 240 },
  audio: { kind: 'audio', codec: 'aac', config: ASC, sampleRate: 44100, channels: 2 },
};
export const AUDIO_ONLY: Tracks = { audio: TRACKS.audio };

const VIDEO_TICKS = 3600; // 25 fps
const AUDIO_TICKS = (1024 * 90000) / 44100;

/** One length-prefixed NAL unit: an IDR slice (type 5) or a non-IDR slice (type 1). */
function videoData(key: boolean, n: number): Buffer {
  const nal = Buffer.alloc(40, n & 0xff);
  nal[0] = key ? 0x65 : 0x41;
  const len = Buffer.alloc(4);
  len.writeUInt32BE(nal.length);
  return Buffer.concat([len, nal]);
}

/**
 * `seconds` of interleaved video and audio frames in DTS order, starting at `startDts`.
 * Video frame i is a keyframe when i % gop === 0 (with `firstIndex` offsetting i).
 */
export function media(
  seconds: number,
  options: { gop?: number; startDts?: number; firstIndex?: number; audio?: boolean; video?: boolean } = {},
): Frame[] {
  const gop = options.gop ?? 25;
  const start = options.startDts ?? 0;
  const first = options.firstIndex ?? 0;
  const end = start + seconds * 90000;
  const out: Frame[] = [];
  if (options.video !== false) {
    for (let i = 0; start + i * VIDEO_TICKS < end; i++) {
      const dts = start + i * VIDEO_TICKS;
      const key = (first + i) % gop === 0;
      out.push({ kind: 'video', dts, pts: dts, keyframe: key, data: videoData(key, i) });
    }
  }
  if (options.audio !== false) {
    for (let i = 0; start + Math.round(i * AUDIO_TICKS) < end; i++) {
      const dts = start + Math.round(i * AUDIO_TICKS);
      out.push({ kind: 'audio', dts, pts: dts, keyframe: true, data: Buffer.alloc(20, i & 0xff) });
    }
  }
  // Stable: at equal DTS video comes first, as a publisher interleaves them.
  return out.sort((a, b) => a.dts - b.dts || (a.kind === b.kind ? 0 : a.kind === 'video' ? -1 : 1));
}

/** PID of the TS packet at `offset`. */
export function pidAt(b: Buffer, offset = 0): number {
  return (((b[offset + 1] ?? 0) & 0x1f) << 8) | (b[offset + 2] ?? 0);
}
