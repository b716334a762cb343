/**
 * Sans-IO MPEG-TS demuxer (ISO/IEC 13818-1): Buffers in, tracks and frames out.
 *
 * Hand-written because mux.js targets browsers and transmuxing to fMP4, while ingest here
 * needs a small push parser over Node Buffers that turns TS into the shared media model
 * (AVCC video, raw AAC, a monotonic 90 kHz timeline) and survives hostile input: it never
 * throws on bad bytes, counts them in `errors` and resynchronises.
 *
 * Handles: packet sync/resync (§2.4.3.2), adaptation fields (§2.4.3.4), continuity
 * counters (§2.4.3.3), PAT/PMT sections with CRC (§2.4.4), PES headers (§2.4.3.6/7),
 * H.264 (stream_type 0x1B), H.265 (0x24), AAC in ADTS (0x0F) and Opus (0x06 + 'Opus').
 * Other streams are ignored. Scrambled packets are not supported (treated as payload).
 * The pure pieces live beside it: PES headers and timestamps (pes.ts), PAT/PMT contents
 * (psi.ts), Opus access units (opus.ts).
 */
import { AAC_FRAME_SAMPLES, splitAdts } from '../aac.js';
import { NalType, buildAvcC, nalType, nalsToAvcc, splitAnnexB, spsDimensions } from '../h264.js';
import { HevcNalType, buildHvcC, hevcNalType, isIrap, parseHevcSps } from '../h265.js';
import type { AudioTrack, Frame, Tracks, VideoTrack } from '../types.js';
import { crc32 } from './crc32.js';
import { TS_PACKET_SIZE } from './muxer.js';
import { opusSamples, splitOpusAccessUnits } from './opus.js';
import { patPmtPid, pmtStreams, type EsCodec } from './psi.js';
import { parsePesHeader, signed33, WRAP } from './pes.js';

export type DemuxEvent = { kind: 'tracks'; tracks: Tracks } | { kind: 'frame'; frame: Frame };

const SYNC = 0x47;
/**
 * Upper bound on one PES packet. Video PES usually declare length 0 ("until the next
 * unit start"), so a source that never sends another payload_unit_start would otherwise
 * grow the buffer without limit. 8 MiB is far above any real access unit (a 4K intra
 * picture at broadcast bitrates is 1–3 MiB).
 */
const MAX_PES_SIZE = 8 * 1024 * 1024;
/** PSI sections are at most 1024 bytes (§2.4.4.10: section_length ≤ 1021). */
const MAX_SECTION_SIZE = 1024;
/**
 * Frames held back while waiting for every advertised track's configuration. A PMT may
 * list a stream that never sends data (or whose SPS arrives late); after this many frames
 * we start with the tracks we know and announce the rest when they appear.
 */
const MAX_PENDING_FRAMES = 300;
/**
 * A DTS more than this far behind the previous one of the same stream is a source
 * discontinuity (encoder restart, splice) rather than jitter: the timeline is re-anchored
 * to continue DISCONTINUITY_STEP after the last frame, keeping it monotonic.
 */
const MAX_BACKWARD_JUMP = 90000;
const DISCONTINUITY_STEP = 3000;

interface EsState {
  pid: number;
  codec: EsCodec;
  cc: number | undefined;
  chunks: Buffer[];
  size: number;
  /** Total PES bytes when PES_packet_length is set, else 0 (ends at the next unit start). */
  expected: number;
  active: boolean;
  /** DTS of the last frame emitted from this stream (the monotonicity reference). */
  lastDts: number | undefined;
  /** Video: PTS of the last frame. Audio: PTS expected for the next frame. */
  lastPts: number | undefined;
  channels: number;
}

const EMPTY = Buffer.alloc(0);

export class TsDemuxer {
  /** Packets, sections and PES packets skipped as malformed (plus lost-sync events). */
  public errors = 0;

  private buf: Buffer = EMPTY;
  private synced = false;
  private inGarbage = false;
  private pmtPid: number | undefined;
  private readonly sections = new Map<number, Buffer>();
  private readonly streams = new Map<number, EsState>();
  private videoPid: number | undefined;
  private audioPid: number | undefined;
  private video: VideoTrack | undefined;
  private audio: AudioTrack | undefined;
  private vps: Buffer[] = [];
  private sps: Buffer[] = [];
  private pps: Buffer[] = [];
  private started = false;
  private tracksDirty = false;
  private pending: Frame[] = [];
  private tsRef: number | undefined;
  /** Added to unwrapped timestamps; changes only at discontinuities. */
  private offset = 0;
  /**
   * The last DTS of an output track's stream that a PMT replaced (new PID or codec): the stream
   * taking over continues that timeline rather than starting one of its own, which could go back.
   */
  private readonly handover = new Map<Frame['kind'], number>();

  /**
   * Consumes bytes in any chunking. The demuxer keeps references into `data` until the
   * PES packets it contains are complete, so callers must not reuse the buffer.
   */
  push(data: Buffer): DemuxEvent[] {
    const events: DemuxEvent[] = [];
    const buf = this.buf.length > 0 ? Buffer.concat([this.buf, data]) : data;
    const n = buf.length;
    let pos = 0;
    while (pos + TS_PACKET_SIZE <= n) {
      if (!this.synced) {
        // Lock only on three sync bytes at packet spacing: 0x47 alone is common in payload.
        if (buf[pos] !== SYNC || (pos + 2 * TS_PACKET_SIZE < n && !this.syncAt(buf, pos))) {
          if (!this.inGarbage) this.errors++;
          this.inGarbage = true;
          pos++;
          continue;
        }
        if (pos + 2 * TS_PACKET_SIZE >= n) break; // wait to see the next two sync bytes
        this.synced = true;
        this.inGarbage = false;
      } else if (buf[pos] !== SYNC) {
        this.synced = false;
        continue;
      }
      this.packet(buf.subarray(pos, pos + TS_PACKET_SIZE), events);
      pos += TS_PACKET_SIZE;
    }
    // Copy the short tail so the caller's (possibly large) chunk is not retained by it.
    this.buf = pos < n ? Buffer.from(buf.subarray(pos)) : EMPTY;
    return events;
  }

  /** Ends the input: completes PES packets still open and releases held-back frames. */
  flush(): DemuxEvent[] {
    const events: DemuxEvent[] = [];
    if (!this.synced && this.buf.length >= TS_PACKET_SIZE && this.buf[0] === SYNC) {
      // At end of input fewer than three sync bytes may remain; accept what lines up.
      for (let pos = 0; pos + TS_PACKET_SIZE <= this.buf.length; pos += TS_PACKET_SIZE) {
        if (this.buf[pos] !== SYNC) break;
        this.packet(this.buf.subarray(pos, pos + TS_PACKET_SIZE), events);
      }
    }
    this.buf = EMPTY;
    for (const es of this.streams.values()) {
      if (es.active) this.finishPes(es, events);
    }
    if (!this.started && this.pending.length > 0) this.start(events);
    return events;
  }

  private syncAt(buf: Buffer, pos: number): boolean {
    return buf[pos + TS_PACKET_SIZE] === SYNC && buf[pos + 2 * TS_PACKET_SIZE] === SYNC;
  }

  private packet(p: Buffer, events: DemuxEvent[]): void {
    const b1 = p[1] ?? 0;
    const b3 = p[3] ?? 0;
    if (b1 & 0x80) {
      this.errors++; // transport_error_indicator: the packet is known to be damaged
      return;
    }
    const pusi = (b1 & 0x40) !== 0;
    const pid = ((b1 & 0x1f) << 8) | (p[2] ?? 0);
    const afc = (b3 >> 4) & 3;
    if (afc === 0) {
      this.errors++;
      return;
    }
    let off = 4;
    let discontinuity = false;
    if (afc & 2) {
      const afl = p[4] ?? 0;
      if (afl > (afc === 3 ? 182 : 183)) {
        this.errors++;
        return;
      }
      if (afl > 0) discontinuity = ((p[5] ?? 0) & 0x80) !== 0;
      off = 5 + afl;
    }
    if (!(afc & 1) || pid === 0x1fff) return;
    const payload = p.subarray(off);
    if (pid === 0 || pid === this.pmtPid) {
      this.psi(pid, pusi, payload, events);
      return;
    }
    const es = this.streams.get(pid);
    if (es) this.esPacket(es, pusi, b3 & 0xf, discontinuity, payload, events);
  }

  // ---- PSI ---------------------------------------------------------------------------

  private psi(pid: number, pusi: boolean, payload: Buffer, events: DemuxEvent[]): void {
    let acc = this.sections.get(pid);
    if (pusi) {
      const pointer = payload[0] ?? 0;
      if (1 + pointer > payload.length) {
        this.errors++;
        this.sections.delete(pid);
        return;
      }
      if (acc) this.drainSections(pid, Buffer.concat([acc, payload.subarray(1, 1 + pointer)]), events);
      acc = payload.subarray(1 + pointer);
    } else {
      if (!acc) return;
      acc = Buffer.concat([acc, payload]);
    }
    const rest = this.drainSections(pid, acc, events);
    if (rest.length > 0) this.sections.set(pid, Buffer.from(rest));
    else this.sections.delete(pid);
  }

  /** Handles the complete sections at the start of `acc`; returns the incomplete remainder. */
  private drainSections(pid: number, acc: Buffer, events: DemuxEvent[]): Buffer {
    while (acc.length >= 3) {
      if (acc[0] === 0xff) return EMPTY; // stuffing: no further sections in this packet
      const len = 3 + ((((acc[1] ?? 0) & 0x0f) << 8) | (acc[2] ?? 0));
      if (len > MAX_SECTION_SIZE || len < 12) {
        this.errors++;
        return EMPTY;
      }
      if (acc.length < len) return acc;
      this.section(pid, acc.subarray(0, len), events);
      acc = acc.subarray(len);
    }
    return acc;
  }

  private section(pid: number, s: Buffer, events: DemuxEvent[]): void {
    if (crc32(s) !== 0 || !((s[1] ?? 0) & 0x80)) {
      this.errors++;
      return;
    }
    if (!((s[5] ?? 0) & 1)) return; // current_next_indicator 0: not yet applicable
    const end = s.length - 4;
    if (pid === 0 && s[0] === 0x00) {
      const pmtPid = patPmtPid(s, end);
      if (pmtPid !== undefined && pmtPid !== this.pmtPid) {
        this.pmtPid = pmtPid;
        this.sections.delete(pmtPid);
      }
    } else if (pid === this.pmtPid && s[0] === 0x02) {
      this.pmt(s, end, events);
    }
  }

  private pmt(s: Buffer, end: number, events: DemuxEvent[]): void {
    const { videoPid, audioPid, found } = pmtStreams(s, end);
    for (const [pid, es] of this.streams) {
      const now = found.get(pid);
      if (!now || now.codec !== es.codec) {
        if (es.active) this.finishPes(es, events);
        if (es.lastDts !== undefined && (pid === this.videoPid || pid === this.audioPid)) {
          this.handover.set(kindOf(es.codec), es.lastDts);
        }
        this.streams.delete(pid);
      }
    }
    for (const [pid, { codec, channels }] of found) {
      if (this.streams.has(pid)) continue;
      this.streams.set(pid, {
        pid,
        codec,
        cc: undefined,
        chunks: [],
        size: 0,
        expected: 0,
        active: false,
        lastDts: undefined,
        lastPts: undefined,
        channels,
      });
    }
    const videoCodec = videoPid === undefined ? undefined : found.get(videoPid)?.codec;
    if (this.video && this.video.codec !== videoCodec) {
      this.video = undefined;
      this.vps = [];
      this.sps = [];
      this.pps = [];
      this.tracksDirty = true;
      this.dropPending('video');
    }
    const audioCodec = audioPid === undefined ? undefined : found.get(audioPid)?.codec;
    if (this.audio && this.audio.codec !== audioCodec) {
      this.audio = undefined;
      this.tracksDirty = true;
      this.dropPending('audio');
    }
    this.videoPid = videoPid;
    this.audioPid = audioPid;
  }

  /**
   * Held-back frames of a track the PMT just removed or changed: the tracks event that
   * `start()` emits would not describe them.
   */
  private dropPending(kind: Frame['kind']): void {
    this.pending = this.pending.filter((f) => f.kind !== kind);
  }

  // ---- PES ---------------------------------------------------------------------------

  private esPacket(
    es: EsState,
    pusi: boolean,
    cc: number,
    discontinuity: boolean,
    payload: Buffer,
    events: DemuxEvent[],
  ): void {
    if (es.cc !== undefined && !discontinuity) {
      if (cc === es.cc) return; // duplicate packet (§2.4.3.3): already consumed
      if (cc !== ((es.cc + 1) & 0xf)) {
        // Lost packets: the open PES has a hole, so drop it rather than emit a corrupt frame.
        this.errors++;
        this.resetPes(es);
      }
    }
    es.cc = cc;
    if (pusi) {
      if (es.active) this.finishPes(es, events);
      es.active = true;
      es.chunks = [payload];
      es.size = payload.length;
      es.expected = 0;
      if (payload.length >= 6 && payload[0] === 0 && payload[1] === 0 && payload[2] === 1) {
        const len = payload.readUInt16BE(4);
        if (len > 0) es.expected = 6 + len;
      }
    } else {
      if (!es.active) return; // joined mid-PES: wait for the next unit start
      es.chunks.push(payload);
      es.size += payload.length;
      if (es.size > MAX_PES_SIZE) {
        this.errors++;
        this.resetPes(es);
        return;
      }
    }
    // A bounded PES is complete once its length is reached: emit it without waiting.
    if (es.expected > 0 && es.size >= es.expected) this.finishPes(es, events);
  }

  private resetPes(es: EsState): void {
    es.active = false;
    es.chunks = [];
    es.size = 0;
    es.expected = 0;
  }

  private finishPes(es: EsState, events: DemuxEvent[]): void {
    const data = es.chunks.length === 1 ? (es.chunks[0] ?? EMPTY) : Buffer.concat(es.chunks, es.size);
    const expected = es.expected;
    this.resetPes(es);
    const header = parsePesHeader(data, expected);
    if (header === undefined) {
      this.errors++;
      return;
    }
    let dts: number | undefined;
    let pts: number | undefined;
    if (header.ptsRaw !== undefined && header.dtsRaw !== undefined) {
      const { ptsRaw, dtsRaw } = header;
      dts = this.unwrap(dtsRaw) + this.offset;
      pts = dts + signed33(ptsRaw - dtsRaw);
      const last = es.lastDts ?? this.handover.get(kindOf(es.codec));
      if (last !== undefined && dts < last) {
        if (last - dts > MAX_BACKWARD_JUMP) {
          const shift = last + DISCONTINUITY_STEP - dts;
          this.offset += shift;
          dts += shift;
          pts += shift;
        } else {
          dts = last; // small step back: clamp rather than drop a picture the decoder needs
        }
      }
      if (pts < dts) pts = dts; // Frame contract: pts ≥ dts, even for damaged input
    }
    const payload = data.subarray(header.start, header.end);
    if (es.codec === 'h264' || es.codec === 'h265') this.videoPes(es, payload, dts, pts, events);
    else if (es.codec === 'aac') this.aacPes(es, payload, pts, events);
    else this.opusPes(es, payload, pts, events);
  }

  /** Maps a 33-bit timestamp to the time nearest the previous one: unwraps 2^33 rollover. */
  private unwrap(raw: number): number {
    if (this.tsRef === undefined) {
      this.tsRef = raw;
      return raw;
    }
    const t = this.tsRef + signed33(raw - (((this.tsRef % WRAP) + WRAP) % WRAP));
    this.tsRef = t;
    return t;
  }

  private videoPes(
    es: EsState,
    payload: Buffer,
    dts: number | undefined,
    pts: number | undefined,
    events: DemuxEvent[],
  ): void {
    // §2.4.3.7 allows PES without PTS; such an AU belongs to the previous timestamp.
    dts ??= es.lastDts;
    pts ??= es.lastPts ?? dts;
    if (dts === undefined || pts === undefined) return;
    es.lastDts = dts;
    es.lastPts = pts;
    const hevc = es.codec === 'h265';
    const nals: Buffer[] = [];
    const vps: Buffer[] = [];
    const sps: Buffer[] = [];
    const pps: Buffer[] = [];
    let keyframe = false;
    let vcl = false;
    for (const nal of splitAnnexB(payload)) {
      if (hevc) {
        const t = hevcNalType(nal);
        if (t === HevcNalType.AUD) continue;
        if (t === HevcNalType.VPS) vps.push(nal);
        else if (t === HevcNalType.SPS) sps.push(nal);
        else if (t === HevcNalType.PPS) pps.push(nal);
        if (t < 32) vcl = true;
        if (isIrap(nal)) keyframe = true;
      } else {
        const t = nalType(nal);
        if (t === NalType.AUD) continue;
        if (t === NalType.SPS) sps.push(nal);
        else if (t === NalType.PPS) pps.push(nal);
        if (t >= 1 && t <= 5) vcl = true;
        if (t === NalType.IDR) keyframe = true;
      }
      nals.push(nal);
    }
    if (vps.length + sps.length + pps.length > 0) this.updateVideoConfig(es.codec === 'h265', vps, sps, pps);
    // Without a configuration the pictures are undecodable, and a parameter-set-only
    // PES is not a picture.
    if (!this.video || !vcl || es.pid !== this.videoPid) return;
    this.emit({ kind: 'video', dts, pts, keyframe, data: nalsToAvcc(nals) }, events);
  }

  private updateVideoConfig(hevc: boolean, vps: Buffer[], sps: Buffer[], pps: Buffer[]): void {
    // Copies: the NAL units are views into a PES buffer the config would otherwise pin.
    if (vps.length > 0) this.vps = vps.map((b) => Buffer.from(b));
    if (sps.length > 0) this.sps = sps.map((b) => Buffer.from(b));
    if (pps.length > 0) this.pps = pps.map((b) => Buffer.from(b));
    if (this.sps.length === 0 || this.pps.length === 0 || (hevc && this.vps.length === 0)) return;
    const config = hevc ? buildHvcC(this.vps, this.sps, this.pps) : buildAvcC(this.sps, this.pps);
    if (this.video?.config.equals(config)) return;
    const first = this.sps[0] ?? EMPTY;
    const dims = hevc ? parseHevcSps(first) : spsDimensions(first);
    const track: VideoTrack = { kind: 'video', codec: hevc ? 'h265' : 'h264', config };
    if (dims) {
      track.width = dims.width;
      track.height = dims.height;
    }
    this.video = track;
    this.tracksDirty = true;
  }

  private aacPes(es: EsState, payload: Buffer, pts: number | undefined, events: DemuxEvent[]): void {
    const { frames, config, asc } = splitAdts(payload);
    if (!config || !asc) {
      if (payload.length > 0) this.errors++;
      return;
    }
    if (es.pid === this.audioPid && !this.audio?.config.equals(asc)) {
      // channelConfiguration 0 defers the layout to an in-band PCE; stereo is the common case.
      const channels = config.channels || 2;
      this.audio = { kind: 'audio', codec: 'aac', config: asc, sampleRate: config.sampleRate, channels };
      this.tracksDirty = true;
    }
    this.emitAudio(es, frames, pts, AAC_FRAME_SAMPLES, config.sampleRate, events);
  }

  private opusPes(es: EsState, payload: Buffer, pts: number | undefined, events: DemuxEvent[]): void {
    if (es.pid === this.audioPid && !this.audio) {
      this.audio = { kind: 'audio', codec: 'opus', config: EMPTY, sampleRate: 48000, channels: es.channels };
      this.tracksDirty = true;
    }
    const frames = splitOpusAccessUnits(payload);
    if (!frames) {
      this.errors++;
      return;
    }
    // Opus durations vary per packet, so each frame's time is the sum of those before it.
    const base = pts ?? es.lastPts;
    if (base === undefined || es.pid !== this.audioPid) return;
    let t = base;
    for (const frame of frames) {
      this.emit({ kind: 'audio', dts: t, pts: t, keyframe: true, data: Buffer.from(frame) }, events);
      es.lastDts = t;
      t += Math.round((opusSamples(frame) * 90000) / 48000);
    }
    es.lastPts = t;
  }

  private emitAudio(
    es: EsState,
    frames: Buffer[],
    pts: number | undefined,
    samplesPerFrame: number,
    sampleRate: number,
    events: DemuxEvent[],
  ): void {
    // Without a PTS the frames continue from where the previous PES ended.
    const base = pts ?? es.lastPts;
    if (base === undefined || es.pid !== this.audioPid) return;
    for (let i = 0; i < frames.length; i++) {
      const t = base + Math.round((i * samplesPerFrame * 90000) / sampleRate);
      const frame = frames[i];
      // Copied: a view would pin the whole PES (or the caller's input chunk) in GOP caches.
      if (frame) {
        this.emit({ kind: 'audio', dts: t, pts: t, keyframe: true, data: Buffer.from(frame) }, events);
      }
    }
    es.lastDts = base + Math.round(((frames.length - 1) * samplesPerFrame * 90000) / sampleRate);
    es.lastPts = base + Math.round((frames.length * samplesPerFrame * 90000) / sampleRate);
  }

  // ---- output ------------------------------------------------------------------------

  private emit(frame: Frame, events: DemuxEvent[]): void {
    if (!this.started) {
      this.pending.push(frame);
      const ready =
        (this.videoPid === undefined || this.video !== undefined) &&
        (this.audioPid === undefined || this.audio !== undefined);
      if (ready || this.pending.length >= MAX_PENDING_FRAMES) this.start(events);
      return;
    }
    if (this.tracksDirty) this.emitTracks(events);
    events.push({ kind: 'frame', frame });
  }

  private start(events: DemuxEvent[]): void {
    this.started = true;
    this.emitTracks(events);
    for (const frame of this.pending) events.push({ kind: 'frame', frame });
    this.pending = [];
  }

  private emitTracks(events: DemuxEvent[]): void {
    this.tracksDirty = false;
    const tracks: Tracks = {};
    if (this.video) tracks.video = this.video;
    if (this.audio) tracks.audio = this.audio;
    events.push({ kind: 'tracks', tracks });
  }
}

function kindOf(codec: EsCodec): Frame['kind'] {
  return codec === 'h264' || codec === 'h265' ? 'video' : 'audio';
}
