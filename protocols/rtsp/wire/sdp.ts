/**
 * SDP (RFC 4566) for RTSP: the writer behind DESCRIBE answers and the reader for the SDP a
 * publisher sends in ANNOUNCE. The codecs our media model carries: H.264 (RFC 6184 §8.1:
 * packetization-mode, sprop-parameter-sets, profile-level-id), H.265 (RFC 7798 §7.1:
 * sprop-vps/sps/pps), AAC as MPEG4-GENERIC in AAC-hbr mode (RFC 3640 §3.3.6; ingest also
 * takes MP4A-LATM, RFC 6416 §7.1) and Opus (RFC 7587 §7).
 */
import { parseAudioSpecificConfig } from '../../../src/media/aac.js';
import { buildAvcC, nalType, NalType, parseAvcC } from '../../../src/media/h264.js';
import { buildHvcC, HevcNalType, hevcNalType, parseHvcC } from '../../../src/media/h265.js';
import type { AudioTrack, Tracks, VideoTrack } from '../../../src/media/types.js';
import { RtspProtocolError } from './errors.js';
import { parseStreamMuxConfig, type LatmConfig } from './latm-rtp.js';
import { OPUS_RTP_CLOCK } from './opus-rtp.js';

/** Dynamic payload types (RFC 3551 §6) and control names the DESCRIBE answer uses; fixed so URLs stay stable. */
export const VIDEO_PAYLOAD_TYPE = 96;
export const AUDIO_PAYLOAD_TYPE = 97;
export const VIDEO_TRACK_ID = 0;
export const AUDIO_TRACK_ID = 1;

/** Media sections we look at in one SDP; real publishers send two, more is not a stream we can carry. */
const MAX_MEDIA = 16;

export interface SdpWriteOptions {
  /** Our address for the `o=` line (RFC 4566 §5.2); any valid address will do for unicast RTSP. */
  readonly origin?: string;
  /** `o=` session id; a stable number lets a client tell one description from another. */
  readonly sessionId?: number;
}

/** The SDP a DESCRIBE answer carries for these tracks; unsupported codecs are left out. */
export function writeSdp(tracks: Tracks, options: SdpWriteOptions = {}): string {
  const origin = options.origin ?? '127.0.0.1';
  const family = origin.includes(':') ? 'IP6' : 'IP4';
  const lines = [
    'v=0',
    `o=- ${options.sessionId ?? 0} 0 IN ${family} ${origin}`,
    's=streamgate',
    `c=IN ${family} ${family === 'IP6' ? '::' : '0.0.0.0'}`,
    't=0 0',
    'a=tool:streamgate',
    // A live stream has a start and no end (RFC 2326 §C.1.5).
    'a=range:npt=0-',
    'a=control:*',
  ];
  const video = tracks.video;
  if (video?.codec === 'h264') lines.push(...h264Media(video));
  else if (video?.codec === 'h265') lines.push(...h265Media(video));
  const audio = tracks.audio;
  if (audio?.codec === 'aac') lines.push(...aacMedia(audio));
  else if (audio?.codec === 'opus') lines.push(...opusMedia(audio));
  return lines.join('\r\n') + '\r\n';
}

function h264Media(video: VideoTrack): string[] {
  const cfg = parseAvcC(video.config);
  const fmtp = ['packetization-mode=1'];
  if (cfg && cfg.sps.length > 0) {
    const sets = [...cfg.sps, ...cfg.pps].map((s) => s.toString('base64')).join(',');
    fmtp.push(`sprop-parameter-sets=${sets}`);
    const sps = cfg.sps[0];
    if (sps && sps.length >= 4) {
      fmtp.push(`profile-level-id=${sps.subarray(1, 4).toString('hex').toUpperCase()}`);
    }
  }
  return [
    `m=video 0 RTP/AVP ${VIDEO_PAYLOAD_TYPE}`,
    `a=rtpmap:${VIDEO_PAYLOAD_TYPE} H264/90000`,
    `a=fmtp:${VIDEO_PAYLOAD_TYPE} ${fmtp.join(';')}`,
    `a=control:trackID=${VIDEO_TRACK_ID}`,
  ];
}

function h265Media(video: VideoTrack): string[] {
  const cfg = parseHvcC(video.config);
  const sets = (nals: readonly Buffer[]): string => nals.map((n) => n.toString('base64')).join(',');
  // RFC 7798 §7.1: without DONL (sprop-max-don-diff 0, the default) and with the parameter
  // sets out of band as well as in band on every keyframe.
  const fmtp =
    cfg && cfg.vps.length > 0 && cfg.sps.length > 0 && cfg.pps.length > 0
      ? [`sprop-vps=${sets(cfg.vps)}`, `sprop-sps=${sets(cfg.sps)}`, `sprop-pps=${sets(cfg.pps)}`]
      : [];
  return [
    `m=video 0 RTP/AVP ${VIDEO_PAYLOAD_TYPE}`,
    `a=rtpmap:${VIDEO_PAYLOAD_TYPE} H265/90000`,
    ...(fmtp.length > 0 ? [`a=fmtp:${VIDEO_PAYLOAD_TYPE} ${fmtp.join(';')}`] : []),
    `a=control:trackID=${VIDEO_TRACK_ID}`,
  ];
}

function opusMedia(audio: AudioTrack): string[] {
  return [
    `m=audio 0 RTP/AVP ${AUDIO_PAYLOAD_TYPE}`,
    // RFC 7587 §7: always 48000/2 in the rtpmap; the real channel count goes in sprop-stereo.
    `a=rtpmap:${AUDIO_PAYLOAD_TYPE} opus/${OPUS_RTP_CLOCK}/2`,
    `a=fmtp:${AUDIO_PAYLOAD_TYPE} sprop-stereo=${audio.channels >= 2 ? 1 : 0}`,
    `a=control:trackID=${AUDIO_TRACK_ID}`,
  ];
}

function aacMedia(audio: AudioTrack): string[] {
  return [
    `m=audio 0 RTP/AVP ${AUDIO_PAYLOAD_TYPE}`,
    `a=rtpmap:${AUDIO_PAYLOAD_TYPE} MPEG4-GENERIC/${audio.sampleRate}/${audio.channels}`,
    // RFC 3640 §3.3.6: AAC-hbr uses 13-bit sizes and 3-bit indices.
    `a=fmtp:${AUDIO_PAYLOAD_TYPE} streamtype=5;profile-level-id=1;mode=AAC-hbr;sizelength=13;indexlength=3;indexdeltalength=3;config=${audio.config.toString('hex')}`,
    `a=control:trackID=${AUDIO_TRACK_ID}`,
  ];
}

export interface SdpRtpMap {
  readonly payloadType: number;
  readonly encoding: string;
  readonly clockRate: number;
  readonly channels?: number;
}

export interface SdpMedia {
  readonly kind: string;
  readonly payloadTypes: readonly number[];
  readonly rtpmap?: SdpRtpMap;
  /** fmtp parameters with lower-cased names (RFC 4566 §6: names are case-insensitive for these codecs). */
  readonly fmtp: ReadonlyMap<string, string>;
  readonly control?: string;
}

export interface SessionDescription {
  readonly control?: string;
  readonly media: readonly SdpMedia[];
}

/** Parses the lines of an SDP that matter for RTP reception; throws RtspProtocolError when it is not SDP. */
export function parseSdp(text: string): SessionDescription {
  const lines = text.split(/\r?\n/).filter((l) => l !== '');
  if (lines[0]?.trim() !== 'v=0') throw new RtspProtocolError('sdp does not start with v=0');
  let sessionControl: string | undefined;
  const media: SdpMedia[] = [];
  let current:
    | {
        kind: string;
        payloadTypes: number[];
        rtpmaps: Map<number, SdpRtpMap>;
        fmtps: Map<number, string>;
        control?: string;
      }
    | undefined;
  const finish = (): void => {
    if (!current) return;
    const pt = current.payloadTypes[0];
    const rtpmap = pt === undefined ? undefined : current.rtpmaps.get(pt);
    media.push({
      kind: current.kind,
      payloadTypes: current.payloadTypes,
      ...(rtpmap ? { rtpmap } : {}),
      fmtp: parseFmtp(pt === undefined ? undefined : current.fmtps.get(pt)),
      ...(current.control !== undefined ? { control: current.control } : {}),
    });
  };
  for (const raw of lines) {
    const line = raw.trim();
    if (line.startsWith('m=')) {
      finish();
      if (media.length >= MAX_MEDIA) {
        throw new RtspProtocolError(`sdp has more than ${MAX_MEDIA} media sections`);
      }
      const [kind = '', , , ...fmts] = line.slice(2).split(/\s+/);
      current = {
        kind: kind.toLowerCase(),
        payloadTypes: fmts.map(Number).filter((n) => Number.isInteger(n) && n >= 0 && n < 128),
        rtpmaps: new Map(),
        fmtps: new Map(),
      };
      continue;
    }
    if (!line.startsWith('a=')) continue;
    const attr = line.slice(2);
    const colon = attr.indexOf(':');
    const name = (colon < 0 ? attr : attr.slice(0, colon)).toLowerCase();
    const value = colon < 0 ? '' : attr.slice(colon + 1);
    if (name === 'control') {
      if (current) current.control = value.trim();
      else sessionControl = value.trim();
    } else if (current && name === 'rtpmap') {
      const m = /^(\d+)\s+([^/\s]+)\/(\d+)(?:\/(\d+))?/.exec(value);
      if (m) {
        const payloadType = Number(m[1]);
        current.rtpmaps.set(payloadType, {
          payloadType,
          encoding: (m[2] ?? '').toUpperCase(),
          clockRate: Number(m[3]),
          ...(m[4] !== undefined ? { channels: Number(m[4]) } : {}),
        });
      }
    } else if (current && name === 'fmtp') {
      const m = /^(\d+)\s+(.*)$/.exec(value);
      if (m) current.fmtps.set(Number(m[1]), m[2] ?? '');
    }
  }
  finish();
  return { ...(sessionControl !== undefined ? { control: sessionControl } : {}), media };
}

/** `a; b=c;d=e` → map; ffmpeg puts a space after some semicolons (see the fixture). */
function parseFmtp(text: string | undefined): Map<string, string> {
  const out = new Map<string, string>();
  for (const part of (text ?? '').split(';')) {
    const eq = part.indexOf('=');
    if (eq < 0) continue;
    out.set(part.slice(0, eq).trim().toLowerCase(), part.slice(eq + 1).trim());
  }
  return out;
}

/** How a received track is carried in RTP. */
export interface RtpTrackInfo {
  readonly payloadType: number;
  readonly clockRate: number;
  /** The `a=control` value; SETUP URLs end in it. */
  readonly control: string | undefined;
}

export interface VideoRtpInfo extends RtpTrackInfo {
  readonly codec: 'h264' | 'h265';
}

export interface AacRtpInfo extends RtpTrackInfo {
  readonly format: 'mpeg4-generic';
  readonly sizeLength: number;
  readonly indexLength: number;
  readonly indexDeltaLength: number;
}

export interface LatmRtpInfo extends RtpTrackInfo {
  readonly format: 'mp4a-latm';
  readonly latm: LatmConfig;
}

export interface OpusRtpInfo extends RtpTrackInfo {
  readonly format: 'opus';
}

export type AudioRtpInfo = AacRtpInfo | LatmRtpInfo | OpusRtpInfo;

export interface AnnouncedTracks {
  /** Tracks as far as the SDP tells; video without parameter sets waits for them in band. */
  readonly tracks: Tracks;
  readonly video?: VideoRtpInfo;
  readonly audio?: AudioRtpInfo;
  /**
   * Audio or video sections this server cannot carry (`video/VP8`, a second video track, an
   * AAC config it cannot read), with the reason: the ANNOUNCE is refused naming them.
   */
  readonly unsupported: readonly string[];
  /** Other media sections (`application/…`, ONVIF metadata): left out, for the log. */
  readonly ignored: readonly string[];
}

/** What an ANNOUNCE may carry, for the refusal's text. */
export const ANNOUNCE_CODECS = 'video H264, H265; audio MPEG4-GENERIC (AAC), MP4A-LATM (AAC), OPUS';

/**
 * Maps an ANNOUNCE SDP to our tracks: one H.264 or H.265 video and one AAC (MPEG4-GENERIC or
 * MP4A-LATM) or Opus audio section. Everything else of kind audio or video is listed in
 * `unsupported`. Throws RtspProtocolError (415) when there is no media section at all.
 */
export function announcedTracks(desc: SessionDescription): AnnouncedTracks {
  let tracks: Tracks = {};
  let video: VideoRtpInfo | undefined;
  let audio: AudioRtpInfo | undefined;
  const unsupported: string[] = [];
  const ignored: string[] = [];
  for (const m of desc.media) {
    const enc = m.rtpmap?.encoding;
    const pt = m.rtpmap?.payloadType ?? m.payloadTypes[0];
    const name = `${m.kind}/${enc ?? (pt !== undefined ? `payload type ${pt}` : 'unknown')}`;
    if (m.kind !== 'video' && m.kind !== 'audio') {
      ignored.push(name);
      continue;
    }
    if (pt === undefined) {
      unsupported.push(`${name} (no payload type)`);
      continue;
    }
    if ((m.kind === 'video' && video) || (m.kind === 'audio' && audio)) {
      unsupported.push(`${name} (a second ${m.kind} track)`);
      continue;
    }
    const base = { payloadType: pt, control: m.control };
    if (m.kind === 'video' && (enc === 'H264' || enc === 'H265')) {
      const clockRate = m.rtpmap?.clockRate ?? 90_000;
      if (enc === 'H265' && Number(m.fmtp.get('sprop-max-don-diff') ?? 0) > 0) {
        unsupported.push(`${name} (sprop-max-don-diff > 0: decoding order numbers)`);
        continue;
      }
      const codec = enc === 'H264' ? 'h264' : 'h265';
      video = { ...base, clockRate, codec };
      const config =
        codec === 'h264'
          ? avcCFromSprop(m.fmtp.get('sprop-parameter-sets'))
          : hvcCFromSprop(m.fmtp.get('sprop-vps'), m.fmtp.get('sprop-sps'), m.fmtp.get('sprop-pps'));
      if (config) tracks = { ...tracks, video: { kind: 'video', codec, config } };
    } else if (m.kind === 'audio' && enc === 'MPEG4-GENERIC') {
      const asc = Buffer.from(m.fmtp.get('config') ?? '', 'hex');
      const parsed = parseAudioSpecificConfig(asc);
      const sizeLength = Number(m.fmtp.get('sizelength') ?? NaN);
      if (!parsed || !(sizeLength > 0 && sizeLength <= 16)) {
        unsupported.push(`${name} (no usable config or sizelength)`);
        continue;
      }
      audio = {
        ...base,
        format: 'mpeg4-generic',
        clockRate: m.rtpmap?.clockRate ?? parsed.sampleRate,
        sizeLength,
        indexLength: Number(m.fmtp.get('indexlength') ?? 0) || 0,
        indexDeltaLength: Number(m.fmtp.get('indexdeltalength') ?? 0) || 0,
      };
      tracks = {
        ...tracks,
        audio: aacTrack(asc, parsed.sampleRate, parsed.channels || (m.rtpmap?.channels ?? 1)),
      };
    } else if (m.kind === 'audio' && enc === 'MP4A-LATM') {
      // RFC 6416 §7.1: cpresent=0 puts the StreamMuxConfig in `config`; cpresent=1 (the
      // default) puts it in band, in every element, which no RTSP publisher we know sends.
      const config = m.fmtp.get('config');
      if (m.fmtp.get('cpresent') !== '0' || !config || !/^([0-9a-f]{2})+$/i.test(config)) {
        unsupported.push(`${name} (only cpresent=0 with a config is supported)`);
        continue;
      }
      let latm: LatmConfig;
      try {
        latm = parseStreamMuxConfig(Buffer.from(config, 'hex'));
      } catch (err) {
        if (!(err instanceof RtspProtocolError)) throw err;
        unsupported.push(`${name} (${err.message})`);
        continue;
      }
      audio = { ...base, format: 'mp4a-latm', clockRate: m.rtpmap?.clockRate ?? latm.aac.sampleRate, latm };
      tracks = {
        ...tracks,
        audio: aacTrack(latm.asc, latm.aac.sampleRate, latm.aac.channels || (m.rtpmap?.channels ?? 1)),
      };
    } else if (m.kind === 'audio' && enc === 'OPUS') {
      if (m.rtpmap?.clockRate !== OPUS_RTP_CLOCK) {
        unsupported.push(`${name} (clock rate is not ${OPUS_RTP_CLOCK})`);
        continue;
      }
      audio = { ...base, format: 'opus', clockRate: OPUS_RTP_CLOCK };
      const channels = m.fmtp.get('sprop-stereo') === '1' ? 2 : 1;
      tracks = {
        ...tracks,
        audio: {
          kind: 'audio',
          codec: 'opus',
          config: Buffer.alloc(0),
          sampleRate: OPUS_RTP_CLOCK,
          channels,
        },
      };
    } else {
      unsupported.push(name);
    }
  }
  if (!video && !audio && unsupported.length === 0) {
    throw new RtspProtocolError('sdp has no audio or video media section', 415);
  }
  return {
    tracks,
    ...(video ? { video } : {}),
    ...(audio ? { audio } : {}),
    unsupported,
    ignored,
  };
}

function aacTrack(config: Buffer, sampleRate: number, channels: number): AudioTrack {
  return { kind: 'audio', codec: 'aac', config, sampleRate, channels };
}

/** sprop-vps/sps/pps (RFC 7798 §7.1: base64 NAL units, comma-separated) → hvcC, when all three are there. */
export function hvcCFromSprop(
  vps: string | undefined,
  sps: string | undefined,
  pps: string | undefined,
): Buffer | undefined {
  const nals = (text: string | undefined, type: number): Buffer[] =>
    (text ?? '')
      .split(',')
      .map((p) => Buffer.from(p.trim(), 'base64'))
      .filter((n) => n.length > 2 && hevcNalType(n) === type);
  const v = nals(vps, HevcNalType.VPS);
  const s = nals(sps, HevcNalType.SPS);
  const p = nals(pps, HevcNalType.PPS);
  return v.length > 0 && s.length > 0 && p.length > 0 ? buildHvcC(v, s, p) : undefined;
}

/** sprop-parameter-sets (RFC 6184 §8.1: base64 NAL units, comma-separated) → avcC, when SPS and PPS are both there. */
export function avcCFromSprop(sprop: string | undefined): Buffer | undefined {
  if (!sprop) return undefined;
  const sps: Buffer[] = [];
  const pps: Buffer[] = [];
  for (const part of sprop.split(',')) {
    const nal = Buffer.from(part.trim(), 'base64');
    if (nal.length === 0) continue;
    if (nalType(nal) === NalType.SPS) sps.push(nal);
    else if (nalType(nal) === NalType.PPS) pps.push(nal);
  }
  return sps.length > 0 && pps.length > 0 ? buildAvcC(sps, pps) : undefined;
}
