/**
 * RTP from an RTSP publisher (ANNOUNCE/RECORD) → our Tracks and Frames. Pure: packets in,
 * values out, so the whole publish path is unit-tested against bytes captured from ffmpeg.
 *
 * Timing: every RTP stream starts at a random timestamp (RFC 3550 §5.1), so audio and video
 * are aligned through the RTCP sender reports, which pair an RTP timestamp with a wall-clock
 * NTP time (RFC 3550 §6.4.1). ffmpeg sends one before the first packet of each stream.
 * Each track is anchored at its first sender report; later timestamps are unwrapped from that
 * anchor, so the 90 kHz output stays monotonic even across the 32-bit RTP wrap.
 */
import { nalsToAvcc, parseAvcC, spsDimensions } from '../../src/media/h264.js';
import { CLOCK_RATE, type Frame, type Tracks, type VideoTrack } from '../../src/media/types.js';
import { AacDepacketizer } from './wire/aac-rtp.js';
import { RtspProtocolError } from './wire/errors.js';
import { H264Depacketizer } from './wire/h264-rtp.js';
import { parseRtp, parseSenderReports } from './wire/rtp.js';
import type { AnnouncedTracks } from './wire/sdp.js';

/**
 * Where the output timeline starts, ahead of the first sender report's wall time. Tracks'
 * first reports differ by milliseconds and AAC encoders start a frame early (priming), so
 * without this headroom the first audio frames would get negative timestamps.
 */
const START_MARGIN_SECONDS = 1;

export type TrackKind = 'video' | 'audio';

export interface Ingested {
  /** New tracks to announce before `frames` (the first complete set, or a changed SPS/PPS). */
  tracks?: Tracks;
  frames: Frame[];
}

interface Clock {
  readonly rate: number;
  anchor?: { rtp: number; pts: number };
  last?: number;
  /** Ticks since the anchor, unwrapped. */
  ext: number;
}

export class RtpToFrames {
  private tracks: Tracks;
  private readonly h264: H264Depacketizer | undefined;
  private readonly aac: AacDepacketizer | undefined;
  private readonly clocks: Record<TrackKind, Clock>;
  /** NTP seconds that map to pts 0. */
  private origin: number | undefined;
  private announcedReady = false;

  constructor(private readonly announced: AnnouncedTracks) {
    this.tracks = withDimensions(announced.tracks);
    this.h264 = announced.video ? new H264Depacketizer(announced.tracks.video?.config) : undefined;
    this.aac = announced.audio ? new AacDepacketizer(announced.audio) : undefined;
    this.clocks = {
      video: { rate: announced.video?.clockRate ?? CLOCK_RATE, ext: 0 },
      audio: { rate: announced.audio?.clockRate ?? announced.tracks.audio?.sampleRate ?? 48_000, ext: 0 },
    };
  }

  /** True once every announced track has its codec configuration (video may wait for in-band SPS/PPS). */
  get ready(): boolean {
    return !this.announced.video || this.tracks.video !== undefined;
  }

  /** An RTCP packet for a track; only sender reports matter here. */
  rtcp(kind: TrackKind, packet: Buffer): void {
    const clock = this.clocks[kind];
    if (clock.anchor) return;
    const sr = parseSenderReports(packet)[0];
    if (!sr) return;
    this.origin ??= sr.ntpSeconds - START_MARGIN_SECONDS;
    clock.anchor = { rtp: sr.rtpTimestamp, pts: Math.round((sr.ntpSeconds - this.origin) * CLOCK_RATE) };
    clock.last = sr.rtpTimestamp;
  }

  /** An RTP packet for a track. Throws RtspProtocolError for a malformed packet (the caller drops it). */
  rtp(kind: TrackKind, packet: Buffer): Ingested {
    const p = parseRtp(packet);
    const out: Ingested = { frames: [] };
    if (kind === 'video') {
      if (!this.h264) return out;
      if (p.payloadType !== this.announced.video?.payloadType) return out;
      for (const au of this.h264.push(p)) {
        if (au.config) {
          this.tracks = { ...this.tracks, video: videoTrack(au.config) };
          out.tracks = this.tracks;
        }
        if (!this.ready) continue;
        const pts = this.toPts('video', au.timestamp);
        out.frames.push({ kind: 'video', pts, dts: pts, keyframe: au.keyframe, data: nalsToAvcc(au.nals) });
      }
    } else {
      if (!this.aac) return out;
      if (p.payloadType !== this.announced.audio?.payloadType) return out;
      for (const au of this.aac.push(p)) {
        if (!this.ready) continue;
        const pts = this.toPts('audio', au.timestamp);
        out.frames.push({ kind: 'audio', pts, dts: pts, keyframe: true, data: Buffer.from(au.frame) });
      }
    }
    if (this.ready && !this.announcedReady) {
      this.announcedReady = true;
      out.tracks = this.tracks;
    }
    return out;
  }

  private toPts(kind: TrackKind, timestamp: number): number {
    const clock = this.clocks[kind];
    if (!clock.anchor) {
      // No sender report before media: this track cannot be aligned with the other; start it at the margin.
      clock.anchor = { rtp: timestamp, pts: START_MARGIN_SECONDS * CLOCK_RATE };
      clock.last = timestamp;
    }
    // `| 0` reads the 32-bit difference as signed, which unwraps the RTP timestamp (RFC 3550 §5.1).
    clock.ext += (timestamp - (clock.last ?? timestamp)) | 0;
    clock.last = timestamp;
    const pts = clock.anchor.pts + Math.round((clock.ext * CLOCK_RATE) / clock.rate);
    if (pts < 0) throw new RtspProtocolError(`${kind} timestamp before the stream start`);
    return pts;
  }
}

function videoTrack(config: Buffer): VideoTrack {
  const sps = parseAvcC(config)?.sps[0];
  const dims = sps ? spsDimensions(sps) : undefined;
  return { kind: 'video', codec: 'h264', config, ...(dims ?? {}) };
}

function withDimensions(tracks: Tracks): Tracks {
  return tracks.video ? { ...tracks, video: videoTrack(tracks.video.config) } : tracks;
}
