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
 */
import { randomInt } from 'node:crypto';
import type { MediaBus } from '../../src/media/bus.js';
import { Egress } from '../../src/media/egress.js';
import type { FanOutOptions } from '../../src/media/fanout.js';
import { NalType, nalType, parseAvcC, splitAvcc } from '../../src/media/h264.js';
import { CLOCK_RATE, type Frame, type Tracks } from '../../src/media/types.js';
import { AacPacketizer } from './wire/aac-rtp.js';
import { H264Packetizer } from './wire/h264-rtp.js';
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

interface TrackState<P extends H264Packetizer | AacPacketizer> {
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
  private video: TrackState<H264Packetizer> | undefined;
  private audio: TrackState<AacPacketizer> | undefined;
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
    const cfg = tracks.video?.codec === 'h264' ? parseAvcC(tracks.video.config) : undefined;
    this.parameterSets = cfg ? [...cfg.sps, ...cfg.pps] : [];
    // Packetizers survive a track change so that sequence numbers run on for current viewers.
    if (tracks.video?.codec === 'h264' && !this.video) {
      const ssrc = randomInt(0, 2 ** 32 - 1);
      this.video = newState(new H264Packetizer(opts(VIDEO_PAYLOAD_TYPE, ssrc)), ssrc, CLOCK_RATE);
    }
    if (tracks.audio?.codec === 'aac' && (!this.audio || this.audio.rate !== tracks.audio.sampleRate)) {
      const ssrc = randomInt(0, 2 ** 32 - 1);
      this.audio = newState(new AacPacketizer(opts(AUDIO_PAYLOAD_TYPE, ssrc)), ssrc, tracks.audio.sampleRate);
    }
    // Cached packets belong to the previous source; new viewers start after the change.
    this.fanout.reset();
  }

  protected onFrame(frame: Frame): void {
    const tracks = this.current;
    if (!tracks) return;
    if (frame.kind === 'video') {
      const s = this.video;
      if (!s || tracks.video?.codec !== 'h264') return;
      let nals = splitAvcc(frame.data);
      // A viewer may join at any keyframe and an RTMP publisher sends SPS/PPS only once, so
      // every keyframe carries them in-band; a changed SPS then also reaches current viewers.
      if (frame.keyframe && !nals.some((n) => nalType(n) === NalType.SPS)) {
        nals = [...this.parameterSets, ...nals];
      }
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
      if (!s || tracks.audio?.codec !== 'aac') return;
      const rtpTime = this.rtpTimeOf(s, frame.pts);
      const sequence = s.packetizer.sequence;
      const packets = s.packetizer.packetize(frame.data, rtpTime);
      this.count(s, packets);
      const start = tracks.video === undefined;
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

  private rtpTimeOf(s: TrackState<H264Packetizer | AacPacketizer>, pts: number): number {
    return (Math.round((pts * s.rate) / CLOCK_RATE) + s.offset) >>> 0;
  }

  private count(s: TrackState<H264Packetizer | AacPacketizer>, packets: readonly Buffer[]): void {
    s.packets += packets.length;
    for (const p of packets) s.octets += p.length - 12;
  }

  /** Sender reports for both tracks at one 90 kHz instant, so they share one NTP time. */
  private reports(pts: number): { video?: Buffer; audio?: Buffer } {
    this.ntpBase ??= this.now() / 1000 + NTP_UNIX_OFFSET - pts / CLOCK_RATE;
    const ntpSeconds = this.ntpBase + pts / CLOCK_RATE;
    const sr = (s: TrackState<H264Packetizer | AacPacketizer> | undefined): Buffer | undefined =>
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

function opts(
  payloadType: number,
  ssrc: number,
): { payloadType: number; ssrc: number; initialSequence: number } {
  return { payloadType, ssrc, initialSequence: randomInt(0, 0x10000) };
}

function newState<P extends H264Packetizer | AacPacketizer>(
  packetizer: P,
  ssrc: number,
  rate: number,
): TrackState<P> {
  return { packetizer, ssrc, rate, offset: randomInt(0, 2 ** 32 - 1), packets: 0, octets: 0 };
}
