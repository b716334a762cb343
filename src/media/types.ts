/**
 * Protocol-neutral media model shared by every input and output.
 *
 * Timestamps are integers on a 90 kHz clock (MPEG-TS and RTP video use it natively;
 * RTMP milliseconds convert exactly by ×90), already unwrapped and monotonic per stream.
 */

export type VideoCodec = 'h264' | 'h265' | 'av1' | 'vp9';
export type AudioCodec = 'aac' | 'opus';

export const CLOCK_RATE = 90_000;

export interface VideoTrack {
  kind: 'video';
  codec: VideoCodec;
  /**
   * Decoder configuration record as FLV and MP4 carry it: avcC for H.264, hvcC for H.265,
   * av1C (AV1-ISOBMFF §2.3) for AV1, vpcC (VP-ISOBMFF "VPCodecConfigurationRecord") for VP9.
   */
  config: Buffer;
  width?: number;
  height?: number;
}

export interface AudioTrack {
  kind: 'audio';
  codec: AudioCodec;
  /** AAC AudioSpecificConfig (empty for Opus). */
  config: Buffer;
  sampleRate: number;
  channels: number;
}

/** The tracks of one stream: at most one video and one audio track. */
export interface Tracks {
  video?: VideoTrack;
  audio?: AudioTrack;
}

/** One access unit: a whole video picture or one audio frame. */
export interface Frame {
  kind: 'video' | 'audio';
  /** Decode time, 90 kHz. */
  dts: number;
  /** Presentation time, 90 kHz (≥ dts). */
  pts: number;
  /** Video: an IDR/IRAP picture a decoder can start from. Audio: always true. */
  keyframe: boolean;
  /**
   * Video: NAL units, each prefixed with a 4-byte big-endian length (AVCC/HVCC layout); for AV1
   * one temporal unit of OBUs with size fields (AV1-ISOBMFF sample), for VP9 one frame (superframe).
   * Audio: one raw AAC frame (no ADTS header) or one Opus packet.
   */
  data: Buffer;
}
