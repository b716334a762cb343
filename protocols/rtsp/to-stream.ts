/**
 * RTP from an RTSP publisher (ANNOUNCE/RECORD) → our Tracks and Frames. Pure: packets in,
 * values out, so the whole publish path is unit-tested against bytes captured from ffmpeg
 * and GStreamer. Packets of a UDP publisher go through a reorder buffer first.
 *
 * Timing: every RTP stream starts at a random timestamp (RFC 3550 §5.1), so audio and video
 * are aligned through the RTCP sender reports, which pair an RTP timestamp with a wall-clock
 * NTP time (RFC 3550 §6.4.1). ffmpeg sends one before the first packet of each stream.
 * Each track is anchored at its first sender report; later timestamps are unwrapped from that
 * anchor, so the 90 kHz output stays monotonic even across the 32-bit RTP wrap.
 */
import { nalsToAvcc, parseAvcC, spsDimensions } from '../../src/media/h264.js';
import { parseHevcSps, parseHvcC } from '../../src/media/h265.js';
import { CLOCK_RATE, type Frame, type Tracks, type VideoTrack } from '../../src/media/types.js';
import { AacDepacketizer } from './wire/aac-rtp.js';
import { RtspProtocolError } from './wire/errors.js';
import { H264Depacketizer } from './wire/h264-rtp.js';
import { H265Depacketizer } from './wire/h265-rtp.js';
import { LatmDepacketizer } from './wire/latm-rtp.js';
import { OpusDepacketizer } from './wire/opus-rtp.js';
import { RtpReorder } from './wire/reorder.js';
import { parseRtp, parseSenderReports, type RtpPacket } from './wire/rtp.js';
import type { AnnouncedTracks, AudioRtpInfo } from './wire/sdp.js';

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

/** The video depacketizers share one shape: packets in, access units of NAL units out. */
interface VideoDepacketizer {
  push(p: RtpPacket): { timestamp: number; nals: Buffer[]; keyframe: boolean; config?: Buffer }[];
}

/** The audio ones: packets in, one raw frame (AAC without ADTS, or one Opus packet) per unit. */
interface AudioDepacketizer {
  push(p: RtpPacket): { timestamp: number; frame: Buffer }[];
}

export interface RtpToFramesOptions {
  /** Packets held per track to undo reordering: 0 for TCP, some dozens for UDP. */
  readonly reorderDepth?: number;
}

export class RtpToFrames {
  private tracks: Tracks;
  private readonly video: VideoDepacketizer | undefined;
  private readonly audio: AudioDepacketizer | undefined;
  private reorder: Record<TrackKind, RtpReorder>;
  private readonly clocks: Record<TrackKind, Clock>;
  /** NTP seconds that map to pts 0. */
  private origin: number | undefined;
  private announcedReady = false;

  constructor(
    private readonly announced: AnnouncedTracks,
    options: RtpToFramesOptions = {},
  ) {
    this.tracks = withDimensions(announced.tracks);
    const v = announced.video;
    const config = announced.tracks.video?.config;
    this.video = v && (v.codec === 'h265' ? new H265Depacketizer(config) : new H264Depacketizer(config));
    this.audio = announced.audio && audioDepacketizer(announced.audio);
    const depth = options.reorderDepth ?? 0;
    this.reorder = { video: new RtpReorder(depth), audio: new RtpReorder(depth) };
    this.clocks = {
      video: { rate: announced.video?.clockRate ?? CLOCK_RATE, ext: 0 },
      audio: { rate: announced.audio?.clockRate ?? announced.tracks.audio?.sampleRate ?? 48_000, ext: 0 },
    };
  }

  /** True once every announced track has its codec configuration (video may wait for in-band parameter sets). */
  get ready(): boolean {
    return !this.announced.video || this.tracks.video !== undefined;
  }

  /** How many packets of a track are held to undo reordering (0 for TCP; set at SETUP). */
  useReorder(kind: TrackKind, depth: number): void {
    this.reorder[kind] = new RtpReorder(depth);
  }

  /** Packets given up on and packets that came too late, per track, for receiver reports and the log. */
  losses(kind: TrackKind): { lost: number; late: number } {
    const r = this.reorder[kind];
    return { lost: r.lost, late: r.late };
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
  rtp(kind: TrackKind, packet: Buffer, arrival = 0): Ingested {
    return this.packet(kind, parseRtp(packet), arrival);
  }

  /** An RTP packet already parsed (the record path reads its header for reception statistics first). */
  packet(kind: TrackKind, p: RtpPacket, arrival = 0): Ingested {
    const out: Ingested = { frames: [] };
    const info = kind === 'video' ? this.announced.video : this.announced.audio;
    if (!info || p.payloadType !== info.payloadType) return out;
    for (const q of this.reorder[kind].push(p, arrival)) {
      if (kind === 'video') this.videoPacket(q, out);
      else this.audioPacket(q, out);
    }
    if (this.ready && !this.announcedReady) {
      this.announcedReady = true;
      out.tracks = this.tracks;
    }
    return out;
  }

  private videoPacket(p: RtpPacket, out: Ingested): void {
    if (!this.video) return;
    for (const au of this.video.push(p)) {
      if (au.config) {
        this.tracks = { ...this.tracks, video: videoTrack(this.announced.video?.codec ?? 'h264', au.config) };
        out.tracks = this.tracks;
      }
      if (!this.ready) continue;
      const pts = this.toPts('video', au.timestamp);
      out.frames.push({ kind: 'video', pts, dts: pts, keyframe: au.keyframe, data: nalsToAvcc(au.nals) });
    }
  }

  private audioPacket(p: RtpPacket, out: Ingested): void {
    if (!this.audio) return;
    for (const au of this.audio.push(p)) {
      if (!this.ready) continue;
      const pts = this.toPts('audio', au.timestamp);
      out.frames.push({ kind: 'audio', pts, dts: pts, keyframe: true, data: Buffer.from(au.frame) });
    }
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

function audioDepacketizer(info: AudioRtpInfo): AudioDepacketizer {
  switch (info.format) {
    case 'mpeg4-generic':
      return new AacDepacketizer(info);
    case 'mp4a-latm':
      return new LatmDepacketizer(info.latm, info.clockRate);
    case 'opus': {
      const opus = new OpusDepacketizer();
      return { push: (p) => opus.push(p).map((u) => ({ timestamp: u.timestamp, frame: u.packet })) };
    }
  }
}

function videoTrack(codec: 'h264' | 'h265', config: Buffer): VideoTrack {
  let dims: { width: number; height: number } | undefined;
  if (codec === 'h264') {
    const sps = parseAvcC(config)?.sps[0];
    dims = sps ? spsDimensions(sps) : undefined;
  } else {
    const sps = parseHvcC(config)?.sps[0];
    const info = sps ? parseHevcSps(sps) : undefined;
    dims = info && { width: info.width, height: info.height };
  }
  return { kind: 'video', codec, config, ...(dims ?? {}) };
}

function withDimensions(tracks: Tracks): Tracks {
  const v = tracks.video;
  return v && (v.codec === 'h264' || v.codec === 'h265')
    ? { ...tracks, video: videoTrack(v.codec, v.config) }
    : tracks;
}
