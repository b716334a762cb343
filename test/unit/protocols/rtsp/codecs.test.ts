import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { parseAudioSpecificConfig } from '../../../../src/media/aac.js';
import { splitAvcc } from '../../../../src/media/h264.js';
import { hevcNalType, isIrap, parseHvcC } from '../../../../src/media/h265.js';
import type { Frame, Tracks } from '../../../../src/media/types.js';
import { readerLimits } from '../../../../protocols/rtsp/control.js';
import { RecordState } from '../../../../protocols/rtsp/record.js';
import { H265Depacketizer, H265Packetizer } from '../../../../protocols/rtsp/wire/h265-rtp.js';
import { LatmDepacketizer, parseStreamMuxConfig } from '../../../../protocols/rtsp/wire/latm-rtp.js';
import { RtspReader } from '../../../../protocols/rtsp/wire/message.js';
import { OpusDepacketizer, OpusPacketizer } from '../../../../protocols/rtsp/wire/opus-rtp.js';
import { RtpReorder } from '../../../../protocols/rtsp/wire/reorder.js';
import { parseRtp, type RtpPacket } from '../../../../protocols/rtsp/wire/rtp.js';
import { announcedTracks, parseSdp, writeSdp } from '../../../../protocols/rtsp/wire/sdp.js';
import { RtspProtocolError } from '../../../../protocols/rtsp/wire/errors.js';
import { DEFAULT_LIMITS } from '../../../../src/core/limits.js';

const fixture = (name: string): Buffer =>
  readFileSync(new URL(`../../../fixtures/rtsp/${name}`, import.meta.url));

interface Replayed {
  sdp: string;
  tracks: Tracks[];
  frames: Frame[];
  malformed: string[];
}

/** Replays a captured publish through RecordState the way RtspConn does (TCP interleaved). */
function replay(name: string): Replayed {
  const items = new RtspReader(readerLimits(DEFAULT_LIMITS)).push(fixture(name));
  let record: RecordState | undefined;
  const out: Replayed = { sdp: '', tracks: [], frames: [], malformed: [] };
  for (const i of items) {
    if (i.kind === 'request') {
      const r = i.request;
      if (r.method === 'ANNOUNCE') {
        out.sdp = r.body.toString();
        const announced = announcedTracks(parseSdp(out.sdp));
        assert.deepEqual(announced.unsupported, [], `${name}: everything announced is carried`);
        record = new RecordState(announced);
      }
      if (r.method === 'SETUP') {
        assert.equal(record?.setup(r.uri, r.headers.get('transport') ?? '').status, 200);
      }
      if (r.method === 'RECORD') assert.equal(record?.record(), true);
    } else if (i.kind === 'interleaved' && record) {
      const got = record.receive(i.channel, i.payload);
      if (got.kind === 'malformed') out.malformed.push(got.error);
      if (got.kind !== 'media') continue;
      if (got.tracks) out.tracks.push(got.tracks);
      out.frames.push(...got.frames);
    }
  }
  return out;
}

const video = (r: Replayed): Frame[] => r.frames.filter((f) => f.kind === 'video');
const audio = (r: Replayed): Frame[] => r.frames.filter((f) => f.kind === 'audio');
const steps = (frames: Frame[]): number[] => frames.slice(1).map((f, i) => f.pts - (frames[i]?.pts ?? 0));

test('rtsp ingest: GStreamer rtspclientsink H.264 + AAC as MP4A-LATM (1 s) becomes 25 pictures and the AAC frames', () => {
  const r = replay('gst-h264-latm-tcp.bin');
  assert.match(r.sdp, /MP4A-LATM\/44100/);
  assert.deepEqual(r.malformed, []);
  const t = r.tracks.at(-1);
  assert.equal(t?.video?.codec, 'h264');
  assert.equal(t?.video?.width, 160);
  assert.equal(t?.audio?.codec, 'aac');
  assert.equal(t?.audio?.sampleRate, 44100);
  assert.equal(t?.audio?.channels, 2);
  assert.deepEqual(parseAudioSpecificConfig(t?.audio?.config ?? Buffer.alloc(0))?.objectType, 2);
  assert.equal(video(r).length, 25);
  assert.equal(video(r)[0]?.keyframe, true);
  const a = audio(r);
  // 44 buffers of 1024 samples from audiotestsrc; the encoder's priming and flush move a frame or two.
  assert.ok(a.length >= 40 && a.length <= 46, `audio frames ${a.length}`);
  assert.ok(
    steps(a).every((g) => g >= 2087 && g <= 2090), // GStreamer rounds its timestamps: 1023 or 1024 ticks
    'one AAC frame (1024 samples at 44.1 kHz) apart',
  );
  // A raw AAC frame never starts with an ADTS sync word or a LATM length byte run.
  assert.ok(a.every((f) => f.data.length > 4 && f.data.readUInt16BE(0) >> 4 !== 0xfff));
});

test('rtsp ingest: GStreamer H.265 + Opus (1 s) becomes 25 HEVC pictures with an hvcC and 20 ms Opus packets', () => {
  const r = replay('gst-h265-opus-tcp.bin');
  assert.deepEqual(r.malformed, []);
  const t = r.tracks.at(-1);
  assert.equal(t?.video?.codec, 'h265');
  assert.equal(t?.video?.width, 160);
  assert.equal(t?.video?.height, 120);
  const cfg = parseHvcC(t?.video?.config ?? Buffer.alloc(0));
  assert.equal(cfg?.vps.length, 1);
  assert.equal(cfg?.sps.length, 1);
  assert.equal(cfg?.pps.length, 1);
  assert.equal(t?.audio?.codec, 'opus');
  assert.equal(t?.audio?.channels, 2);
  const v = video(r);
  assert.equal(v.length, 25);
  assert.equal(v[0]?.keyframe, true);
  assert.ok(splitAvcc(v[0]?.data ?? Buffer.alloc(0)).some(isIrap));
  assert.ok(
    steps(v).every((g) => g === 3600),
    '25 fps',
  );
  const a = audio(r);
  // 50 buffers of 1024 samples are 53⅓ packets of 20 ms.
  assert.ok(a.length >= 50 && a.length <= 56, `opus packets ${a.length}`);
  assert.ok(
    steps(a)
      .slice(1)
      .every((g) => g === 1800), // the first packet is shorter: look-ahead trimmed
    '20 ms apart on the 90 kHz clock',
  );
});

test('rtsp ingest: ffmpeg H.265 (parameter sets only in the SDP) + AAC', () => {
  const r = replay('ffmpeg-h265-aac-tcp.bin');
  assert.deepEqual(r.malformed, []);
  const t = r.tracks.at(-1);
  assert.equal(t?.video?.codec, 'h265');
  assert.equal(t?.video?.width, 160);
  const v = video(r);
  assert.equal(v.length, 25);
  assert.equal(v[0]?.keyframe, true);
  assert.ok(splitAvcc(v[0]?.data ?? Buffer.alloc(0)).some(isIrap));
  assert.equal(parseHvcC(t?.video?.config ?? Buffer.alloc(0))?.vps.length, 1, 'hvcC from sprop-vps/sps/pps');
  assert.ok(audio(r).length > 30);
});

test('rtsp ingest: ffmpeg H.264 + Opus', () => {
  const r = replay('ffmpeg-h264-opus-tcp.bin');
  assert.deepEqual(r.malformed, []);
  const t = r.tracks.at(-1);
  assert.equal(t?.video?.codec, 'h264');
  assert.equal(t?.audio?.codec, 'opus');
  assert.equal(video(r).length, 25);
  assert.ok(steps(audio(r)).every((g) => g === 1800));
});

test('rtsp ingest: the GStreamer capture replayed shuffled and with a lost packet, through the UDP reorder buffer', () => {
  const items = new RtspReader(readerLimits(DEFAULT_LIMITS)).push(fixture('gst-h264-latm-tcp.bin'));
  const announce = items.find((i) => i.kind === 'request' && i.request.method === 'ANNOUNCE');
  assert.ok(announce?.kind === 'request');
  const record = new RecordState(announcedTracks(parseSdp(announce.request.body.toString())));
  // GStreamer set up audio (stream=1) on channels 0-1 and video on 2-3.
  const offer = (c: number): string => `RTP/AVP;unicast;client_port=${5000 + c}-${5001 + c};mode=record`;
  const base = 'rtsp://127.0.0.1/live/g';
  assert.equal(record.setup(`${base}/stream=1`, offer(0), { rtpPort: 6000, rtcpPort: 6001 }).status, 200);
  assert.equal(record.setup(`${base}/stream=0`, offer(2), { rtpPort: 6002, rtcpPort: 6003 }).status, 200);
  assert.ok(record.record());
  const videoPackets = items
    .filter((i) => i.kind === 'interleaved' && i.channel === 2)
    .map((i) => (i.kind === 'interleaved' ? i.payload : Buffer.alloc(0)));
  // The first packet in place (it sets the statistics' base), then neighbours swapped; one dropped.
  const shuffled: Buffer[] = [videoPackets[0]!];
  for (let k = 1; k + 1 < videoPackets.length; k += 2) shuffled.push(videoPackets[k + 1]!, videoPackets[k]!);
  if (videoPackets.length % 2 === 0) shuffled.push(videoPackets.at(-1)!);
  const dropped = shuffled.splice(Math.floor(shuffled.length / 2), 1)[0]!;
  const frames: Frame[] = [];
  // 2 ms apart: the gap is given up on after MAX_REORDER_WAIT_S, the packets held at the end stay held.
  for (const [k, p] of shuffled.entries()) {
    const got = record.receiveUdp('video', false, p, k * 0.002);
    assert.equal(got.kind, 'media');
    if (got.kind === 'media') frames.push(...got.frames);
  }
  assert.ok(frames.length >= 20 && frames.length <= 25, `${frames.length} pictures despite reordering`);
  assert.ok(
    steps(frames).every((g) => g > 0),
    'in order',
  );
  assert.ok(record.losses('video').lost >= 1, 'the dropped packet is counted lost');
  assert.ok(parseRtp(dropped).sequence >= 0);
  const reports = record.receiverReports(0x1234, 'streamgate@test', 1);
  assert.deepEqual(
    reports.map((r) => r.kind),
    ['video'],
  );
  const rr = reports[0]!.packet;
  assert.equal(rr[1], 201);
  assert.equal(rr.readUInt32BE(4), 0x1234);
  assert.equal(rr.readUInt32BE(12) & 0xffffff, 1, 'cumulative lost: one packet');
  assert.equal(rr[33], 202, 'SDES follows');
  assert.match(rr.subarray(40).toString('latin1'), /streamgate@test/);
});

test('h265 rtp: a 5000-byte IDR becomes fragmentation units and back; the parameter sets give an hvcC', () => {
  const fixtureHvcC = announcedTracks(
    parseSdp(
      readFileSync(new URL('../../../fixtures/rtsp/ffmpeg-h265-aac-tcp.bin', import.meta.url))
        .toString('latin1')
        .split('\r\n\r\n')[2] ?? '',
    ),
  ).tracks.video?.config;
  const cfg = parseHvcC(fixtureHvcC ?? Buffer.alloc(0));
  assert.ok(cfg);
  const idr = Buffer.alloc(5000, 0xab);
  idr[0] = 19 << 1; // IDR_W_RADL
  idr[1] = 1;
  const nals = [...cfg.vps, ...cfg.sps, ...cfg.pps, idr];
  const p = new H265Packetizer({ payloadType: 96, ssrc: 1, initialSequence: 65534, maxPayload: 1400 });
  const packets = p.packetize(nals, 1234).map(parseRtp);
  assert.equal(packets.length, 3 + 4);
  assert.deepEqual(
    packets.map((x) => x.marker),
    [false, false, false, false, false, false, true],
  );
  assert.ok(packets.every((x) => x.payload.length <= 1400));
  assert.equal(hevcNalType(packets[3]!.payload), 49, 'FU');
  const d = new H265Depacketizer();
  const aus = packets.flatMap((x) => d.push(x));
  assert.equal(aus.length, 1);
  assert.equal(aus[0]?.keyframe, true);
  assert.deepEqual(aus[0]?.nals, nals);
  assert.deepEqual(parseHvcC(aus[0]?.config ?? Buffer.alloc(0))?.sps, cfg.sps);
});

test('h265 rtp: an aggregation packet is split; a lost fragment drops only its NAL unit; bad payloads throw', () => {
  const a = Buffer.from([0x02, 0x01, 0xaa]);
  const b = Buffer.from([0x02, 0x01, 0xbb, 0xcc]);
  const ap = Buffer.concat([Buffer.from([48 << 1, 1, 0, 3]), a, Buffer.from([0, 4]), b]);
  const pkt = (sequence: number, payload: Buffer, marker = true): RtpPacket => ({
    marker,
    payloadType: 96,
    sequence,
    timestamp: 90,
    ssrc: 1,
    payload,
  });
  const d = new H265Depacketizer();
  assert.deepEqual(d.push(pkt(1, ap))[0]?.nals, [a, b]);
  const fu = (s: boolean, e: boolean, body: number): Buffer =>
    Buffer.from([49 << 1, 1, (s ? 0x80 : 0) | (e ? 0x40 : 0) | 1, body]);
  assert.deepEqual(d.push(pkt(2, fu(true, false, 1), false)), []);
  // sequence 3 lost
  assert.deepEqual(d.push(pkt(4, fu(false, true, 3))), []);
  assert.equal(d.lost, 1);
  assert.throws(() => d.push(pkt(5, Buffer.from([0x80, 1, 0]))), RtspProtocolError);
  assert.throws(() => d.push(pkt(6, Buffer.from([48 << 1, 1, 0, 9, 1]))), RtspProtocolError);
});

test('opus rtp: one packet per RTP packet both ways, and the SDP says opus/48000/2 with sprop-stereo', () => {
  const p = new OpusPacketizer({ payloadType: 97, ssrc: 9, initialSequence: 1 });
  const packet = Buffer.from([0xfc, 1, 2, 3]);
  const [rtp] = p.packetize(packet, 960);
  const got = new OpusDepacketizer().push(parseRtp(rtp!));
  assert.deepEqual(got, [{ timestamp: 960, packet }]);
  const sdp = writeSdp({
    audio: { kind: 'audio', codec: 'opus', config: Buffer.alloc(0), sampleRate: 48000, channels: 2 },
  });
  assert.match(sdp, /a=rtpmap:97 opus\/48000\/2\r\na=fmtp:97 sprop-stereo=1\r\n/);
  const back = announcedTracks(parseSdp(sdp));
  assert.equal(back.audio?.format, 'opus');
  assert.equal(back.tracks.audio?.channels, 2);
});

test('h265 sdp: sprop-vps/sps/pps written from the hvcC and read back', () => {
  const r = replay('gst-h265-opus-tcp.bin');
  const video = r.tracks.at(-1)?.video;
  assert.ok(video);
  const sdp = writeSdp({ video });
  assert.match(sdp, /a=rtpmap:96 H265\/90000\r\na=fmtp:96 sprop-vps=[^;]+;sprop-sps=[^;]+;sprop-pps=/);
  const back = announcedTracks(parseSdp(sdp));
  assert.equal(back.video?.codec, 'h265');
  assert.deepEqual(
    parseHvcC(back.tracks.video?.config ?? Buffer.alloc(0))?.sps,
    parseHvcC(video.config)?.sps,
  );
});

test('latm: StreamMuxConfig → AudioSpecificConfig; payloadLengthInfo runs of 255; fragments joined at the marker', () => {
  const cfg = parseStreamMuxConfig(Buffer.from('40002420adca00', 'hex'));
  // AAC LC, 44.1 kHz, stereo, and the SBR sync extension (absent SBR) GStreamer writes after it.
  assert.equal(cfg.asc.toString('hex'), '121056e500');
  assert.equal(cfg.subFrames, 1);
  // 48 kHz mono (ffmpeg's latm muxer): 40 00 23 10 3f c0
  assert.equal(parseStreamMuxConfig(Buffer.from('400023103fc0', 'hex')).asc.toString('hex'), '1188');
  assert.throws(
    () => parseStreamMuxConfig(Buffer.from('4001', 'hex')),
    (e: unknown) => e instanceof RtspProtocolError && e.status === 415,
  );
  const d = new LatmDepacketizer(cfg, 44100);
  const frame = Buffer.alloc(600, 7);
  const element = Buffer.concat([Buffer.from([255, 255, 90]), frame]);
  const pkt = (sequence: number, payload: Buffer, marker: boolean): RtpPacket => ({
    marker,
    payloadType: 96,
    sequence,
    timestamp: 1000,
    ssrc: 1,
    payload,
  });
  assert.deepEqual(d.push(pkt(1, element.subarray(0, 300), false)), []);
  assert.deepEqual(d.push(pkt(2, element.subarray(300), true)), [{ timestamp: 1000, frame }]);
  // Two elements in one packet: the second frame is 1024 samples later.
  const two = Buffer.concat([Buffer.from([2]), Buffer.from([1, 2]), Buffer.from([1]), Buffer.from([3])]);
  assert.deepEqual(
    d.push({ ...pkt(3, two, true), timestamp: 5000 }).map((u) => u.timestamp),
    [5000, 6024],
  );
  assert.throws(() => d.push(pkt(4, Buffer.from([9, 1]), true)), RtspProtocolError);
});

test('reorder: in order passes through; a swap is undone; a gap is skipped after `depth` packets; duplicates dropped', () => {
  const p = (sequence: number): RtpPacket => ({
    marker: false,
    payloadType: 96,
    sequence,
    timestamp: 0,
    ssrc: 1,
    payload: Buffer.alloc(0),
  });
  const seqs = (ps: RtpPacket[]): number[] => ps.map((x) => x.sequence);
  const r = new RtpReorder(2);
  assert.deepEqual(seqs(r.push(p(65534))), [65534]);
  assert.deepEqual(seqs(r.push(p(0))), []);
  assert.deepEqual(seqs(r.push(p(65535))), [65535, 0], 'across the wrap');
  assert.deepEqual(seqs(r.push(p(0))), [], 'a duplicate');
  assert.deepEqual(seqs(r.push(p(3))), []);
  assert.deepEqual(seqs(r.push(p(4))), []);
  assert.deepEqual(seqs(r.push(p(5))), [3, 4, 5], '1 and 2 declared lost');
  assert.equal(r.lost, 2);
  assert.equal(r.late, 1);
  assert.deepEqual(seqs(r.push(p(40000))), [40000], 'a restarted sender');
  const tcp = new RtpReorder(0);
  assert.deepEqual(seqs([1, 2, 4, 5].flatMap((s) => tcp.push(p(s)))), [1, 2, 4, 5]);
});
