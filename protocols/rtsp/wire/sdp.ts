/**
 * SDP (RFC 4566) for RTSP: the writer behind DESCRIBE answers and the reader for the SDP a
 * publisher sends in ANNOUNCE. Two codecs only, the ones our media model carries: H.264
 * (RFC 6184 §8.1: packetization-mode, sprop-parameter-sets, profile-level-id) and AAC as
 * MPEG4-GENERIC in AAC-hbr mode (RFC 3640 §3.3.6).
 */
import { parseAudioSpecificConfig } from '../../../src/media/aac.js';
import { buildAvcC, nalType, NalType, parseAvcC } from '../../../src/media/h264.js';
import type { AudioTrack, Tracks, VideoTrack } from '../../../src/media/types.js';
import { RtspProtocolError } from './errors.js';

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
  const audio = tracks.audio;
  if (audio?.codec === 'aac') lines.push(...aacMedia(audio));
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

export interface AacRtpInfo extends RtpTrackInfo {
  readonly sizeLength: number;
  readonly indexLength: number;
  readonly indexDeltaLength: number;
}

export interface AnnouncedTracks {
  /** Tracks as far as the SDP tells; video without sprop-parameter-sets waits for in-band SPS/PPS. */
  readonly tracks: Tracks;
  readonly video?: RtpTrackInfo;
  readonly audio?: AacRtpInfo;
  /** Media sections we cannot carry (`video/H265`, `audio/opus`, …), for the log. */
  readonly ignored: readonly string[];
}

/**
 * Maps an ANNOUNCE SDP to our tracks: the first H.264 video and the first AAC audio section.
 * Throws RtspProtocolError (415) when neither is present.
 */
export function announcedTracks(desc: SessionDescription): AnnouncedTracks {
  let tracks: Tracks = {};
  let video: RtpTrackInfo | undefined;
  let audio: AacRtpInfo | undefined;
  const ignored: string[] = [];
  for (const m of desc.media) {
    const enc = m.rtpmap?.encoding;
    const pt = m.rtpmap?.payloadType ?? m.payloadTypes[0];
    if (m.kind === 'video' && enc === 'H264' && !video && pt !== undefined) {
      video = { payloadType: pt, clockRate: m.rtpmap?.clockRate ?? 90_000, control: m.control };
      const config = avcCFromSprop(m.fmtp.get('sprop-parameter-sets'));
      if (config) tracks = { ...tracks, video: { kind: 'video', codec: 'h264', config } };
    } else if (m.kind === 'audio' && enc === 'MPEG4-GENERIC' && !audio && pt !== undefined) {
      const asc = Buffer.from(m.fmtp.get('config') ?? '', 'hex');
      const parsed = parseAudioSpecificConfig(asc);
      const sizeLength = Number(m.fmtp.get('sizelength') ?? NaN);
      if (!parsed || !(sizeLength > 0 && sizeLength <= 16)) {
        ignored.push('audio/MPEG4-GENERIC without a usable config or sizelength');
        continue;
      }
      audio = {
        payloadType: pt,
        clockRate: m.rtpmap?.clockRate ?? parsed.sampleRate,
        control: m.control,
        sizeLength,
        indexLength: Number(m.fmtp.get('indexlength') ?? 0) || 0,
        indexDeltaLength: Number(m.fmtp.get('indexdeltalength') ?? 0) || 0,
      };
      tracks = {
        ...tracks,
        audio: {
          kind: 'audio',
          codec: 'aac',
          config: asc,
          sampleRate: parsed.sampleRate,
          channels: parsed.channels || (m.rtpmap?.channels ?? 1),
        },
      };
    } else {
      ignored.push(`${m.kind}/${enc ?? 'unknown'}`);
    }
  }
  if (!video && !audio) throw new RtspProtocolError('sdp has neither h264 video nor aac audio', 415);
  return { tracks, ...(video ? { video } : {}), ...(audio ? { audio } : {}), ignored };
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
