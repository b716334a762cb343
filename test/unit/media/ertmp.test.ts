/**
 * Enhanced RTMP on captured tags: the fixtures in test/fixtures/rtmp/ertmp-*.flv were packed by
 * test/helpers/ertmp-publisher.ts from Debian ffmpeg's libx265/libsvtav1/libopus/aac output, by a
 * packer written from the spec independently of src/media/flv.ts.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import {
  FlvReader,
  FlvToFrames,
  audioSequenceHeader,
  audioTagBody,
  onMetaData,
  videoSequenceHeader,
  videoTagBody,
  type FlvResult,
} from '../../../src/media/flv.js';
import { decodeAmf0 } from '../../../src/media/amf0.js';
import type { AudioTrack, Frame, VideoTrack } from '../../../src/media/types.js';

const fixture = (name: string): Buffer =>
  readFileSync(new URL(`../../fixtures/rtmp/${name}`, import.meta.url));

function demux(name: string): { demux: FlvToFrames; results: FlvResult[]; frames: Frame[] } {
  const demux = new FlvToFrames();
  const results = new FlvReader()
    .push(fixture(name))
    .map((t) => (t.type === 9 ? demux.video(t.timestamp, t.data) : demux.audio(t.timestamp, t.data)));
  return { demux, results, frames: results.flatMap((r) => (r.frame ? [r.frame] : [])) };
}

test('e-rtmp: hvc1 SequenceStart + CodedFramesX and mp4a audio from libx265/aac', () => {
  const { demux: d, frames } = demux('ertmp-hevc-aac.flv');
  const { video, audio } = d.currentTracks();
  assert.equal(video?.codec, 'h265');
  assert.deepEqual([video?.width, video?.height], [320, 240], 'size from the hvcC SPS');
  assert.equal(audio?.codec, 'aac');
  assert.deepEqual([audio?.sampleRate, audio?.channels], [48000, 1]);
  const v = frames.filter((f) => f.kind === 'video');
  assert.equal(v.length, 10);
  assert.equal(v[0]?.keyframe, true, 'the first frame is the IRAP');
  assert.equal(v.filter((f) => f.keyframe).length, 1);
  assert.deepEqual(
    v.map((f) => (f.dts - v[0]!.dts) / 90),
    [0, 40, 80, 120, 160, 200, 240, 280, 320, 360],
  );
  // Length-prefixed NAL units, as the bus wants: the first length covers part of the frame.
  assert.ok(v[0]!.data.readUInt32BE(0) < v[0]!.data.length);
  assert.ok(frames.filter((f) => f.kind === 'audio').length >= 15);
});

test('e-rtmp: av01 SequenceStart (av1C) + CodedFrames without composition time, and Opus', () => {
  const { demux: d, frames } = demux('ertmp-av1-opus.flv');
  const { video, audio } = d.currentTracks();
  assert.equal(video?.codec, 'av1');
  assert.equal(video?.config[0], 0x81, 'av1C marker and version');
  assert.equal(audio?.codec, 'opus');
  assert.deepEqual([audio?.sampleRate, audio?.channels], [48000, 1], 'channels from the OpusHead');
  const v = frames.filter((f) => f.kind === 'video');
  assert.equal(v.length, 10);
  assert.equal(v[0]?.keyframe, true);
  // The payload starts at an OBU header (forbidden bit 0, has_size_field 1), not three CTS bytes.
  for (const f of v) assert.equal(f.data[0]! & 0x82, 0x02, 'OBU header first');
  assert.ok(v.every((f) => f.pts === f.dts));
  assert.ok(frames.filter((f) => f.kind === 'audio').length >= 15);
});

test('e-rtmp: ModEx prefixes are skipped and a multitrack message yields track 0 only, with one notice', () => {
  const { demux: d, results, frames } = demux('ertmp-hevc-multitrack-modex.flv');
  assert.equal(d.currentTracks().video?.codec, 'h265');
  assert.equal(frames.length, 5);
  assert.equal(frames[0]?.keyframe, true);
  const notices = results.flatMap((r) => (r.notice ? [r.notice] : []));
  assert.deepEqual(notices, ['multitrack video: only track 0 is kept, other tracks are dropped']);
  // Track 1 is track 0 cut one byte short: only track 0's NAL length chain ends exactly at the end.
  for (const f of frames) {
    let pos = 0;
    while (pos + 4 <= f.data.length) pos += 4 + f.data.readUInt32BE(pos);
    assert.equal(pos, f.data.length, 'whole NAL units: track 0');
  }
});

test('e-rtmp: OneTrack and ManyTracksManyCodecs multitrack, command frames, unknown FourCCs, SequenceEnd', () => {
  const d = new FlvToFrames();
  const hvcC = Buffer.from([
    1, 1, 0x60, 0, 0, 0, 0x90, 0, 0, 0, 0, 0, 0x5d, 0xf0, 0, 0xfc, 0xfd, 0xf8, 0xf8, 0, 0, 0x0f, 0,
  ]);
  // OneTrack: PacketType 6, (0 << 4 | SequenceStart), FourCC, trackId 3, then the body (no size).
  const oneTrack = Buffer.concat([Buffer.of(0x96, 0x00), Buffer.from('hvc1'), Buffer.of(3), hvcC]);
  assert.equal(d.video(0, oneTrack).tracks?.video?.codec, 'h265');
  // ManyTracksManyCodecs: per track FourCC, trackId, UI24 size; track 3 (followed) is HEVC.
  const frame = Buffer.from([0, 0, 0, 2, 0x26, 0x01]);
  const t = (fourCc: string, id: number, body: Buffer): Buffer => {
    const h = Buffer.alloc(4);
    h[0] = id;
    h.writeUIntBE(body.length, 1, 3);
    return Buffer.concat([Buffer.from(fourCc), h, body]);
  };
  const many = Buffer.concat([Buffer.of(0x96, 0x23), t('av01', 1, Buffer.of(0x12, 0)), t('hvc1', 3, frame)]);
  const r = d.video(40, many);
  assert.equal(r.frame?.data.length, frame.length);
  assert.equal(r.frame?.keyframe, true);
  assert.match(r.notice ?? '', /only track 3 is kept/);
  assert.deepEqual(d.video(80, Buffer.concat([Buffer.of(0xd2), Buffer.from('hvc1')])), {}, 'SequenceEnd');
  assert.deepEqual(d.video(80, Buffer.of(0xd1, 0x01)), {}, 'command frame');
  const unknown = d.video(80, Buffer.concat([Buffer.of(0x90), Buffer.from('vvc1'), hvcC]));
  assert.equal(unknown.notice, "video codec 'vvc1' is not supported; its frames are dropped");
  const ac3 = d.audio(0, Buffer.concat([Buffer.of(0x90), Buffer.from('ac-3')]));
  assert.equal(ac3.notice, "audio codec 'ac-3' is not supported; its frames are dropped");
  // Truncated ModEx and multitrack headers never throw.
  for (const body of [
    Buffer.of(0x97),
    Buffer.of(0x97, 0xff),
    Buffer.of(0x97, 0xff, 0xff, 0xff),
    Buffer.of(0x96),
    Buffer.of(0x96, 0x12, 0x68),
  ]) {
    assert.equal(d.video(0, body).frame, undefined);
  }
});

test('e-rtmp mux: AV1, VP9 and Opus go out as E-RTMP and round-trip; H.264/AAC stay legacy', () => {
  const av1: VideoTrack = { kind: 'video', codec: 'av1', config: Buffer.from([0x81, 0x00, 0x0c, 0x00]) };
  const vp9: VideoTrack = {
    kind: 'video',
    codec: 'vp9',
    config: Buffer.from([1, 0, 0, 0, 0, 10, 0x80, 2, 2, 2, 0, 0]),
  };
  const opus: AudioTrack = {
    kind: 'audio',
    codec: 'opus',
    config: Buffer.alloc(0),
    sampleRate: 48000,
    channels: 2,
  };
  for (const track of [av1, vp9]) {
    const seq = videoSequenceHeader(track);
    assert.equal(seq[0], 0x90, `${track.codec}: IsExHeader, keyframe, SequenceStart`);
    const frame: Frame = {
      kind: 'video',
      dts: 9000,
      pts: 18000,
      keyframe: false,
      data: Buffer.from([0x12, 0x00, 0x32, 0x01, 0x00]),
    };
    const body = videoTagBody(frame, track.codec);
    assert.equal(body[0], 0xa1, 'inter frame, CodedFrames');
    assert.deepEqual(body.subarray(5), frame.data, 'no composition time for AV1/VP9');
    const d = new FlvToFrames();
    assert.equal(d.video(0, seq).tracks?.video?.codec, track.codec);
    assert.deepEqual(d.video(100, body).frame?.data, frame.data);
  }
  const head = audioSequenceHeader(opus);
  assert.equal(head[0], 0x90);
  assert.equal(head.toString('latin1', 1, 5), 'Opus');
  assert.equal(head.toString('latin1', 5, 13), 'OpusHead');
  const d = new FlvToFrames();
  assert.equal(d.audio(0, head).tracks?.audio?.channels, 2);
  const packet: Frame = {
    kind: 'audio',
    dts: 0,
    pts: 0,
    keyframe: true,
    data: Buffer.from([0xfc, 0xff, 0xfe]),
  };
  const body = audioTagBody(packet, opus);
  assert.equal(body[0], 0x91);
  assert.deepEqual(d.audio(20, body).frame?.data, packet.data);
  const meta = decodeAmf0(onMetaData({ video: av1, audio: opus }))[1] as Record<string, number>;
  assert.equal(meta['videocodecid'], Buffer.from('av01').readUInt32BE(0));
  assert.equal(meta['audiocodecid'], Buffer.from('Opus').readUInt32BE(0));
  const avc: VideoTrack = {
    kind: 'video',
    codec: 'h264',
    config: Buffer.from([1, 0x42, 0, 0x1e, 0xff, 0xe0, 0]),
  };
  assert.equal(videoSequenceHeader(avc)[0], 0x17, 'legacy AVC for H.264');
});
