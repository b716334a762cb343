import assert from 'node:assert/strict';
import { test } from 'node:test';
import { AacDepacketizer, AacPacketizer } from '../../../../protocols/rtsp/wire/aac-rtp.js';
import { RtspProtocolError } from '../../../../protocols/rtsp/wire/errors.js';
import { H264Depacketizer, H264Packetizer } from '../../../../protocols/rtsp/wire/h264-rtp.js';
import {
  parseRtp,
  parseSenderReports,
  writeRtp,
  writeSenderReport,
  type RtpPacket,
} from '../../../../protocols/rtsp/wire/rtp.js';

function nal(type: number, size: number, seed = 1): Buffer {
  const b = Buffer.from(Array.from({ length: size }, (_, i) => (i * 31 + seed) & 0xff));
  b[0] = 0x60 | type; // nal_ref_idc 3
  return b;
}

test('rtp header: write → parse, with CSRCs, extension and padding skipped', () => {
  const p = writeRtp(
    { marker: true, payloadType: 96, sequence: 65535, timestamp: 0xfffffff0, ssrc: 0xdeadbeef },
    [Buffer.from([1, 2, 3])],
  );
  assert.deepEqual(parseRtp(p), {
    marker: true,
    payloadType: 96,
    sequence: 65535,
    timestamp: 0xfffffff0,
    ssrc: 0xdeadbeef,
    payload: Buffer.from([1, 2, 3]),
  });
  // V=2, P=1, X=1, CC=1; one CSRC; extension of one word; payload 0xaa; 2 bytes of padding.
  const fancy = Buffer.from([
    0xb1, 0x60, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3, 9, 9, 9, 9, 0xbe, 0xde, 0, 1, 7, 7, 7, 7, 0xaa, 0, 2,
  ]);
  assert.deepEqual([...parseRtp(fancy).payload], [0xaa]);
});

const malformed: { name: string; bytes: Buffer }[] = [
  { name: 'too short', bytes: Buffer.alloc(11, 0x80) },
  { name: 'version 1', bytes: Buffer.from([0x40, 96, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]) },
  { name: 'CSRCs beyond the end', bytes: Buffer.from([0x8f, 96, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]) },
  { name: 'padding length 0', bytes: Buffer.from([0xa0, 96, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0]) },
  { name: 'truncated extension', bytes: Buffer.from([0x90, 96, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xbe]) },
];
for (const m of malformed) {
  test(`rtp header: ${m.name} → RtspProtocolError`, () => {
    assert.throws(() => parseRtp(m.bytes), RtspProtocolError);
  });
}

test('rtcp sender report: write → parse; compound packets and garbage', () => {
  const sr = {
    ssrc: 7,
    ntpSeconds: 3_900_000_000.25,
    rtpTimestamp: 123456,
    packetCount: 10,
    octetCount: 2000,
  };
  const bytes = writeSenderReport(sr);
  assert.equal(bytes.length, 28);
  const sdes = Buffer.from([0x81, 202, 0, 1, 0, 0, 0, 7]);
  assert.deepEqual(parseSenderReports(Buffer.concat([bytes, sdes])), [sr]);
  assert.deepEqual(parseSenderReports(Buffer.from([0x80, 200, 0, 50, 1, 2])), []);
});

const accessUnits: { name: string; nals: Buffer[]; maxPayload?: number; packets: number }[] = [
  { name: 'small NAL units as single-NAL packets', nals: [nal(7, 20), nal(8, 4), nal(5, 900)], packets: 3 },
  { name: 'a large IDR fragmented as FU-A', nals: [nal(5, 5000)], packets: 4 },
  {
    name: 'FU-A with an exact multiple of the chunk',
    nals: [nal(1, 1 + 3 * 98)],
    maxPayload: 100,
    packets: 3,
  },
  { name: 'mixed', nals: [nal(6, 30), nal(1, 3000, 3), nal(1, 10, 4)], packets: 5 },
];

for (const c of accessUnits) {
  test(`h264 rtp: ${c.name} — packetize → depacketize is the identity`, () => {
    const pk = new H264Packetizer({
      payloadType: 96,
      ssrc: 1,
      initialSequence: 65534,
      ...(c.maxPayload ? { maxPayload: c.maxPayload } : {}),
    });
    const packets = pk.packetize(c.nals, 9000).map(parseRtp);
    assert.equal(packets.length, c.packets);
    assert.deepEqual(
      packets.map((p) => p.marker),
      packets.map((_, i) => i === packets.length - 1),
      'marker only on the last packet',
    );
    for (const p of packets) assert.ok(p.payload.length <= (c.maxPayload ?? 1400));
    const dp = new H264Depacketizer();
    const aus = packets.flatMap((p) => dp.push(p));
    assert.equal(aus.length, 1);
    assert.deepEqual(aus[0]?.nals, c.nals);
    assert.equal(aus[0]?.timestamp, 9000);
    assert.equal(
      aus[0]?.keyframe,
      c.nals.some((n) => (n[0] ?? 0) % 32 === 5),
    );
  });
}

function pkt(seq: number, ts: number, marker: boolean, payload: number[] | Buffer): RtpPacket {
  return { marker, payloadType: 96, sequence: seq, timestamp: ts, ssrc: 1, payload: Buffer.from(payload) };
}

test('h264 rtp: STAP-A, access unit ended by a timestamp change, in-band SPS/PPS update the avcC', () => {
  const sps = Buffer.from('6742c00dda0507ec0440000003004000000ca3c50aa8', 'hex');
  const pps = Buffer.from('68ce0fc8', 'hex');
  const stap = Buffer.concat([Buffer.from([24, 0, sps.length]), sps, Buffer.from([0, pps.length]), pps]);
  const dp = new H264Depacketizer();
  assert.deepEqual(dp.push(pkt(1, 100, false, stap)), []);
  assert.deepEqual(dp.push(pkt(2, 100, false, nal(5, 10))), []);
  const [first] = dp.push(pkt(3, 200, false, nal(1, 10))); // no marker: timestamp change ends AU 1
  assert.equal(first?.keyframe, true);
  assert.deepEqual(
    first?.nals.map((n) => (n[0] ?? 0) & 0x1f),
    [7, 8, 5],
  );
  assert.ok(first?.config, 'new avcC from in-band parameter sets');
  const [second] = dp.push(pkt(4, 200, true, nal(1, 5, 2)));
  assert.equal(second?.keyframe, false);
  assert.equal(second?.nals.length, 2);
  assert.equal(second?.config, undefined, 'unchanged parameter sets do not repeat the config');
});

test('h264 rtp: a lost FU-A fragment drops that NAL unit, not the stream', () => {
  const pk = new H264Packetizer({ payloadType: 96, ssrc: 1, maxPayload: 100 });
  const packets = pk.packetize([nal(5, 350), nal(1, 20)], 0).map(parseRtp);
  const dp = new H264Depacketizer();
  const aus = packets.filter((_, i) => i !== 1).flatMap((p) => dp.push(p));
  assert.equal(dp.lost, 1);
  assert.equal(aus.length, 1);
  assert.deepEqual(
    aus[0]?.nals.map((n) => n.length),
    [20],
  );
});

const badH264: { name: string; payload: number[] }[] = [
  { name: 'STAP-A unit overrunning the packet', payload: [24, 0, 50, 0x65, 1] },
  { name: 'FU-A too short', payload: [28, 0x85] },
  { name: 'FU-A with start and end', payload: [28, 0xc5, 1] },
  { name: 'FU-B (interleaved mode only)', payload: [29, 0x85, 1, 1] },
];
for (const b of badH264) {
  test(`h264 rtp: ${b.name} → RtspProtocolError`, () => {
    assert.throws(() => new H264Depacketizer().push(pkt(1, 0, true, b.payload)), RtspProtocolError);
  });
}

test('aac rtp: packetize → depacketize is the identity, small and fragmented frames', () => {
  for (const [size, maxPayload, count] of [
    [300, 1400, 1],
    [3000, 1400, 3],
  ] as const) {
    const frame = nal(0, size);
    const pk = new AacPacketizer({ payloadType: 97, ssrc: 2, maxPayload });
    const packets = pk.packetize(frame, 44100).map(parseRtp);
    assert.equal(packets.length, count);
    assert.equal(packets.at(-1)?.marker, true);
    const dp = new AacDepacketizer({ sizeLength: 13, indexLength: 3, indexDeltaLength: 3 });
    const aus = packets.flatMap((p) => dp.push(p));
    assert.deepEqual(aus, [{ timestamp: 44100, frame }]);
  }
});

test('aac rtp: several AUs in one packet (as ffmpeg sends) get consecutive timestamps', () => {
  // AU-headers-length 32 bits: sizes 3 and 2, index 0 and delta 0.
  const payload = [0, 32, 0, 3 << 3, 0, 2 << 3, 1, 2, 3, 4, 5];
  const aus = new AacDepacketizer({ sizeLength: 13, indexLength: 3, indexDeltaLength: 3 }).push(
    pkt(1, 0xfffffc00, true, payload),
  );
  assert.deepEqual(
    aus.map((a) => [a.timestamp, [...a.frame]]),
    [
      [0xfffffc00, [1, 2, 3]],
      [0, [4, 5]],
    ],
  );
});

test('aac rtp: malformed AU sections → RtspProtocolError; a lost fragment drops the frame', () => {
  const dp = new AacDepacketizer({ sizeLength: 13, indexLength: 3, indexDeltaLength: 3 });
  assert.throws(() => dp.push(pkt(1, 0, true, [0])), RtspProtocolError);
  assert.throws(() => dp.push(pkt(2, 0, true, [0, 64, 0])), RtspProtocolError);
  assert.throws(() => dp.push(pkt(3, 0, true, [0, 32, 0, 3 << 3, 0, 9 << 3, 1, 2, 3])), RtspProtocolError);
  const pk = new AacPacketizer({ payloadType: 97, ssrc: 2, maxPayload: 100 });
  const packets = pk.packetize(nal(0, 300), 0).map(parseRtp);
  const fresh = new AacDepacketizer({ sizeLength: 13, indexLength: 3, indexDeltaLength: 3 });
  assert.deepEqual(
    packets.filter((_, i) => i !== 1).flatMap((p) => fresh.push(p)),
    [],
  );
});
