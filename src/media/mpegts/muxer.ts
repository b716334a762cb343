/**
 * MPEG-TS muxer (ISO/IEC 13818-1) for one program with at most one video and one audio
 * elementary stream.
 *
 * Hand-written rather than taken from mux.js (browser-oriented, and a demuxer/remuxer
 * for our purposes): a live origin muxes each stream once and fans the same bytes out to
 * every HTTP-TS viewer and HLS segmenter, so the muxer must be deterministic (same frames
 * in → same bytes out), allocation-light and free of I/O and timers.
 *
 * Layout: PAT on PID 0, PMT on PID 0x1000, video on 0x100, audio on 0x101. PAT+PMT are
 * emitted in front of every video keyframe (every AUDIO_ONLY_TABLES_INTERVAL for
 * audio-only streams), so any output cut at a keyframe — an HLS segment, a viewer joining
 * at the GOP cache — is decodable on its own.
 */
import { ADTS_HEADER_SIZE, adtsHeader, buildAudioSpecificConfig } from '../aac.js';
import { NalType, nalType, parseAvcC, splitAvcc } from '../h264.js';
import { HevcNalType, hevcNalType, isIrap, parseHvcC } from '../h265.js';
import type { Frame, Tracks } from '../types.js';
import { crc32 } from './crc32.js';

export const TS_PACKET_SIZE = 188;
export const PMT_PID = 0x1000;
export const VIDEO_PID = 0x100;
export const AUDIO_PID = 0x101;

/** stream_type values (ISO/IEC 13818-1 Table 2-34). */
export const StreamType = {
  AAC_ADTS: 0x0f,
  H264: 0x1b,
  H265: 0x24,
  PES_PRIVATE: 0x06,
} as const;

/**
 * Maximum DTS distance between PCRs on the PCR PID. 13818-1 §2.7.2 allows 100 ms; a
 * smaller target keeps the actual spacing (target + one frame interval) under that limit.
 */
const PCR_INTERVAL = 3600;
/** Audio-only streams have no keyframes to hang PAT/PMT on: repeat them every 0.5 s. */
const AUDIO_ONLY_TABLES_INTERVAL = 45000;

const WRAP = 2 ** 33;
const wrap33 = (t: number): number => ((Math.round(t) % WRAP) + WRAP) % WRAP;

const START_CODE = Buffer.from([0, 0, 0, 1]);
/** H.264 access unit delimiter, primary_pic_type 7 (any slice type); required in TS by §2.14. */
const H264_AUD = Buffer.from([0, 0, 0, 1, 0x09, 0xf0]);
/** H.265 access unit delimiter, pic_type 2 (any slice type). */
const H265_AUD = Buffer.from([0, 0, 0, 1, 0x46, 0x01, 0x50]);

interface EsInfo {
  pid: number;
  streamType: number;
  streamId: number;
  descriptors: Buffer;
}

export class TsMuxer {
  private readonly cc = new Map<number, number>();
  private readonly video: EsInfo | undefined;
  private readonly audio: EsInfo | undefined;
  private readonly pcrPid: number;
  /** Annex B parameter sets to insert before keyframes that do not carry their own. */
  private readonly paramSets: Buffer;
  private readonly lengthSize: number;
  private readonly aacHeader: Buffer | undefined;
  private readonly opus: boolean;
  private lastPcr: number | undefined;
  private lastTables: number | undefined;

  constructor(private readonly tracks: Tracks) {
    const v = tracks.video;
    const a = tracks.audio;
    let paramSets: Buffer[] = [];
    let lengthSize = 4;
    if (v) {
      const hevc = v.codec === 'h265';
      this.video = {
        pid: VIDEO_PID,
        streamType: hevc ? StreamType.H265 : StreamType.H264,
        streamId: 0xe0,
        descriptors: Buffer.alloc(0),
      };
      if (hevc) {
        const cfg = parseHvcC(v.config);
        if (cfg) paramSets = [...cfg.vps, ...cfg.sps, ...cfg.pps];
        lengthSize = cfg?.lengthSize ?? 4;
      } else {
        const cfg = parseAvcC(v.config);
        if (cfg) paramSets = [...cfg.sps, ...cfg.pps];
        lengthSize = cfg?.lengthSize ?? 4;
      }
    }
    this.paramSets = Buffer.concat(paramSets.flatMap((nal) => [START_CODE, nal]));
    this.lengthSize = lengthSize;
    this.opus = a?.codec === 'opus';
    if (a) {
      if (a.codec === 'opus') {
        // Per the ETSI "Opus in MPEG-2 TS" draft (v0.1.3, as FFmpeg implements it): registration
        // descriptor 'Opus', DVB extension descriptor 0x80 with channel_config_code, and PES
        // stream_id private_stream_1. Codes 1..8 assume mapping family 0/1 channel orders.
        this.audio = {
          pid: AUDIO_PID,
          streamType: StreamType.PES_PRIVATE,
          streamId: 0xbd,
          descriptors: Buffer.from([0x05, 4, 0x4f, 0x70, 0x75, 0x73, 0x7f, 2, 0x80, a.channels & 0xff]),
        };
      } else {
        // Without a usable ASC, assume AAC-LC at the track's rate and layout.
        const asc =
          a.config.length >= 2
            ? a.config
            : buildAudioSpecificConfig({ objectType: 2, sampleRate: a.sampleRate, channels: a.channels });
        // Throws (RangeError) for configurations ADTS cannot signal; better at setup than per frame.
        this.aacHeader = adtsHeader(asc, 0);
        this.audio = {
          pid: AUDIO_PID,
          streamType: StreamType.AAC_ADTS,
          streamId: 0xc0,
          descriptors: Buffer.alloc(0),
        };
      }
    }
    this.pcrPid = this.video?.pid ?? this.audio?.pid ?? VIDEO_PID;
  }

  /** PAT followed by PMT, two packets. Advances the PSI continuity counters. */
  tables(): Buffer {
    const out = Buffer.alloc(2 * TS_PACKET_SIZE, 0xff);
    this.writePsi(out, 0, 0, this.pat());
    this.writePsi(out, TS_PACKET_SIZE, PMT_PID, this.pmt());
    return out;
  }

  /** Whole packets for one frame; empty for a frame of a kind the tracks do not declare. */
  mux(frame: Frame): Buffer {
    const es = frame.kind === 'video' ? this.video : this.audio;
    if (!es) return Buffer.alloc(0);
    const randomAccess = frame.kind === 'video' ? frame.keyframe : !this.video && this.dueTables(frame.dts);
    let tables: Buffer | undefined;
    if (randomAccess) {
      tables = this.tables();
      this.lastTables = frame.dts;
    }
    let pcr: number | undefined;
    const pcrDue = this.lastPcr === undefined || frame.dts - this.lastPcr >= PCR_INTERVAL;
    if (es.pid === this.pcrPid && (randomAccess || pcrDue)) {
      pcr = frame.dts;
      this.lastPcr = frame.dts;
    }
    const payload = frame.kind === 'video' ? this.videoPayload(frame) : this.audioPayload(frame);
    const pes = this.pes(es, frame, payload);
    const packets = this.packetize(es.pid, pes, randomAccess, pcr);
    return tables ? Buffer.concat([tables, packets]) : packets;
  }

  private dueTables(dts: number): boolean {
    return this.lastTables === undefined || dts - this.lastTables >= AUDIO_ONLY_TABLES_INTERVAL;
  }

  private videoPayload(frame: Frame): Buffer {
    const hevc = this.tracks.video?.codec === 'h265';
    const nals = splitAvcc(frame.data, this.lengthSize);
    const parts: Buffer[] = [hevc ? H265_AUD : H264_AUD];
    let hasParamSets = false;
    let irap = false;
    for (const nal of nals) {
      const t = hevc ? hevcNalType(nal) : nalType(nal);
      if (hevc ? t === HevcNalType.SPS : t === NalType.SPS) hasParamSets = true;
      if (hevc && isIrap(nal)) irap = true;
    }
    if ((frame.keyframe || irap) && !hasParamSets && this.paramSets.length > 0) parts.push(this.paramSets);
    for (const nal of nals) {
      const t = hevc ? hevcNalType(nal) : nalType(nal);
      // Our delimiter replaces any the source sent: exactly one AUD must start the AU.
      if (t === (hevc ? HevcNalType.AUD : NalType.AUD)) continue;
      parts.push(START_CODE, nal);
    }
    return Buffer.concat(parts);
  }

  private audioPayload(frame: Frame): Buffer {
    if (this.opus) {
      // opus_control_header: prefix 0x3FF, no trim/extension flags, then au_size as 0xFF* + rest.
      const n = frame.data.length;
      const header = Buffer.alloc(2 + Math.floor(n / 255) + 1, 0xff);
      header[0] = 0x7f;
      header[1] = 0xe0;
      header[header.length - 1] = n % 255;
      return Buffer.concat([header, frame.data]);
    }
    const header = Buffer.from(this.aacHeader ?? Buffer.alloc(ADTS_HEADER_SIZE));
    const len = frame.data.length + ADTS_HEADER_SIZE;
    if (len > 0x1fff) return Buffer.alloc(0);
    header[3] = ((header[3] ?? 0) & 0xfc) | (len >> 11);
    header[4] = (len >> 3) & 0xff;
    header[5] = ((len & 7) << 5) | 0x1f;
    return Buffer.concat([header, frame.data]);
  }

  /** PES packet (§2.4.3.6): PTS always, DTS only when it differs. */
  private pes(es: EsInfo, frame: Frame, payload: Buffer): Buffer {
    const withDts = frame.dts !== frame.pts;
    const headerDataLength = withDts ? 10 : 5;
    const h = Buffer.alloc(9 + headerDataLength);
    h.writeUIntBE(0x000001, 0, 3);
    h[3] = es.streamId;
    const length = 3 + headerDataLength + payload.length;
    // 0 ("unbounded") is only allowed for video; audio PES always fit 16 bits in practice.
    h.writeUInt16BE(es.streamId === 0xe0 || length > 0xffff ? 0 : length, 4);
    h[6] = 0x84; // '10', data_alignment_indicator: the PES starts with an access unit
    h[7] = withDts ? 0xc0 : 0x80;
    h[8] = headerDataLength;
    writeTimestamp(h, 9, withDts ? 3 : 2, frame.pts);
    if (withDts) writeTimestamp(h, 14, 1, frame.dts);
    return Buffer.concat([h, payload]);
  }

  private nextCc(pid: number): number {
    const cc = this.cc.get(pid) ?? 15;
    const next = (cc + 1) & 0xf;
    this.cc.set(pid, next);
    return next;
  }

  /** Splits a PES into packets; the last one is padded with adaptation-field stuffing. */
  private packetize(pid: number, pes: Buffer, randomAccess: boolean, pcr: number | undefined): Buffer {
    const firstAf = randomAccess || pcr !== undefined ? 2 + (pcr !== undefined ? 6 : 0) : 0;
    const firstCap = 184 - firstAf;
    const count = pes.length <= firstCap ? 1 : 1 + Math.ceil((pes.length - firstCap) / 184);
    const out = Buffer.alloc(count * TS_PACKET_SIZE, 0xff);
    let off = 0;
    for (let i = 0; i < count; i++) {
      const p = i * TS_PACKET_SIZE;
      const first = i === 0;
      const afBase = first ? firstAf : 0;
      const remaining = pes.length - off;
      const take = Math.min(remaining, 184 - afBase);
      // Adaptation field length including its length byte; stuffing fills what payload does not.
      const af = 184 - take;
      out[p] = 0x47;
      out[p + 1] = (first ? 0x40 : 0) | (pid >> 8);
      out[p + 2] = pid & 0xff;
      out[p + 3] = (af > 0 ? 0x30 : 0x10) | this.nextCc(pid);
      if (af > 0) {
        out[p + 4] = af - 1;
        if (af > 1) {
          let flags = 0;
          if (first && randomAccess) flags |= 0x40;
          if (first && pcr !== undefined) {
            flags |= 0x10;
            writePcr(out, p + 6, pcr);
          }
          out[p + 5] = flags;
          // Bytes after flags/PCR stay 0xFF (stuffing_byte) from the fill above.
        }
      }
      pes.copy(out, p + 4 + af, off, off + take);
      off += take;
    }
    return out;
  }

  private pat(): Buffer {
    return section(0x00, 1, Buffer.from([0x00, 0x01, 0xe0 | (PMT_PID >> 8), PMT_PID & 0xff]));
  }

  private pmt(): Buffer {
    const streams: Buffer[] = [];
    for (const es of [this.video, this.audio]) {
      if (!es) continue;
      const entry = Buffer.alloc(5);
      entry[0] = es.streamType;
      entry.writeUInt16BE(0xe000 | es.pid, 1);
      entry.writeUInt16BE(0xf000 | es.descriptors.length, 3);
      streams.push(entry, es.descriptors);
    }
    const head = Buffer.alloc(4);
    head.writeUInt16BE(0xe000 | this.pcrPid, 0);
    head.writeUInt16BE(0xf000, 2); // program_info_length 0
    return section(0x02, 1, Buffer.concat([head, ...streams]));
  }

  private writePsi(out: Buffer, p: number, pid: number, sec: Buffer): void {
    out[p] = 0x47;
    out[p + 1] = 0x40 | (pid >> 8);
    out[p + 2] = pid & 0xff;
    out[p + 3] = 0x10 | this.nextCc(pid);
    out[p + 4] = 0; // pointer_field
    sec.copy(out, p + 5);
  }
}

/** A long-form PSI section (§2.4.4.1) with version 0, current, section 0 of 0, and CRC_32. */
function section(tableId: number, idExtension: number, body: Buffer): Buffer {
  const s = Buffer.alloc(8 + body.length + 4);
  s[0] = tableId;
  s.writeUInt16BE(0xb000 | (5 + body.length + 4), 1); // section_syntax_indicator, '0', reserved
  s.writeUInt16BE(idExtension, 3);
  s[5] = 0xc1; // reserved, version_number 0, current_next_indicator 1
  s[6] = 0;
  s[7] = 0;
  body.copy(s, 8);
  s.writeUInt32BE(crc32(s, 0, s.length - 4), s.length - 4);
  return s;
}

/** PTS/DTS field (§2.4.3.7): 4-bit prefix, 33 bits split 3/15/15 with marker bits. */
function writeTimestamp(buf: Buffer, pos: number, prefix: number, t: number): void {
  const v = wrap33(t);
  const hi = Math.floor(v / 2 ** 30); // bits 32..30
  const mid = Math.floor(v / 2 ** 15) & 0x7fff;
  const lo = v & 0x7fff;
  buf[pos] = (prefix << 4) | (hi << 1) | 1;
  buf.writeUInt16BE((mid << 1) | 1, pos + 1);
  buf.writeUInt16BE((lo << 1) | 1, pos + 3);
}

/** program_clock_reference (§2.4.3.5): 33-bit base at 90 kHz, 6 reserved bits, extension 0. */
function writePcr(buf: Buffer, pos: number, t: number): void {
  const base = wrap33(t);
  buf.writeUInt32BE(Math.floor(base / 2), pos);
  buf[pos + 4] = ((base & 1) << 7) | 0x7e;
  buf[pos + 5] = 0;
}
