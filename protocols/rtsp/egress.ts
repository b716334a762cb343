/**
 * RtspEgress: a stream's media as RTP packets, packetized once per stream and handed as the
 * same Buffers to every RTSP viewer (ARCHITECTURE fan-out rule). A TCP viewer writes its own
 * 4-byte interleaved header in front of each shared packet; a UDP viewer sends the packet
 * as it is. Sequence numbers and SSRCs are therefore per stream, and each viewer learns where
 * its numbering starts from the RTP-Info header of its PLAY answer (RFC 2326 §12.33).
 *
 * Every video keyframe item also carries an RTCP sender report per track (RFC 3550 §6.4.1),
 * derived from the same 90 kHz clock for both tracks, so players align audio with video.
 * The egress listens to the bus only while it has viewers, like the MPEG-TS egress.
 * Codecs: H.264 (RFC 6184), H.265 (RFC 7798), AAC (RFC 3640) and Opus (RFC 7587); a track of
 * any other codec is left out (codecs.ts), and then audio frames are the start points.
 */
import { randomInt } from 'node:crypto';
import type { MediaBus } from '../../src/media/bus.js';
import { Egress } from '../../src/media/egress.js';
import type { FanOutOptions } from '../../src/media/fanout.js';
import { NalType, nalType, parseAvcC, splitAvcc } from '../../src/media/h264.js';
import { HevcNalType, hevcNalType, parseHvcC } from '../../src/media/h265.js';
import { CLOCK_RATE, type Frame, type Tracks } from '../../src/media/types.js';
import { AacPacketizer } from './wire/aac-rtp.js';
import { H264Packetizer } from './wire/h264-rtp.js';
import type { PacketizerOptions } from './wire/rtp.js';
import { H265Packetizer } from './wire/h265-rtp.js';
import { OPUS_RTP_CLOCK, OpusPacketizer } from './wire/opus-rtp.js';
import { rtspCarriesAudio, rtspCarriesVideo } from './codecs.js';
import { writeSenderReport } from './wire/rtp.js';
import { AUDIO_PAYLOAD_TYPE, VIDEO_PAYLOAD_TYPE } from './wire/sdp.js';

export type MediaKind = 'video' | 'audio';

export interface RtpItem {
  readonly track: MediaKind;
  /** RTP packets of one frame, in order. */
  readonly packets: readonly Buffer[];
  /** Sender reports to send first, per track, on keyframes. */
  readonly reports?: { readonly video?: Buffer; readonly audio?: Buffer };
  /** A video keyframe (or any audio frame when there is no video): where a viewer may start. */
  readonly start: boolean;
  /** RTP timestamp and sequence number of the first packet, for RTP-Info. */
  readonly rtpTime: number;
  readonly sequence: number;
  /** Media bytes in this item, for session byte counts. */
  readonly payload: number;
}

/** Seconds between the NTP epoch (1900) and the Unix epoch (1970), RFC 5905 §6. */
const NTP_UNIX_OFFSET = 2_208_988_800;

interface VideoPacketizer {
  sequence: number;
  packetize(nals: readonly Buffer[], timestamp: number): Buffer[];
}

interface AudioPacketizer {
  sequence: number;
  packetize(frame: Buffer, timestamp: number): Buffer[];
}

interface TrackState<P extends VideoPacketizer | AudioPacketizer> {
  /** The codec the packetizer is for; another codec gets a new packetizer. */
  readonly codec: string;
  readonly packetizer: P;
  readonly ssrc: number;
  readonly rate: number;
  /** Random RTP timestamp base (RFC 3550 §5.1). */
  readonly offset: number;
  packets: number;
  octets: number;
}

export class RtspEgress extends Egress<RtpItem> {
  private current: Tracks | undefined;
  private video: TrackState<VideoPacketizer> | undefined;
  private audio: TrackState<AudioPacketizer> | undefined;
  private parameterSets: Buffer[] = [];
  /** NTP seconds at pts 0, fixed on the first frame from the wall clock. */
  private ntpBase: number | undefined;

  constructor(
    bus: MediaBus,
    private readonly now: () => number = Date.now,
    options: FanOutOptions = {},
  ) {
    super(bus, options);
  }

  /** Tracks of the stream as last announced by the bus. */
  get tracks(): Tracks | undefined {
    return this.current ?? this.bus.tracks;
  }

  /** The sequence number of a track's next packet, for RTP-Info when nothing is cached yet. */
  nextSequence(kind: MediaKind): number | undefined {
    return (kind === 'video' ? this.video : this.audio)?.packetizer.sequence;
  }

  protected onTracks(tracks: Tracks): void {
    this.current = tracks;
    const v = tracks.video;
    if (v?.codec === 'h264') {
      const cfg = parseAvcC(v.config);
      this.parameterSets = cfg ? [...cfg.sps, ...cfg.pps] : [];
    } else if (v?.codec === 'h265') {
      const cfg = parseHvcC(v.config);
      this.parameterSets = cfg ? [...cfg.vps, ...cfg.sps, ...cfg.pps] : [];
    } else {
      this.parameterSets = [];
    }
    // Packetizers survive a track change of the same codec so that sequence numbers run on
    // for current viewers; another codec needs another payload format.
    if (v && (v.codec === 'h264' || v.codec === 'h265') && this.video?.codec !== v.codec) {
      const o = opts(VIDEO_PAYLOAD_TYPE, this.video);
      this.video = newState(
        v.codec,
        v.codec === 'h264' ? new H264Packetizer(o) : new H265Packetizer(o),
        o,
        CLOCK_RATE,
      );
    } else if (!v || !rtspCarriesVideo(v.codec)) {
      this.video = undefined;
    }
    const a = tracks.audio;
    const rate = a?.codec === 'opus' ? OPUS_RTP_CLOCK : a?.sampleRate;
    if (
      a &&
      rate &&
      (a.codec === 'aac' || a.codec === 'opus') &&
      (this.audio?.codec !== a.codec || this.audio.rate !== rate)
    ) {
      const o = opts(AUDIO_PAYLOAD_TYPE, this.audio);
      this.audio = newState(
        a.codec,
        a.codec === 'aac' ? new AacPacketizer(o) : new OpusPacketizer(o),
        o,
        rate,
      );
    } else if (!a || !rtspCarriesAudio(a.codec)) {
      this.audio = undefined;
    }
    // Cached packets belong to the previous source; new viewers start after the change.
    this.fanout.reset();
  }

  protected onFrame(frame: Frame): void {
    const tracks = this.current;
    if (!tracks) return;
    if (frame.kind === 'video') {
      const s = this.video;
      if (!s || tracks.video?.codec !== s.codec) return;
      const hevc = s.codec === 'h265';
      let nals = splitAvcc(frame.data);
      // A viewer may join at any keyframe and an RTMP publisher sends parameter sets only once,
      // so every keyframe carries them in-band; a changed SPS then also reaches current viewers.
      const isSps = (n: Buffer): boolean =>
        hevc ? hevcNalType(n) === HevcNalType.SPS : nalType(n) === NalType.SPS;
      if (frame.keyframe && !nals.some(isSps)) nals = [...this.parameterSets, ...nals];
      const rtpTime = this.rtpTimeOf(s, frame.pts);
      const sequence = s.packetizer.sequence;
      const packets = s.packetizer.packetize(nals, rtpTime);
      this.count(s, packets);
      this.fanout.publish({
        track: 'video',
        packets,
        start: frame.keyframe,
        rtpTime,
        sequence,
        payload: frame.data.length,
        ...(frame.keyframe ? { reports: this.reports(frame.pts) } : {}),
      });
    } else {
      const s = this.audio;
      if (!s || tracks.audio?.codec !== s.codec) return;
      const rtpTime = this.rtpTimeOf(s, frame.pts);
      const sequence = s.packetizer.sequence;
      const packets = s.packetizer.packetize(frame.data, rtpTime);
      this.count(s, packets);
      // Without a video track this egress sends (none, or one RTSP cannot carry), every audio
      // frame is a place to start; with one, viewers start at its keyframes.
      const start = this.video === undefined;
      this.fanout.publish({
        track: 'audio',
        packets,
        start,
        rtpTime,
        sequence,
        payload: frame.data.length,
        ...(start ? { reports: this.reports(frame.pts) } : {}),
      });
    }
  }

  private rtpTimeOf(s: TrackState<VideoPacketizer | AudioPacketizer>, pts: number): number {
    return (Math.round((pts * s.rate) / CLOCK_RATE) + s.offset) >>> 0;
  }

  private count(s: TrackState<VideoPacketizer | AudioPacketizer>, packets: readonly Buffer[]): void {
    s.packets += packets.length;
    for (const p of packets) s.octets += p.length - 12;
  }

  /** Sender reports for both tracks at one 90 kHz instant, so they share one NTP time. */
  private reports(pts: number): { video?: Buffer; audio?: Buffer } {
    this.ntpBase ??= this.now() / 1000 + NTP_UNIX_OFFSET - pts / CLOCK_RATE;
    const ntpSeconds = this.ntpBase + pts / CLOCK_RATE;
    const sr = (s: TrackState<VideoPacketizer | AudioPacketizer> | undefined): Buffer | undefined =>
      s &&
      writeSenderReport({
        ssrc: s.ssrc,
        ntpSeconds,
        rtpTimestamp: this.rtpTimeOf(s, pts),
        packetCount: s.packets,
        octetCount: s.octets,
      });
    const video = this.current?.video ? sr(this.video) : undefined;
    const audio = this.current?.audio ? sr(this.audio) : undefined;
    return { ...(video ? { video } : {}), ...(audio ? { audio } : {}) };
  }
}

/** Packetizer options; a replaced packetizer keeps the SSRC and numbering of the one before it. */
function opts(
  payloadType: number,
  before: TrackState<VideoPacketizer | AudioPacketizer> | undefined,
): PacketizerOptions {
  return {
    payloadType,
    ssrc: before?.ssrc ?? randomInt(0, 2 ** 32 - 1),
    initialSequence: before?.packetizer.sequence ?? randomInt(0, 0x10000),
  };
}

function newState<P extends VideoPacketizer | AudioPacketizer>(
  codec: string,
  packetizer: P,
  o: PacketizerOptions,
  rate: number,
): TrackState<P> {
  return { codec, packetizer, ssrc: o.ssrc, rate, offset: randomInt(0, 2 ** 32 - 1), packets: 0, octets: 0 };
}
