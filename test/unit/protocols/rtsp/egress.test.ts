import assert from 'node:assert/strict';
import { test } from 'node:test';
import { MediaBus } from '../../../../src/media/bus.js';
import { buildAudioSpecificConfig } from '../../../../src/media/aac.js';
import { buildAvcC, nalsToAvcc, splitAvcc } from '../../../../src/media/h264.js';
import { buildHvcC } from '../../../../src/media/h265.js';
import type { Frame, Tracks } from '../../../../src/media/types.js';
import { RtspEgress, type RtpItem } from '../../../../protocols/rtsp/egress.js';
import { AacDepacketizer } from '../../../../protocols/rtsp/wire/aac-rtp.js';
import { H264Depacketizer } from '../../../../protocols/rtsp/wire/h264-rtp.js';
import { H265Depacketizer } from '../../../../protocols/rtsp/wire/h265-rtp.js';
import { parseRtp, parseSenderReports } from '../../../../protocols/rtsp/wire/rtp.js';

const sps = Buffer.from('6742c00dda0507ec0440000003004000000ca3c50aa8', 'hex');
const pps = Buffer.from('68ce0fc8', 'hex');
const tracks: Tracks = {
  video: { kind: 'video', codec: 'h264', config: buildAvcC([sps], [pps]) },
  audio: {
    kind: 'audio',
    codec: 'aac',
    config: buildAudioSpecificConfig({ objectType: 2, sampleRate: 48000, channels: 2 }),
    sampleRate: 48000,
    channels: 2,
  },
};

function picture(type: number, size: number): Buffer {
  const nal = Buffer.alloc(size, 0xab);
  nal[0] = 0x60 | type;
  return nalsToAvcc([nal]);
}

test('rtsp egress: packets are built once and shared; a viewer starts at a keyframe with SPS/PPS and sender reports', () => {
  const bus = new MediaBus();
  bus.startSource(tracks);
  const egress = new RtspEgress(bus, () => 1_700_000_000_000);
  const a: RtpItem[] = [];
  const b: RtpItem[] = [];
  egress.subscribe({ deliver: (i) => a.push(i), backlog: () => 0 });
  const frames: Frame[] = [
    { kind: 'video', pts: 1000, dts: 1000, keyframe: false, data: picture(1, 100) }, // before any keyframe: withheld
    { kind: 'video', pts: 4600, dts: 4600, keyframe: true, data: picture(5, 4000) },
    { kind: 'audio', pts: 4600, dts: 4600, keyframe: true, data: Buffer.alloc(300, 1) },
    { kind: 'video', pts: 8200, dts: 8200, keyframe: false, data: picture(1, 200) },
  ];
  for (const f of frames) bus.push(f);
  egress.subscribe({ deliver: (i) => b.push(i), backlog: () => 0 }); // late joiner: replayed from the cache
  assert.deepEqual(
    a.map((i) => i.track),
    ['video', 'audio', 'video'],
  );
  assert.equal(b.length, 3);
  assert.ok(
    a.every((item, n) => item.packets === b[n]?.packets),
    'the same packet Buffers for every viewer',
  );

  const key = a[0];
  assert.ok(key?.start && key.reports?.video && key.reports.audio);
  const vsr = parseSenderReports(key.reports.video)[0];
  const asr = parseSenderReports(key.reports.audio)[0];
  assert.equal(vsr?.ntpSeconds, asr?.ntpSeconds, 'both reports at one instant');
  assert.equal(vsr?.rtpTimestamp, key.rtpTime);

  const dv = new H264Depacketizer();
  const aus = a
    .filter((i) => i.track === 'video')
    .flatMap((i) => i.packets.flatMap((p) => dv.push(parseRtp(p))));
  assert.deepEqual(
    aus.map((u) => u.nals.map((n) => (n[0] ?? 0) & 0x1f)),
    [[7, 8, 5], [1]],
    'SPS/PPS prepended to the keyframe',
  );
  assert.deepEqual(aus[0]?.nals[2], splitAvcc(picture(5, 4000))[0]);
  assert.equal(((aus[1]?.timestamp ?? 0) - (aus[0]?.timestamp ?? 0)) >>> 0, 3600);

  const da = new AacDepacketizer({ sizeLength: 13, indexLength: 3, indexDeltaLength: 3 });
  const audio = a
    .filter((i) => i.track === 'audio')
    .flatMap((i) => i.packets.flatMap((p) => da.push(parseRtp(p))));
  assert.deepEqual(
    audio.map((u) => u.frame),
    [Buffer.alloc(300, 1)],
  );
  const audioStart = ((audio[0]?.timestamp ?? 0) - (asr?.rtpTimestamp ?? 0)) >>> 0;
  assert.equal(audioStart, 0, 'audio RTP time of pts 4600 matches the sender report');
  const videoPackets = a.filter((i) => i.track === 'video').reduce((n, i) => n + i.packets.length, 0);
  assert.equal(videoPackets, 6, 'SPS, PPS, 3 FU-A fragments, 1 P-slice');
  assert.equal(egress.nextSequence('video'), ((a[0]?.sequence ?? 0) + videoPackets) & 0xffff);
});

test('rtsp egress: H.265 + Opus — the keyframe carries VPS/SPS/PPS in band, Opus goes on the 48 kHz clock, a viewer starts at the keyframe', () => {
  const hnal = (type: number, size: number): Buffer => {
    const n = Buffer.alloc(size, 0xcd);
    n[0] = type << 1;
    n[1] = 1;
    return n;
  };
  const [vps, hsps, hpps] = [hnal(32, 20), hnal(33, 30), hnal(34, 8)];
  const bus = new MediaBus();
  bus.startSource({
    video: { kind: 'video', codec: 'h265', config: buildHvcC([vps], [hsps], [hpps]) },
    audio: { kind: 'audio', codec: 'opus', config: Buffer.alloc(0), sampleRate: 48000, channels: 2 },
  });
  const egress = new RtspEgress(bus, () => 1_700_000_000_000);
  const items: RtpItem[] = [];
  egress.subscribe({ deliver: (i) => items.push(i), backlog: () => 0 });
  bus.push({ kind: 'audio', pts: 0, dts: 0, keyframe: true, data: Buffer.from([0xfc, 1, 2]) }); // before a keyframe
  const idr = hnal(19, 3000);
  bus.push({ kind: 'video', pts: 900, dts: 900, keyframe: true, data: nalsToAvcc([idr]) });
  bus.push({ kind: 'audio', pts: 900, dts: 900, keyframe: true, data: Buffer.from([0xfc, 3, 4]) });
  bus.push({ kind: 'audio', pts: 2700, dts: 2700, keyframe: true, data: Buffer.from([0xfc, 5, 6]) });
  assert.deepEqual(
    items.map((i) => [i.track, i.start]),
    [
      ['video', true],
      ['audio', false],
      ['audio', false],
    ],
    'the viewer starts at the video keyframe; audio alone is no start point when there is video',
  );
  const d = new H265Depacketizer();
  const au = items[0]?.packets.flatMap((p) => d.push(parseRtp(p)))[0];
  assert.deepEqual(au?.nals, [vps, hsps, hpps, idr]);
  const [a1, a2] = [items[1], items[2]].map((i) => parseRtp(i?.packets[0] ?? Buffer.alloc(12)));
  assert.equal(((a2?.timestamp ?? 0) - (a1?.timestamp ?? 0)) >>> 0, 960, '20 ms at 48 kHz');
  assert.deepEqual(a1?.payload, Buffer.from([0xfc, 3, 4]));
});

test('rtsp egress: with a video codec RTSP cannot carry, audio frames are the start points', () => {
  const bus = new MediaBus();
  const codec = 'vp9' as 'h264'; // stands for a codec the media model may learn (VP9, AV1)
  bus.startSource({ video: { kind: 'video', codec, config: Buffer.alloc(0) }, audio: tracks.audio });
  const egress = new RtspEgress(bus, () => 1_700_000_000_000);
  const items: RtpItem[] = [];
  egress.subscribe({ deliver: (i) => items.push(i), backlog: () => 0 });
  bus.push({ kind: 'video', pts: 0, dts: 0, keyframe: true, data: picture(5, 100) });
  bus.push({ kind: 'audio', pts: 0, dts: 0, keyframe: true, data: Buffer.alloc(50, 1) });
  assert.deepEqual(
    items.map((i) => [i.track, i.start]),
    [['audio', true]],
  );
});
