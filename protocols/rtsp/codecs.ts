/**
 * Which codecs RTSP carries, both ways: H.264 (RFC 6184), H.265 (RFC 7798), AAC as
 * MPEG4-GENERIC (RFC 3640; MP4A-LATM, RFC 6416, on ingest only) and Opus (RFC 7587).
 * Kept inside the RTSP adapter so that a codec the media model learns later (AV1, VP9) is
 * refused here by name until an RTP payload format for it is written. Pure.
 */
import type { Tracks } from '../../src/media/types.js';

const VIDEO: ReadonlySet<string> = new Set(['h264', 'h265']);
const AUDIO: ReadonlySet<string> = new Set(['aac', 'opus']);

export function rtspCarriesVideo(codec: string | undefined): boolean {
  return codec !== undefined && VIDEO.has(codec);
}

export function rtspCarriesAudio(codec: string | undefined): boolean {
  return codec !== undefined && AUDIO.has(codec);
}

/** The tracks of a stream an RTSP viewer can be sent (the others are left out of the SDP). */
export function rtspTracks(tracks: Tracks): Tracks {
  return {
    ...(tracks.video && rtspCarriesVideo(tracks.video.codec) ? { video: tracks.video } : {}),
    ...(tracks.audio && rtspCarriesAudio(tracks.audio.codec) ? { audio: tracks.audio } : {}),
  };
}

/** The codecs of a stream RTSP cannot carry, for a refusal that names them (`video/av1`). */
export function rtspUncarried(tracks: Tracks): string[] {
  const out: string[] = [];
  if (tracks.video && !rtspCarriesVideo(tracks.video.codec)) out.push(`video/${tracks.video.codec}`);
  if (tracks.audio && !rtspCarriesAudio(tracks.audio.codec)) out.push(`audio/${tracks.audio.codec}`);
  return out;
}
