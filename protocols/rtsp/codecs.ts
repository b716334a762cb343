/**
 * The tracks of a stream RTSP play can send: H.264 (RFC 6184), H.265 (RFC 7798), AAC as
 * MPEG4-GENERIC (RFC 3640) and Opus (RFC 7587), as `src/media/codec-support.ts`'s `rtsp` row
 * says. A viewer gets the tracks it can be sent (the rest are left out of the SDP) and is
 * refused only when none is left. Pure.
 */
import { canCarry } from '../../src/media/codec-support.js';
import type { AudioCodec, Tracks, VideoCodec } from '../../src/media/types.js';

export function rtspCarriesVideo(codec: VideoCodec | undefined): boolean {
  return codec !== undefined && canCarry('rtsp', codec);
}

export function rtspCarriesAudio(codec: AudioCodec | undefined): boolean {
  return codec !== undefined && canCarry('rtsp', codec);
}

/** The tracks of a stream an RTSP viewer can be sent (the others are left out of the SDP). */
export function rtspTracks(tracks: Tracks): Tracks {
  return {
    ...(tracks.video && rtspCarriesVideo(tracks.video.codec) ? { video: tracks.video } : {}),
    ...(tracks.audio && rtspCarriesAudio(tracks.audio.codec) ? { audio: tracks.audio } : {}),
  };
}
