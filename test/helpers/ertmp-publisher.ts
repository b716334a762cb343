/**
 * An Enhanced RTMP publisher for tests. No ffmpeg on this machine (5.1) sends E-RTMP, so this
 * helper has the Debian ffmpeg encode HEVC (libx265) or AV1 (libsvtav1/libaom) plus AAC or Opus,
 * packs the elementary streams into E-RTMP tag bodies by hand (ExVideoTagHeader/ExAudioTagHeader,
 * written here from the Veovera v2 spec rather than with src/media/flv.ts, so the server's demuxer
 * is checked against an independent packer), and publishes them over a raw RTMP connection, paced
 * in real time.
 *
 * The tags also serve as fixtures: `writeFlv` stores them as an FLV file (FLV_HEADER + tags), the
 * form test/fixtures/rtmp/ertmp-*.flv keep.
 */
import { spawnSync } from 'node:child_process';
import { connect } from 'node:net';
import { once } from 'node:events';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ChunkReader } from '../../protocols/rtmp/wire/chunk-reader.js';
import { encodeMessage } from '../../protocols/rtmp/wire/chunk-writer.js';
import { HANDSHAKE_PACKET_BYTES } from '../../protocols/rtmp/wire/handshake.js';
import { MessageType, command, decodeCommand } from '../../protocols/rtmp/wire/messages.js';
import { chunkReaderLimits } from '../../protocols/rtmp/session.js';
import { DEFAULT_LIMITS } from '../../src/core/limits.js';
import { FLV_HEADER, encodeFlvTag, type FlvTag } from '../../src/media/flv.js';
import { TsDemuxer } from '../../src/media/mpegts/demuxer.js';
import type { Frame } from '../../src/media/types.js';

export type ErtmpVideo = 'hevc' | 'av1';
export type ErtmpAudio = 'aac' | 'opus';

/** A packed stream: FLV tags in timestamp order (type 8 audio, 9 video), ready to publish or store. */
export interface ErtmpStream {
  tags: FlvTag[];
  /** Video frames packed, keyframes among them. */
  videoFrames: number;
  keyframes: number;
}

export interface PackOptions {
  seconds?: number;
  /** Wrap every video message in a ManyTracks multitrack packet with a second, ignored track 1. */
  multitrack?: boolean;
  /** Prefix every video message with a ModEx TimestampOffsetNano packet. */
  modEx?: boolean;
}

/** The AV1 encoder this ffmpeg has, or undefined. */
export function av1Encoder(): string | undefined {
  const out = spawnSync('ffmpeg', ['-hide_banner', '-encoders'], { encoding: 'utf8' }).stdout ?? '';
  return ['libsvtav1', 'libaom-av1', 'librav1e'].find((e) => out.includes(` ${e} `));
}

/** Encodes a test pattern and packs it as E-RTMP tags. 320x240, 25 fps, a keyframe every second. */
export function packErtmp(video: ErtmpVideo, audio: ErtmpAudio, options: PackOptions = {}): ErtmpStream {
  const seconds = options.seconds ?? 4;
  const dir = mkdtempSync(join(tmpdir(), 'ertmp-'));
  try {
    const src = [
      '-f',
      'lavfi',
      '-i',
      `testsrc2=size=320x240:rate=25:duration=${seconds}`,
      '-f',
      'lavfi',
      '-i',
      `sine=frequency=1000:sample_rate=48000:duration=${seconds}`,
    ];
    const acodec = audio === 'aac' ? ['-c:a', 'aac', '-b:a', '64k'] : ['-c:a', 'libopus', '-b:a', '64k'];
    const tags: FlvTag[] = [];
    let videoFrames = 0;
    let keyframes = 0;
    if (video === 'hevc') {
      // MPEG-TS carries both streams; our TS demuxer turns them into hvcC + length-prefixed frames.
      ffmpeg(dir, [
        ...src,
        '-c:v',
        'libx265',
        '-preset',
        'ultrafast',
        '-pix_fmt',
        'yuv420p',
        '-x265-params',
        'keyint=25:min-keyint=25:scenecut=0:bframes=0:log-level=error',
        ...acodec,
        '-f',
        'mpegts',
        'out.ts',
      ]);
      const demux = new TsDemuxer();
      const events = [...demux.push(readFileSync(join(dir, 'out.ts'))), ...demux.flush()];
      // MPEG-TS starts at ffmpeg's 1.4 s offset; a publisher starts at 0.
      const base = Math.min(...events.flatMap((e) => (e.kind === 'frame' ? [e.frame.dts] : [])));
      let sentVideoConfig = false;
      let sentAudioConfig = false;
      for (const e of events) {
        if (e.kind === 'tracks') {
          if (e.tracks.video && !sentVideoConfig) {
            sentVideoConfig = true;
            tags.push(videoTag(0, exVideo(1, 0, 'hvc1', e.tracks.video.config), options));
          }
          if (e.tracks.audio && !sentAudioConfig) {
            sentAudioConfig = true;
            tags.push(audioTag(0, audio, 'start', e.tracks.audio.config, e.tracks.audio.channels));
          }
          continue;
        }
        const f = { ...e.frame, dts: e.frame.dts - base, pts: e.frame.pts - base };
        const ms = Math.round(f.dts / 90);
        if (f.kind === 'audio') {
          if (sentAudioConfig) tags.push(audioTag(ms, audio, 'frame', f.data, 0));
          continue;
        }
        if (!sentVideoConfig) continue;
        videoFrames++;
        if (f.keyframe) keyframes++;
        tags.push(videoTag(ms, hevcFrame(f), options));
      }
    } else {
      const encoder = av1Encoder();
      if (!encoder) throw new Error('this ffmpeg has no AV1 encoder');
      const fast =
        encoder === 'libsvtav1'
          ? ['-preset', '12', '-svtav1-params', 'keyint=25']
          : encoder === 'libaom-av1'
            ? ['-cpu-used', '8', '-row-mt', '1', '-usage', 'realtime']
            : ['-speed', '10'];
      // IVF gives one temporal unit per frame; MP4 gives the av1C E-RTMP's SequenceStart carries.
      ffmpeg(dir, [
        ...src,
        '-map',
        '0:v',
        '-c:v',
        encoder,
        ...fast,
        '-g',
        '25',
        '-keyint_min',
        '25',
        '-pix_fmt',
        'yuv420p',
        '-b:v',
        '300k',
        'v.mp4',
        '-map',
        '1:a',
        ...acodec,
        '-f',
        'mpegts',
        'a.ts',
      ]);
      ffmpeg(dir, ['-i', 'v.mp4', '-c', 'copy', '-f', 'ivf', 'v.ivf']);
      const av1C = findBox(readFileSync(join(dir, 'v.mp4')), 'av1C');
      if (!av1C) throw new Error('no av1C box in the AV1 mp4');
      tags.push(videoTag(0, exVideo(1, 0, 'av01', av1C), options));
      const demux = new TsDemuxer();
      const audioEvents = [...demux.push(readFileSync(join(dir, 'a.ts'))), ...demux.flush()];
      const base = Math.min(...audioEvents.flatMap((e) => (e.kind === 'frame' ? [e.frame.dts] : [])));
      const audioTags: FlvTag[] = [];
      for (const e of audioEvents) {
        if (e.kind === 'tracks' && e.tracks.audio && audioTags.length === 0) {
          audioTags.push(audioTag(0, audio, 'start', e.tracks.audio.config, e.tracks.audio.channels));
        } else if (e.kind === 'frame' && audioTags.length > 0) {
          audioTags.push(audioTag(Math.round((e.frame.dts - base) / 90), audio, 'frame', e.frame.data, 0));
        }
      }
      for (const tu of ivfFrames(readFileSync(join(dir, 'v.ivf')))) {
        const key = isAv1Keyframe(tu.data);
        videoFrames++;
        if (key) keyframes++;
        // No composition time for AV1: CodedFrames is FrameType + FourCC + the OBUs.
        tags.push(videoTag(tu.ms, exVideo(key ? 1 : 2, 1, 'av01', tu.data), options));
      }
      tags.push(...audioTags);
      // Audio timestamps restart at the demuxer's first PTS; both start at 0 here.
      tags.sort((a, b) => a.timestamp - b.timestamp || a.type - b.type);
    }
    return { tags, videoFrames, keyframes };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** The tags as an FLV file, the fixture form. */
export function writeFlv(path: string, tags: readonly FlvTag[]): void {
  writeFileSync(
    path,
    Buffer.concat([FLV_HEADER, ...tags.map((t) => encodeFlvTag(t.type, t.timestamp, t.data))]),
  );
}

export interface PublishResult {
  statuses: { level: string; code: string; description: string }[];
  /** The connect `_result`'s properties (fourCcList, capsEx when we declared ours). */
  connectProperties: Record<string, unknown> | undefined;
  sent: number;
}

/**
 * Publishes `tags` to `rtmp://127.0.0.1:port/app/name`, paced by their timestamps (a live
 * encoder), declaring E-RTMP support in connect as OBS 30 does not and ffmpeg 7 does.
 */
export async function publishErtmp(
  port: number,
  app: string,
  name: string,
  tags: readonly FlvTag[],
  options: { realtime?: boolean } = {},
): Promise<PublishResult> {
  const socket = connect(port, '127.0.0.1');
  socket.on('error', () => undefined);
  await once(socket, 'connect');
  const reader = new ChunkReader(chunkReaderLimits(DEFAULT_LIMITS));
  const result: PublishResult = { statuses: [], connectProperties: undefined, sent: 0 };
  let handshake: Buffer | undefined = Buffer.alloc(0);
  let started: (ok: boolean) => void = () => undefined;
  const start = new Promise<boolean>((resolve) => (started = resolve));
  const timer = setTimeout(() => started(false), 10_000);
  socket.on('close', () => started(false));
  socket.write(Buffer.concat([Buffer.of(3), Buffer.alloc(HANDSHAKE_PACKET_BYTES, 0x21)]));
  socket.on('data', (data: Buffer) => {
    if (handshake !== undefined) {
      const all = Buffer.concat([handshake, data]);
      if (all.length < 1 + 2 * HANDSHAKE_PACKET_BYTES) {
        handshake = all;
        return;
      }
      handshake = undefined;
      socket.write(all.subarray(1, 1 + HANDSHAKE_PACKET_BYTES));
      socket.write(
        command(3, 0, 128, 'connect', 1, {
          app,
          type: 'nonprivate',
          flashVer: 'FMLE/3.0 (compatible; streamgate-ertmp-test)',
          tcUrl: `rtmp://127.0.0.1:${port}/${app}`,
          fourCcList: ['hvc1', 'av01', 'vp09', 'avc1', 'Opus', 'mp4a'],
          capsEx: 0x04,
        }),
      );
      data = all.subarray(1 + 2 * HANDSHAKE_PACKET_BYTES);
    }
    for (const m of reader.push(data)) {
      if (m.type !== MessageType.CommandAmf0) continue;
      const c = decodeCommand(m);
      if (c.name === '_result' && c.txId === 1) {
        result.connectProperties = c.args[0] as Record<string, unknown>;
        socket.write(command(3, 0, 128, 'createStream', 2, null));
      } else if (c.name === '_result' && c.txId === 2) {
        socket.write(command(8, 1, 128, 'publish', 3, null, name, 'live'));
      } else if (c.name === 'onStatus') {
        const info = c.args[1] as { level: string; code: string; description: string };
        result.statuses.push(info);
        started(info.code === 'NetStream.Publish.Start');
      }
    }
  });
  const ok = await start;
  clearTimeout(timer);
  if (ok) {
    const t0 = Date.now();
    for (const tag of tags) {
      if (socket.destroyed) break;
      if (options.realtime !== false) {
        const wait = tag.timestamp - (Date.now() - t0);
        if (wait > 0) await new Promise((r) => setTimeout(r, wait));
      }
      const csid = tag.type === 8 ? 4 : 6;
      socket.write(
        encodeMessage(
          { csid, type: tag.type, streamId: 1, timestamp: tag.timestamp, payload: tag.data },
          128,
        ),
      );
      result.sent++;
    }
  }
  socket.end();
  await new Promise((r) => setTimeout(r, 200));
  socket.destroy();
  return result;
}

// ---------------------------------------------------------------------------------------------
// E-RTMP packing (Veovera Enhanced RTMP v2, "Enhanced Video" / "Enhanced Audio")

/** ExVideoTagHeader: IsExHeader | FrameType << 4 | PacketType, then the FourCC and the body. */
function exVideo(frameType: number, packetType: number, fourCc: string, body: Buffer): Buffer {
  return Buffer.concat([
    Buffer.of(0x80 | (frameType << 4) | packetType),
    Buffer.from(fourCc, 'latin1'),
    body,
  ]);
}

/** HEVC coded frames: CodedFramesX when pts = dts (no B-frames here), else CodedFrames + SI24. */
function hevcFrame(f: Frame): Buffer {
  const frameType = f.keyframe ? 1 : 2;
  const cts = Math.round((f.pts - f.dts) / 90);
  if (cts === 0) return exVideo(frameType, 3, 'hvc1', f.data);
  const si24 = Buffer.alloc(3);
  si24.writeIntBE(cts, 0, 3);
  return exVideo(frameType, 1, 'hvc1', Buffer.concat([si24, f.data]));
}

/**
 * One video tag; with `multitrack`, the ExVideoTagHeader's packet becomes a ManyTracks packet
 * (PacketType 6, AvMultitrackType 1 << 4 | real PacketType, FourCC) holding track 0 and a shortened
 * copy as track 1, each `trackId UI8, size UI24, body`; with `modEx`, a ModEx prefix (PacketType 7,
 * size-1 UI8, 3 bytes of nanosecond offset, ModExType 0 << 4 | next PacketType) comes first.
 */
function videoTag(ms: number, body: Buffer, options: PackOptions): FlvTag {
  let out = body;
  if (options.multitrack) {
    const first = body[0]!;
    const payload = body.subarray(5);
    // Track 1 is the same frame cut short: a demuxer that took it would hand out a broken frame.
    const track = (id: number): Buffer => {
      const body = id === 0 ? payload : payload.subarray(0, payload.length - 1);
      const head = Buffer.alloc(4);
      head[0] = id;
      head.writeUIntBE(body.length, 1, 3);
      return Buffer.concat([head, body]);
    };
    out = Buffer.concat([
      Buffer.of((first & 0xf0) | 6, (1 << 4) | (first & 0x0f)),
      body.subarray(1, 5),
      track(0),
      track(1),
    ]);
  }
  if (options.modEx) {
    const first = out[0]!;
    out = Buffer.concat([
      Buffer.of((first & 0xf0) | 7, 2, 0x00, 0x01, 0xf4, (0 << 4) | (first & 0x0f)),
      out.subarray(1),
    ]);
  }
  return { type: 9, timestamp: ms, data: out };
}

/** ExAudioTagHeader: SoundFormat 9 << 4 | AudioPacketType (0 start, 1 frames), FourCC, body. */
function audioTag(
  ms: number,
  codec: ErtmpAudio,
  what: 'start' | 'frame',
  body: Buffer,
  channels: number,
): FlvTag {
  const fourCc = codec === 'aac' ? 'mp4a' : 'Opus';
  const payload = what === 'start' && codec === 'opus' ? opusHead(channels) : body;
  return {
    type: 8,
    timestamp: ms,
    data: Buffer.concat([
      Buffer.of((9 << 4) | (what === 'start' ? 0 : 1)),
      Buffer.from(fourCc, 'latin1'),
      payload,
    ]),
  };
}

/** RFC 7845 §5.1 ID header, mapping family 0. */
function opusHead(channels: number): Buffer {
  const h = Buffer.alloc(19);
  h.write('OpusHead', 0, 'latin1');
  h[8] = 1;
  h[9] = channels;
  h.writeUInt16LE(312, 10);
  h.writeUInt32LE(48000, 12);
  return h;
}

// ---------------------------------------------------------------------------------------------
// Container reading

function ffmpeg(cwd: string, args: string[]): void {
  const r = spawnSync('ffmpeg', ['-hide_banner', '-loglevel', 'error', '-y', ...args], {
    cwd,
    encoding: 'utf8',
  });
  if (r.status !== 0) throw new Error(`ffmpeg failed: ${r.stderr}`);
}

/** The body of the first box of `type` anywhere in an MP4 (a byte search; the 4CC is distinctive). */
function findBox(mp4: Buffer, type: string): Buffer | undefined {
  const at = mp4.indexOf(type, 0, 'latin1');
  if (at < 4) return undefined;
  const size = mp4.readUInt32BE(at - 4);
  return mp4.subarray(at + 4, at - 4 + size);
}

/** IVF frames (32-byte file header, then 12-byte frame headers: size LE32, pts LE64) without temporal delimiters. */
function ivfFrames(ivf: Buffer): { ms: number; data: Buffer }[] {
  const rateNum = ivf.readUInt32LE(16);
  const rateDen = ivf.readUInt32LE(20);
  const out: { ms: number; data: Buffer }[] = [];
  for (let pos = ivf.readUInt16LE(6); pos + 12 <= ivf.length;) {
    const size = ivf.readUInt32LE(pos);
    const pts = Number(ivf.readBigUInt64LE(pos + 4));
    const data = withoutTemporalDelimiters(ivf.subarray(pos + 12, pos + 12 + size));
    // IVF's timebase is den/num (ffmpeg writes 1/25 → pts counts frames at 25 fps).
    out.push({ ms: Math.round((pts * 1000 * rateDen) / rateNum), data });
    pos += 12 + size;
  }
  return out;
}

/** OBUs of a temporal unit (each with obu_has_size_field) minus type 2, as AV1-ISOBMFF samples omit them. */
function withoutTemporalDelimiters(tu: Buffer): Buffer {
  const keep: Buffer[] = [];
  for (let pos = 0; pos < tu.length;) {
    const header = tu[pos]!;
    const type = (header >> 3) & 0x0f;
    const ext = header & 0x04 ? 1 : 0;
    let size = 0;
    let len = 0;
    for (let i = 0; i < 8; i++) {
      const b = tu[pos + 1 + ext + i]!;
      size |= (b & 0x7f) << (7 * i);
      len++;
      if (!(b & 0x80)) break;
    }
    const end = pos + 1 + ext + len + size;
    if (type !== 2) keep.push(tu.subarray(pos, end));
    pos = end;
  }
  return Buffer.concat(keep);
}

/** A temporal unit that carries a sequence header OBU (type 1) starts a GOP in these encoders' output. */
function isAv1Keyframe(tu: Buffer): boolean {
  return tu.length > 0 && ((tu[0]! >> 3) & 0x0f) === 1;
}
