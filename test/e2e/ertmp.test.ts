/**
 * Enhanced RTMP and the OBS login end to end (issue 10): an E-RTMP publisher (test/helpers/
 * ertmp-publisher.ts: Debian ffmpeg's libx265/libsvtav1 output packed as E-RTMP, since no client
 * here sends it) feeds the real server; what RTMP viewers receive is decoded by ffmpeg, HTTP-TS by
 * ffprobe, and outputs that cannot carry a codec refuse it. ffmpeg 5.1 and every other player on
 * this machine predate E-RTMP (ffmpeg reads E-RTMP from 6.1 on), so the RTMP check reads the
 * viewer's bytes with our raw client and has ffmpeg decode the elementary stream they carry.
 * ffmpeg's own `rtmp://user:pass@` publisher exercises Adobe `authmod`.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startStreamgate, type RunningStreamgate } from '../helpers/streamgate.js';
import { av1Encoder, packErtmp, publishErtmp, type ErtmpStream } from '../helpers/ertmp-publisher.js';
import { rtmpProbe } from '../helpers/rtmp-client.js';
import { ffmpegPublish, ffprobePackets, sleep, stopProcess } from '../helpers/clients.js';
import { skipWithout } from '../helpers/tools.js';
import { FlvToFrames } from '../../src/media/flv.js';
import { parseHvcC } from '../../src/media/h265.js';
import { splitAvcc } from '../../src/media/h264.js';
import type { Frame, Tracks } from '../../src/media/types.js';

const skip = skipWithout(['ffmpeg'], ['ffprobe']);

let server: RunningStreamgate;
let dir: string;

before(async () => {
  if (skip) return;
  dir = mkdtempSync(join(tmpdir(), 'ertmp-e2e-'));
  server = await startStreamgate(
    `
    template live { prefix live; input publish://; }
    template obs { prefix obs; input publish://; password s3cret; rtmp_auth adobe; }
  `,
    { listeners: 'http 127.0.0.1:0;\nrtmp 127.0.0.1:0;\nrtsp 127.0.0.1:0;\n' },
  );
});

after(async () => {
  if (skip) return;
  assert.equal(await server.stop(), 0);
});

/** What an RTMP viewer got, demuxed: tracks, frames, and the video tag headers' FourCCs. */
async function playRtmp(
  name: string,
  ms: number,
): Promise<{ tracks: Tracks; frames: Frame[]; fourCcs: Set<string>; statuses: string[] }> {
  const probe = await rtmpProbe(server.ports['rtmp'] ?? 0, 'live', name, { ms, collect: true });
  const demux = new FlvToFrames();
  const frames: Frame[] = [];
  const fourCcs = new Set<string>();
  for (const m of probe.media) {
    if (m.type === 9) {
      fourCcs.add(
        m.payload[0]! & 0x80 ? m.payload.toString('latin1', 1, 5) : `legacy-${m.payload[0]! & 0x0f}`,
      );
    }
    const r = m.type === 9 ? demux.video(m.timestamp, m.payload) : demux.audio(m.timestamp, m.payload);
    if (r.frame) frames.push(r.frame);
  }
  return { tracks: demux.currentTracks(), frames, fourCcs, statuses: probe.statuses.map((s) => s.code) };
}

/** ffmpeg decodes `file` (format `fmt`) to null; the number of video frames it decoded. */
function decodeFrames(file: string, fmt: string): number {
  const r = spawnSync(
    'ffmpeg',
    [
      '-hide_banner',
      '-loglevel',
      'error',
      '-f',
      fmt,
      '-i',
      file,
      '-map',
      '0:v',
      '-f',
      'null',
      '-',
      '-progress',
      'pipe:1',
    ],
    { encoding: 'utf8', timeout: 30_000 },
  );
  assert.equal(r.status, 0, r.stderr);
  const m = [...r.stdout.matchAll(/^frame=(\d+)/gm)].pop();
  return Number(m?.[1] ?? 0);
}

/** HEVC frames as an Annex B elementary stream, the parameter sets of `hvcC` first. */
function hevcAnnexB(hvcC: Buffer, frames: Frame[]): Buffer {
  const cfg = parseHvcC(hvcC);
  assert.ok(cfg, 'hvcC parses');
  const start = Buffer.of(0, 0, 0, 1);
  const nals = [...cfg.vps, ...cfg.sps, ...cfg.pps, ...frames.flatMap((f) => splitAvcc(f.data))];
  return Buffer.concat(nals.flatMap((n) => [start, n]));
}

/** AV1 temporal units as IVF (32-byte header, 12-byte frame headers), a temporal delimiter first in each. */
function av1Ivf(frames: Frame[]): Buffer {
  const header = Buffer.alloc(32);
  header.write('DKIF', 0, 'latin1');
  header.writeUInt16LE(32, 6);
  header.write('AV01', 8, 'latin1');
  header.writeUInt16LE(320, 12);
  header.writeUInt16LE(240, 14);
  header.writeUInt32LE(1000, 16);
  header.writeUInt32LE(1, 20);
  header.writeUInt32LE(frames.length, 24);
  const parts = [header];
  const base = frames[0]?.dts ?? 0;
  for (const f of frames) {
    const tu = Buffer.concat([Buffer.of(0x12, 0x00), f.data]);
    const fh = Buffer.alloc(12);
    fh.writeUInt32LE(tu.length, 0);
    fh.writeBigUInt64LE(BigInt(Math.round((f.dts - base) / 90)), 4);
    parts.push(fh, tu);
  }
  return Buffer.concat(parts);
}

/** The status line of an RTSP DESCRIBE. */
async function rtspDescribe(path: string): Promise<string> {
  const socket = connect(server.ports['rtsp'] ?? 0, '127.0.0.1');
  socket.write(`DESCRIBE rtsp://127.0.0.1/${path} RTSP/1.0\r\nCSeq: 1\r\nAccept: application/sdp\r\n\r\n`);
  const data = await new Promise<string>((resolve) => {
    let text = '';
    socket.on('data', (d: Buffer) => {
      text += d.toString('latin1');
      if (text.includes('\r\n\r\n')) resolve(text);
    });
    socket.on('close', () => resolve(text));
    socket.on('error', () => resolve(text));
  });
  socket.destroy();
  return data.split('\r\n')[0] ?? '';
}

let hevc: ErtmpStream | undefined;

test(
  'e-rtmp: HEVC + AAC published as E-RTMP plays over RTMP (hvc1 on every frame) and HTTP-TS',
  { skip, timeout: 90_000 },
  async () => {
    hevc = packErtmp('hevc', 'aac', { seconds: 6 });
    const publishing = publishErtmp(server.ports['rtmp'] ?? 0, 'live', 'hevc', hevc.tags);
    try {
      await sleep(1500);
      const played = await playRtmp('hevc', 2500);
      assert.deepEqual(played.statuses, ['NetStream.Play.Reset', 'NetStream.Play.Start']);
      // Issue 10 bug 1: frames after an E-RTMP sequence header went out with the legacy AVC id 7.
      assert.deepEqual([...played.fourCcs], ['hvc1'], 'every video message is E-RTMP hvc1');
      assert.equal(played.tracks.video?.codec, 'h265');
      assert.equal(played.tracks.audio?.codec, 'aac');
      const video = played.frames.filter((f) => f.kind === 'video');
      assert.ok(video.length >= 40, `video frames ${video.length}`);
      assert.equal(video[0]?.keyframe, true, 'the viewer starts on a keyframe');
      const file = join(dir, 'hevc.h265');
      writeFileSync(file, hevcAnnexB(played.tracks.video.config, video));
      const decoded = decodeFrames(file, 'hevc');
      assert.equal(decoded, video.length, 'ffmpeg decodes every HEVC frame the RTMP viewer got');

      const ts = await ffprobePackets(`http://127.0.0.1:${server.ports['http']}/live/hevc/mpegts`, 2);
      assert.equal(ts.code, 0, ts.stderr);
      assert.ok(
        ts.videoFrames >= 25 && ts.audioFrames >= 25,
        `HTTP-TS frames v=${ts.videoFrames} a=${ts.audioFrames}`,
      );
    } finally {
      const pub = await publishing;
      assert.equal(pub.statuses[0]?.code, 'NetStream.Publish.Start');
      // We declared fourCcList, so the server answered with its own and capsEx.
      assert.ok(Array.isArray(pub.connectProperties?.['fourCcList']));
      assert.equal(pub.connectProperties?.['capsEx'], 6);
    }
  },
);

const av1Skip = skip || (av1Encoder() ? false : 'this ffmpeg has no AV1 encoder');

test(
  'e-rtmp: AV1 + Opus plays over RTMP; HLS and HTTP-TS answer 415 and RTSP 415 with the reason',
  { skip: av1Skip, timeout: 90_000 },
  async () => {
    const av1 = packErtmp('av1', 'opus', { seconds: 6 });
    const publishing = publishErtmp(server.ports['rtmp'] ?? 0, 'live', 'av1', av1.tags);
    try {
      await sleep(1500);
      const played = await playRtmp('av1', 2500);
      assert.deepEqual([...played.fourCcs], ['av01']);
      assert.equal(played.tracks.video?.codec, 'av1');
      assert.equal(played.tracks.audio?.codec, 'opus');
      const video = played.frames.filter((f) => f.kind === 'video');
      assert.ok(video.length >= 40, `video frames ${video.length}`);
      assert.equal(video[0]?.keyframe, true);
      const file = join(dir, 'av1.ivf');
      writeFileSync(file, av1Ivf(video));
      assert.equal(decodeFrames(file, 'ivf'), video.length, 'ffmpeg (libdav1d) decodes every AV1 frame');
      assert.ok(
        played.frames.some((f) => f.kind === 'audio'),
        'Opus reaches the RTMP viewer',
      );

      const http = `http://127.0.0.1:${server.ports['http']}/live/av1`;
      for (const url of [`${http}/index.m3u8`, `${http}/mpegts`]) {
        const res = await fetch(url);
        assert.equal(res.status, 415, url);
        assert.match(await res.text(), /AV1 video cannot be carried over .*; it plays over RTMP/);
      }
      assert.equal(
        await rtspDescribe('live/av1'),
        'RTSP/1.0 415 Unsupported Media Type (AV1 video cannot be carried over RTSP; it plays over RTMP)',
      );
    } finally {
      await publishing;
    }
  },
);

test(
  'e-rtmp: a player that lists its FourCCs without av01 gets NetStream.Play.Failed naming the codec',
  { skip: av1Skip, timeout: 60_000 },
  async () => {
    const av1 = packErtmp('av1', 'opus', { seconds: 4 });
    const publishing = publishErtmp(server.ports['rtmp'] ?? 0, 'live', 'av1b', av1.tags);
    try {
      await sleep(1000);
      // The connect of this raw player declares fourCcList ['hvc1'] only.
      const probe = await rtmpProbeWithFourCcs('av1b', ['hvc1']);
      assert.equal(probe.code, 'NetStream.Play.Failed');
      assert.match(probe.description, /av01/);
    } finally {
      await publishing;
    }
  },
);

/** A play whose connect carries `fourCcList`; the first onStatus it gets. */
async function rtmpProbeWithFourCcs(
  name: string,
  fourCcList: string[],
): Promise<{ code: string; description: string }> {
  const { ChunkReader } = await import('../../protocols/rtmp/wire/chunk-reader.js');
  const { command, decodeCommand, MessageType } = await import('../../protocols/rtmp/wire/messages.js');
  const { chunkReaderLimits } = await import('../../protocols/rtmp/session.js');
  const { DEFAULT_LIMITS } = await import('../../src/core/limits.js');
  const port = server.ports['rtmp'] ?? 0;
  const socket = connect(port, '127.0.0.1');
  const reader = new ChunkReader(chunkReaderLimits(DEFAULT_LIMITS));
  let hs: Buffer | undefined = Buffer.alloc(0);
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('no onStatus')), 10_000);
    socket.on('error', reject);
    socket.on('connect', () => socket.write(Buffer.concat([Buffer.of(3), Buffer.alloc(1536, 7)])));
    socket.on('data', (data: Buffer) => {
      if (hs !== undefined) {
        const all = Buffer.concat([hs, data]);
        if (all.length < 3073) return void (hs = all);
        hs = undefined;
        socket.write(all.subarray(1, 1537));
        socket.write(
          command(3, 0, 128, 'connect', 1, {
            app: 'live',
            tcUrl: `rtmp://127.0.0.1:${port}/live`,
            fourCcList,
          }),
        );
        data = all.subarray(3073);
      }
      for (const m of reader.push(data)) {
        if (m.type !== MessageType.CommandAmf0) continue;
        const c = decodeCommand(m);
        if (c.name === '_result' && c.txId === 1) socket.write(command(3, 0, 128, 'createStream', 2, null));
        else if (c.name === '_result' && c.txId === 2) {
          socket.write(command(8, 1, 128, 'play', 3, null, name));
        } else if (c.name === 'onStatus') {
          clearTimeout(timer);
          socket.destroy();
          resolve(c.args[1] as { code: string; description: string });
        }
      }
    });
  });
}

test(
  'rtmp authmod=adobe: ffmpeg rtmp://user:password@ publishes to a rtmp_auth stream; a wrong password is refused; players are not challenged',
  { skip, timeout: 60_000 },
  async () => {
    const rtmp = server.ports['rtmp'] ?? 0;
    const wrong = ffmpegPublish(`rtmp://alice:nope@127.0.0.1:${rtmp}/obs/cam1`, { seconds: 2 });
    let wrongErr = '';
    wrong.stderr?.on('data', (d: Buffer) => (wrongErr += d.toString()));
    const wrongCode = await new Promise<number | null>((r) => wrong.once('exit', r));
    assert.notEqual(wrongCode, 0);
    assert.match(wrongErr, /wrong_password/);

    const pub = ffmpegPublish(`rtmp://alice:s3cret@127.0.0.1:${rtmp}/obs/cam1`);
    try {
      await sleep(2000);
      const played = await ffprobePackets(`rtmp://127.0.0.1:${rtmp}/obs/cam1`, 2);
      assert.equal(played.code, 0, played.stderr);
      assert.ok(played.videoFrames >= 25, `video frames ${played.videoFrames}`);
    } finally {
      await stopProcess(pub);
    }
    const challenged = server.logs.filter((l) => l.includes('authmod=adobe challenge sent')).length;
    assert.ok(challenged >= 4, `two challenges per login (need auth, then salt/challenge): ${challenged}`);
    const denied = server.logs.filter(
      (l) => l.includes('"reason":"wrong_password"') && l.includes('obs/cam1'),
    );
    assert.ok(denied.length >= 1, 'the wrong password was refused at publish');
  },
);
