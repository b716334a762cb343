/**
 * Which output can carry which codec, in one place, so that every adapter refuses a viewer it
 * cannot serve with the same clear reason (HTTP 415, RTSP 415, RTMP `NetStream.Play.Failed`)
 * instead of sending bytes no player can decode, or nothing at all.
 *
 * The table says what the muxers here write, not what some player can read:
 * - rtmp: legacy FLV tags for H.264/AAC, Enhanced RTMP (FourCC) tags for the rest.
 * - ts (HTTP MPEG-TS): stream types 0x1b H.264, 0x24 H.265, ADTS AAC, and Opus as the
 *   registration-descriptor private stream (ETSI TS 102 366 style) that ffmpeg and VLC read.
 *   MPEG-TS has no AV1 or VP9 mapping our muxer writes.
 * - hls: the MPEG-TS segmenter, minus Opus (RFC 8216 and hls.js only know AAC/MP3/AC-3 in TS).
 * - rtsp: RFC 6184 H.264, RFC 7798 H.265, RFC 3640 AAC, RFC 7587 Opus.
 * - fmp4 (HLS `?container=fmp4` / CMAF segments): `avc1`/`hvc1` + `mp4a`/`Opus` sample entries;
 *   AV1 (`av01` + av1C) and VP9 (`vp09` + vpcC) once the ISOBMFF writer writes those entries.
 *   The HLS adapter asks `'hls'` for TS segments and `'fmp4'` for fMP4 ones.
 *
 * An adapter whose muxer learns a codec (fMP4 HLS segments for AV1, say) widens its row here.
 */
import type { AudioCodec, Tracks, VideoCodec } from './types.js';

export type PlayOutput = 'rtmp' | 'rtsp' | 'hls' | 'ts' | 'fmp4';
type Codec = VideoCodec | AudioCodec;

const CARRIES: Readonly<Record<PlayOutput, ReadonlySet<Codec>>> = {
  rtmp: new Set<Codec>(['h264', 'h265', 'av1', 'vp9', 'aac', 'opus']),
  ts: new Set<Codec>(['h264', 'h265', 'aac', 'opus']),
  hls: new Set<Codec>(['h264', 'h265', 'aac']),
  rtsp: new Set<Codec>(['h264', 'h265', 'aac', 'opus']),
  fmp4: new Set<Codec>(['h264', 'h265', 'aac', 'opus']),
};

const CODEC_NAMES: Readonly<Record<Codec, string>> = {
  h264: 'H.264',
  h265: 'H.265',
  av1: 'AV1',
  vp9: 'VP9',
  aac: 'AAC',
  opus: 'Opus',
};

const OUTPUT_NAMES: Readonly<Record<PlayOutput, string>> = {
  rtmp: 'RTMP',
  rtsp: 'RTSP',
  hls: 'HLS (MPEG-TS segments)',
  ts: 'HTTP MPEG-TS',
  fmp4: 'HLS (fMP4 segments)',
};

/** Whether `output` can carry `codec`. */
export function canCarry(output: PlayOutput, codec: Codec): boolean {
  return CARRIES[output].has(codec);
}

/** The outputs that carry `codec`, for a refusal that says where the stream does play. */
export function outputsFor(codec: Codec): PlayOutput[] {
  return (Object.keys(CARRIES) as PlayOutput[]).filter((o) => CARRIES[o].has(codec));
}

/**
 * Why `output` cannot serve a stream with these tracks, or undefined when it can (or when the
 * tracks are not known yet: the viewer then waits like any other). The text is safe to send
 * to the client: it names codecs and protocols only.
 */
export function codecRefusal(output: PlayOutput, tracks: Tracks | undefined): string | undefined {
  for (const track of [tracks?.video, tracks?.audio]) {
    if (!track || canCarry(output, track.codec)) continue;
    const elsewhere = outputsFor(track.codec).map((o) => OUTPUT_NAMES[o]);
    const hint = elsewhere.length > 0 ? `; it plays over ${elsewhere.join(', ')}` : '';
    return `${CODEC_NAMES[track.codec]} ${track.kind} cannot be carried over ${OUTPUT_NAMES[output]}${hint}`;
  }
  return undefined;
}

/** The display name of a codec ("H.265"), for logs and refusals. */
export function codecName(codec: Codec): string {
  return CODEC_NAMES[codec];
}
