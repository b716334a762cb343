/**
 * MPEG-TS muxer/demuxer tests. Fixtures come from real ffmpeg (see
 * test/fixtures/mpegts/README.md); ffprobe is the reference for timestamps and for
 * checking that muxer output is readable and decodable.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';

import { crc32, TsDemuxer, TsMuxer, type DemuxEvent } from '../../../src/media/mpegts/index.js';
import type { Frame, Tracks } from '../../../src/media/types.js';

const FIXTURES = fileURLToPath(new URL('../../fixtures/mpegts/', import.meta.url));
const FIXTURE_FILES = ['h264-aac-2s.ts', 'h264-aac-bframes-2s.ts'];

const tmp = mkdtempSync(join(tmpdir(), 'streamgate-mpegts-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

/** Why ffmpeg-backed tests cannot run, or undefined when they can. Missing tools fail CI. */
function ffmpegMissing(): string | undefined {
  for (const tool of ['ffprobe', 'ffmpeg']) {
    const r = spawnSync(tool, ['-version'], { encoding: 'utf8' });
    if (r.error || r.status !== 0) {
      const reason = `${tool} not available: ${r.error?.message ?? `exit ${r.status}`}`;
      if (process.env.CI === 'true') throw new Error(reason);
      console.log(`# skipping ffmpeg-backed tests: ${reason}`);
      return reason;
    }
  }
  return undefined;
}
const skipFfmpeg = ffmpegMissing();

interface ProbePacket {
  stream_index: number;
  codec_type: string;
  pts: number;
  dts: number;
  size: string;
  flags: string;
}
interface ProbeStream {
  index: number;
  codec_type: string;
  codec_name: string;
  width?: number;
  height?: number;
  sample_rate?: string;
  channels?: number;
}

function ffprobe(file: string): { packets: ProbePacket[]; streams: ProbeStream[] } {
  const r = spawnSync('ffprobe', ['-v', 'error', '-show_packets', '-show_streams', '-of', 'json', file], {
    encoding: 'utf8',
    maxBuffer: 64 * 1024 * 1024,
  });
  assert.equal(r.status, 0, r.stderr);
  return JSON.parse(r.stdout) as { packets: ProbePacket[]; streams: ProbeStream[] };
}

function ffmpeg(args: string[]): { status: number | null; stderr: string } {
  const r = spawnSync('ffmpeg', ['-hide_banner', '-nostdin', '-v', 'error', ...args], { encoding: 'utf8' });
  return { status: r.status, stderr: r.stderr };
}

function demuxAll(data: Buffer, chunk = data.length): { events: DemuxEvent[]; demuxer: TsDemuxer } {
  const demuxer = new TsDemuxer();
  const events: DemuxEvent[] = [];
  for (let i = 0; i < data.length; i += chunk) events.push(...demuxer.push(data.subarray(i, i + chunk)));
  events.push(...demuxer.flush());
  return { events, demuxer };
}

function split(events: DemuxEvent[]): { tracks: Tracks[]; frames: Frame[] } {
  const tracks: Tracks[] = [];
  const frames: Frame[] = [];
  for (const e of events) {
    if (e.kind === 'tracks') tracks.push(e.tracks);
    else frames.push(e.frame);
  }
  return { tracks, frames };
}

function muxAll(tracks: Tracks, frames: Frame[]): Buffer {
  const muxer = new TsMuxer(tracks);
  return Buffer.concat([muxer.tables(), ...frames.map((f) => muxer.mux(f))]);
}

/**
 * Frame-by-frame comparison. deepEqual on whole Frame arrays would, on failure, diff
 * megabytes of printed Buffer bytes, which can take minutes.
 */
function assertSameFrames(got: Frame[], want: Frame[], label: string): void {
  assert.equal(got.length, want.length, `${label}: frame count`);
  for (let i = 0; i < want.length; i++) {
    const g = got[i]!;
    const w = want[i]!;
    const meta = (f: Frame) => ({
      kind: f.kind,
      dts: f.dts,
      pts: f.pts,
      keyframe: f.keyframe,
      size: f.data.length,
    });
    assert.deepEqual(meta(g), meta(w), `${label}: frame ${i}`);
    assert.ok(g.data.equals(w.data), `${label}: frame ${i} data`);
  }
}

/** Per-kind [pts, dts] lists from ffprobe, in stream order. */
function probeTimes(packets: ProbePacket[], kind: 'video' | 'audio'): [number, number][] {
  return packets.filter((p) => p.codec_type === kind).map((p) => [p.pts, p.dts]);
}
function frameTimes(frames: Frame[], kind: 'video' | 'audio'): [number, number][] {
  return frames.filter((f) => f.kind === kind).map((f) => [f.pts, f.dts]);
}

interface Packet {
  pid: number;
  pusi: boolean;
  cc: number;
  hasPayload: boolean;
  rai: boolean;
  pcr: number | undefined;
}
function parsePackets(ts: Buffer): Packet[] {
  const out: Packet[] = [];
  for (let p = 0; p < ts.length; p += 188) {
    const pkt = ts.subarray(p, p + 188);
    const afc = (pkt[3]! >> 4) & 3;
    let rai = false;
    let pcr: number | undefined;
    if (afc & 2 && pkt[4]! > 0) {
      rai = (pkt[5]! & 0x40) !== 0;
      if (pkt[5]! & 0x10) pcr = pkt.readUInt32BE(6) * 2 + (pkt[10]! >> 7);
    }
    out.push({
      pid: ((pkt[1]! & 0x1f) << 8) | pkt[2]!,
      pusi: (pkt[1]! & 0x40) !== 0,
      cc: pkt[3]! & 0xf,
      hasPayload: (afc & 1) !== 0,
      rai,
      pcr,
    });
  }
  return out;
}

/** Deterministic PRNG (mulberry32) so fuzz failures reproduce. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const fixture = (name: string): Buffer => readFileSync(join(FIXTURES, name));

describe('crc32', () => {
  it('matches the CRC of the canonical ffmpeg PAT (tsid 1, program 1 → PMT 0x1000)', () => {
    const pat = Buffer.from('00b00d0001c100000001f000', 'hex');
    assert.equal(crc32(pat), 0x2ab104b2);
    assert.equal(crc32(Buffer.concat([pat, Buffer.from('2ab104b2', 'hex')])), 0);
  });

  it('muxer PAT and PMT sections carry valid CRCs', () => {
    const tables = new TsMuxer({ audio: aacTrack }).tables();
    assert.deepEqual(tables.subarray(5, 5 + 16), Buffer.from('00b00d0001c100000001f0002ab104b2', 'hex'));
    const pmtLen = 3 + (((tables[188 + 6]! & 0xf) << 8) | tables[188 + 7]!);
    assert.equal(crc32(tables, 188 + 5, 188 + 5 + pmtLen), 0);
  });
});

const aacTrack = {
  kind: 'audio',
  codec: 'aac',
  config: Buffer.from('1190', 'hex'),
  sampleRate: 48000,
  channels: 2,
} as const;

describe('TsDemuxer on ffmpeg fixtures', { skip: skipFfmpeg }, () => {
  for (const name of FIXTURE_FILES) {
    it(`${name}: tracks, frame counts and PTS/DTS equal ffprobe`, () => {
      const data = fixture(name);
      const probe = ffprobe(join(FIXTURES, name));
      const { events, demuxer } = demuxAll(data);
      const { tracks, frames } = split(events);
      assert.equal(demuxer.errors, 0);
      assert.equal(events[0]?.kind, 'tracks', 'tracks come before the first frame');
      assert.equal(tracks.length, 1);
      const t = tracks[0]!;
      const vs = probe.streams.find((s) => s.codec_type === 'video')!;
      const as = probe.streams.find((s) => s.codec_type === 'audio')!;
      assert.equal(t.video?.codec, 'h264');
      assert.equal(t.video?.width, 320);
      assert.equal(t.video?.height, 240);
      assert.equal(t.video?.width, vs.width);
      assert.equal(t.audio?.codec, 'aac');
      assert.equal(t.audio?.sampleRate, 48000);
      assert.equal(t.audio?.sampleRate, Number(as.sample_rate));
      assert.equal(t.audio?.channels, as.channels);

      for (const kind of ['video', 'audio'] as const) {
        assert.deepEqual(frameTimes(frames, kind), probeTimes(probe.packets, kind), `${kind} timestamps`);
      }
      const video = frames.filter((f) => f.kind === 'video');
      const probeVideo = probe.packets.filter((p) => p.codec_type === 'video');
      assert.deepEqual(
        video.map((f) => f.keyframe),
        probeVideo.map((p) => p.flags.startsWith('K')),
      );
      // ffprobe reports ADTS-framed sizes; our frames are raw AAC (7-byte header removed).
      const audio = frames.filter((f) => f.kind === 'audio');
      const probeAudio = probe.packets.filter((p) => p.codec_type === 'audio');
      assert.deepEqual(
        audio.map((f) => f.data.length),
        probeAudio.map((p) => Number(p.size) - 7),
      );
    });
  }

  it('gives identical events for any chunking and with leading garbage', () => {
    const data = fixture(FIXTURE_FILES[0]!);
    const whole = demuxAll(data).events;
    for (const chunk of [1, 187, 189, 1000, 65536]) {
      const events = demuxAll(data, chunk).events;
      assert.deepEqual(split(events).tracks, split(whole).tracks);
      assertSameFrames(split(events).frames, split(whole).frames, `chunk ${chunk}`);
    }
    const garbage = Buffer.alloc(1000, 0x47); // sync bytes at wrong spacing must not lock
    const noisy = demuxAll(Buffer.concat([garbage, Buffer.from([1, 2, 3]), data]), 777);
    assertSameFrames(split(noisy.events).frames, split(whole).frames, 'after garbage');
    assert.ok(noisy.demuxer.errors >= 1);
  });
});

describe('TsMuxer round trip', { skip: skipFfmpeg }, () => {
  for (const name of FIXTURE_FILES) {
    it(`${name}: ffprobe reads the same timestamps, ffmpeg decodes cleanly, re-demux is byte-exact`, () => {
      const { tracks, frames } = split(demuxAll(fixture(name)).events);
      const out = muxAll(tracks[0]!, frames);
      const file = join(tmp, `rt-${name}`);
      writeFileSync(file, out);

      const probe = ffprobe(file);
      assert.deepEqual(probe.streams.map((s) => s.codec_name).sort(), ['aac', 'h264']);
      for (const kind of ['video', 'audio'] as const) {
        assert.deepEqual(probeTimes(probe.packets, kind), frameTimes(frames, kind), `${kind} timestamps`);
      }
      const decoded = ffmpeg(['-i', file, '-f', 'null', '-']);
      assert.equal(decoded.status, 0);
      assert.equal(decoded.stderr, '');

      const again = demuxAll(out);
      assert.equal(again.demuxer.errors, 0);
      const re = split(again.events);
      assert.deepEqual(re.tracks, tracks);
      // Per kind: a video PES with length 0 only completes at the next unit start, so the
      // interleaving of kinds may shift, but each stream's frames come back byte-exact.
      for (const kind of ['video', 'audio'] as const) {
        const of = (list: Frame[]) => list.filter((f) => f.kind === kind);
        assertSameFrames(of(re.frames), of(frames), kind);
      }
    });
  }

  it('inserts SPS/PPS before keyframes that lack them and an AUD before every picture', () => {
    const { tracks, frames } = split(demuxAll(fixture(FIXTURE_FILES[0]!)).events);
    // Strip in-band SPS/PPS (as RTMP sources send them) and let the muxer put them back.
    const stripped = frames.map((f) => {
      if (f.kind !== 'video') return f;
      const parts: Buffer[] = [];
      for (let p = 0; p < f.data.length;) {
        const len = f.data.readUInt32BE(p);
        const type = f.data[p + 4]! & 0x1f;
        if (type !== 7 && type !== 8) parts.push(f.data.subarray(p, p + 4 + len));
        p += 4 + len;
      }
      return { ...f, data: Buffer.concat(parts) };
    });
    const file = join(tmp, 'stripped.ts');
    writeFileSync(file, muxAll(tracks[0]!, stripped));
    assert.deepEqual(ffmpeg(['-i', file, '-f', 'null', '-']), { status: 0, stderr: '' });
    const back = split(demuxAll(readFileSync(file)).events).frames.filter((f) => f.kind === 'video');
    assert.equal(back.length, 50);
    // Keyframes regain their parameter sets, so they equal the original (unstripped) frames.
    const orig = frames.filter((f) => f.kind === 'video');
    const strippedVideo = stripped.filter((f) => f.kind === 'video');
    assertSameFrames(
      back,
      orig.map((f, i) => (f.keyframe ? f : strippedVideo[i]!)),
      'video',
    );
  });

  it('H.265 + Opus from ffmpeg survive demux → mux → ffprobe/ffmpeg', (t) => {
    const src = join(tmp, 'hevc-opus.ts');
    const made = ffmpeg([
      '-f', 'lavfi', '-i', 'testsrc2=size=320x240:rate=25', '-f', 'lavfi', '-i', 'sine=frequency=1000:sample_rate=48000',
      '-t', '1', '-c:v', 'libx265', '-preset', 'ultrafast', '-x265-params', 'log-level=none:keyint=25:bframes=0',
      '-c:a', 'libopus', '-ac', '2', '-f', 'mpegts', '-y', src,
    ]); // prettier-ignore
    if (made.status !== 0) {
      t.skip(`ffmpeg lacks libx265/libopus: ${made.stderr.trim()}`);
      return;
    }
    const probeSrc = ffprobe(src);
    const { tracks, frames } = split(demuxAll(readFileSync(src)).events);
    const tr = tracks.at(-1)!;
    assert.equal(tr.video?.codec, 'h265');
    assert.equal(tr.video?.width, 320);
    assert.equal(tr.video?.height, 240);
    assert.equal(tr.audio?.codec, 'opus');
    assert.equal(tr.audio?.channels, 2);
    assert.deepEqual(frameTimes(frames, 'video'), probeTimes(probeSrc.packets, 'video'));
    assert.deepEqual(frameTimes(frames, 'audio'), probeTimes(probeSrc.packets, 'audio'));

    const file = join(tmp, 'rt-hevc-opus.ts');
    writeFileSync(file, muxAll(tr, frames));
    const probe = ffprobe(file);
    assert.deepEqual(probe.streams.map((s) => s.codec_name).sort(), ['hevc', 'opus']);
    assert.deepEqual(probeTimes(probe.packets, 'video'), frameTimes(frames, 'video'));
    assert.deepEqual(probeTimes(probe.packets, 'audio'), frameTimes(frames, 'audio'));
    assert.deepEqual(ffmpeg(['-i', file, '-f', 'null', '-']), { status: 0, stderr: '' });
    const re = split(demuxAll(readFileSync(file)).events);
    for (const kind of ['video', 'audio'] as const) {
      const of = (list: Frame[]) => list.filter((f) => f.kind === kind);
      assertSameFrames(of(re.frames), of(frames), kind);
    }
  });
});

describe('TsMuxer packets', () => {
  const avcC = Buffer.from(
    '0142c00dffe100166742c00dda0507ec0440000003004000000c83c50aa801000468ce0fc8',
    'hex',
  );
  const tracks: Tracks = { video: { kind: 'video', codec: 'h264', config: avcC }, audio: aacTrack };
  const idr = Buffer.from([0, 0, 3, 0, 0x65, 0x88, ...new Array<number>(3000).fill(0x11)]);
  const slice = Buffer.from([0, 0, 0, 100, 0x41, ...new Array<number>(99).fill(0x22)]);
  idr.writeUInt32BE(idr.length - 4, 0);
  const frames: Frame[] = [];
  for (let i = 0; i < 60; i++) {
    const dts = 900_000 + i * 3600;
    frames.push({
      kind: 'video',
      dts,
      pts: dts + 3600,
      keyframe: i % 25 === 0,
      data: i % 25 === 0 ? idr : slice,
    });
    frames.push({ kind: 'audio', dts, pts: dts, keyframe: true, data: Buffer.alloc(200 + i, i) });
  }

  it('emits whole 188-byte packets starting with 0x47, deterministically', () => {
    const a = muxAll(tracks, frames);
    const b = muxAll(tracks, frames);
    assert.equal(a.length % 188, 0);
    for (let p = 0; p < a.length; p += 188) assert.equal(a[p], 0x47);
    assert.ok(a.equals(b));
    const muxer = new TsMuxer(tracks);
    for (const f of frames) assert.equal(muxer.mux(f).length % 188, 0);
  });

  it('continuity counters increase by one mod 16 per PID', () => {
    const pkts = parsePackets(muxAll(tracks, frames));
    const last = new Map<number, number>();
    for (const p of pkts) {
      const prev = last.get(p.pid);
      if (prev !== undefined) assert.equal(p.cc, (prev + 1) & 0xf, `pid ${p.pid}`);
      last.set(p.pid, p.cc);
    }
    assert.deepEqual(
      [...last.keys()].sort((x, y) => x - y),
      [0, 0x100, 0x101, 0x1000],
    );
  });

  it('PCR = DTS with random_access_indicator on keyframes, and at most 100 ms apart', () => {
    const pkts = parsePackets(muxAll(tracks, frames));
    const videoStarts = pkts.filter((p) => p.pid === 0x100 && p.pusi);
    assert.equal(videoStarts.length, 60);
    const pcrs: number[] = [];
    videoStarts.forEach((p, i) => {
      const f = frames[2 * i]!;
      if (f.keyframe) {
        assert.ok(p.rai);
        assert.equal(p.pcr, f.dts);
      }
      if (p.pcr !== undefined) {
        assert.equal(p.pcr, f.dts);
        pcrs.push(p.pcr);
      }
    });
    for (let i = 1; i < pcrs.length; i++) assert.ok(pcrs[i]! - pcrs[i - 1]! <= 9000);
    assert.ok(
      pkts.every((p) => p.pcr === undefined || p.pid === 0x100),
      'PCR only on the video PID',
    );
  });

  it('puts PCR on the audio PID for audio-only streams', () => {
    const audioOnly = frames.filter((f) => f.kind === 'audio');
    const pkts = parsePackets(muxAll({ audio: aacTrack }, audioOnly));
    const pcrs = pkts.filter((p) => p.pcr !== undefined);
    assert.ok(pcrs.length > 0 && pcrs.every((p) => p.pid === 0x101));
    const back = split(demuxAll(muxAll({ audio: aacTrack }, audioOnly)).events);
    assert.deepEqual(back.tracks, [{ audio: { ...aacTrack } }]);
    assertSameFrames(back.frames, audioOnly, 'audio');
  });

  it('wraps timestamps at 2^33 and the demuxer unwraps them into a monotonic timeline', () => {
    const base = 2 ** 33 - 10 * 3600;
    const wrapped = frames.map((f) => ({ ...f, dts: f.dts - 900_000 + base, pts: f.pts - 900_000 + base }));
    const out = muxAll(tracks, wrapped);
    const pcrs = parsePackets(out).flatMap((p) => (p.pcr === undefined ? [] : [p.pcr]));
    assert.ok(pcrs.every((p) => p < 2 ** 33));
    assert.ok(
      pcrs.some((p) => p < 3600 * 60),
      'PCR wrapped',
    );
    const back = split(demuxAll(out).events).frames;
    for (const kind of ['video', 'audio'] as const) {
      assert.deepEqual(frameTimes(back, kind), frameTimes(wrapped, kind));
    }
    assert.ok(back.some((f) => f.dts > 2 ** 33));
  });
});

describe('TsDemuxer tracks announcement', () => {
  it('starts with the known tracks when an advertised stream never shows its config', () => {
    const avcC = Buffer.from(
      '0142c00dffe100166742c00dda0507ec0440000003004000000c83c50aa801000468ce0fc8',
      'hex',
    );
    const cfg = avcC.subarray(8, 8 + 0x16);
    const pps = avcC.subarray(8 + 0x16 + 3);
    const idr = Buffer.from([0x65, 0x88, 0x84, 0x00, 0x33]);
    const frames: Frame[] = [];
    for (let i = 0; i < 400; i++) {
      const nals = i === 0 ? [cfg, pps, idr] : [Buffer.from([0x41, 0x9a, i & 0xff])];
      const data = Buffer.concat(nals.flatMap((n) => [Buffer.from([0, 0, 0, n.length]), n]));
      frames.push({ kind: 'video', dts: i * 3600, pts: i * 3600, keyframe: i === 0, data });
    }
    // The PMT advertises AAC audio, but no audio ever arrives.
    const ts = muxAll({ video: { kind: 'video', codec: 'h264', config: avcC }, audio: aacTrack }, frames);
    const { events } = demuxAll(ts);
    assert.equal(events[0]?.kind, 'tracks');
    const first = events[0]?.kind === 'tracks' ? events[0].tracks : undefined;
    assert.equal(first?.audio, undefined);
    assert.deepEqual(first?.video?.config, avcC);
    assert.equal(first?.video?.width, 320);
    assert.equal(split(events).tracks.length, 1);
    assert.equal(split(events).frames.length, 400);
  });
});

describe('TsDemuxer robustness', () => {
  it('never throws on seeded random buffers', () => {
    const rand = rng(1);
    for (let n = 0; n < 200; n++) {
      const buf = Buffer.alloc(Math.floor(rand() * 4000));
      for (let i = 0; i < buf.length; i++) buf[i] = rand() < 0.1 ? 0x47 : Math.floor(rand() * 256);
      // Plant a plausible sync pattern so the packet parser itself gets exercised.
      for (let i = 0; i < buf.length; i += 188) if (rand() < 0.8) buf[i] = 0x47;
      const d = new TsDemuxer();
      d.push(buf);
      d.flush();
    }
  });

  it('never throws on corrupted or truncated fixture data, and counts errors', () => {
    const data = fixture(FIXTURE_FILES[1]!);
    const rand = rng(2);
    let errors = 0;
    for (let n = 0; n < 40; n++) {
      const bad = Buffer.from(data.subarray(0, Math.floor(rand() * data.length)));
      for (let k = 0; k < 50; k++) bad[Math.floor(rand() * bad.length)] = Math.floor(rand() * 256);
      const d = new TsDemuxer();
      const events: DemuxEvent[] = [];
      let off = 0;
      while (off < bad.length) {
        const len = 1 + Math.floor(rand() * 3000);
        events.push(...d.push(bad.subarray(off, off + len)));
        off += len;
      }
      events.push(...d.flush());
      // Even damaged input keeps the Frame contract: integer times, pts ≥ dts, monotonic dts.
      const last = new Map<string, number>();
      for (const e of events) {
        if (e.kind !== 'frame') continue;
        const f = e.frame;
        assert.ok(Number.isInteger(f.dts) && Number.isInteger(f.pts) && f.pts >= f.dts);
        assert.ok(f.dts >= (last.get(f.kind) ?? -Infinity), 'monotonic dts');
        last.set(f.kind, f.dts);
      }
      errors += d.errors;
    }
    assert.ok(errors > 0);
  });

  it('drops a PES with a continuity gap instead of emitting a corrupt frame', () => {
    const data = fixture(FIXTURE_FILES[0]!);
    const pkts = parsePackets(data);
    // Remove a continuation packet of the second video PES (the first carries SPS/PPS,
    // and without them the rest of the GOP would be dropped as undecodable).
    const starts = pkts.flatMap((p, i) => (p.pid === 0x100 && p.pusi ? [i] : []));
    const idx = pkts.findIndex((p, i) => i > starts[1]! && p.pid === 0x100);
    assert.ok(!pkts[idx]!.pusi);
    const cut = Buffer.concat([data.subarray(0, idx * 188), data.subarray((idx + 1) * 188)]);
    const { events, demuxer } = demuxAll(cut);
    assert.equal(demuxer.errors, 1);
    assert.equal(split(events).frames.filter((f) => f.kind === 'video').length, 49);
  });
});
