/**
 * RTP depacketizers (protocols/rtsp/wire/h264-rtp.ts, aac-rtp.ts) over the RTP header parser
 * (rtp.ts). A publisher's connection keeps using the same depacketizer after a bad packet
 * (protocols/rtsp/record.ts drops the packet), so the targets feed whole packet sequences and
 * carry on after each RtspProtocolError, the one exception allowed.
 */
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { buildAvcC, NalType, nalType, parseAvcC } from '../../src/media/h264.js';
import {
  AacDepacketizer,
  AacPacketizer,
  type AacDepacketizerOptions,
} from '../../protocols/rtsp/wire/aac-rtp.js';
import { RtspProtocolError } from '../../protocols/rtsp/wire/errors.js';
import { H264Depacketizer, H264Packetizer } from '../../protocols/rtsp/wire/h264-rtp.js';
import { parseRtp, parseSenderReports, writeRtp, writeSenderReport } from '../../protocols/rtsp/wire/rtp.js';
import {
  applyMutations,
  assertBounded,
  defineTarget,
  expectNoThrow,
  expectOnly,
  fixture,
  mutated,
  mutationArb,
  rawBytes,
  withinBudget,
} from './support.js';
import { newRtspReader } from './readers.js';

/** RTP and RTCP packets of the ffmpeg RTSP publish capture, by interleaved channel. */
const CAPTURED = (() => {
  const byChannel = new Map<number, Buffer[]>();
  for (const item of newRtspReader().push(fixture('test/fixtures/rtsp/ffmpeg-publish-tcp.bin'))) {
    if (item.kind !== 'interleaved') continue;
    byChannel.set(item.channel, [...(byChannel.get(item.channel) ?? []), Buffer.from(item.payload)]);
  }
  return {
    h264: byChannel.get(0) ?? [],
    aac: byChannel.get(2) ?? [],
    rtcp: [...(byChannel.get(1) ?? []), ...(byChannel.get(3) ?? [])],
  };
})();

/** A run of consecutive captured packets, so FU-A and multi-AU packets arrive in a believable order. */
function capturedRun(packets: readonly Buffer[], maxLength: number): fc.Arbitrary<Buffer[]> {
  return fc
    .tuple(fc.nat({ max: Math.max(0, packets.length - 1) }), fc.integer({ min: 1, max: maxLength }))
    .map(([start, n]) => packets.slice(start, start + n));
}

/** A packet sequence: captured runs, packetizer output, garbage; packets mutated, dropped, repeated or swapped. */
function packetSequence(valid: fc.Arbitrary<Buffer[]>): fc.Arbitrary<Buffer[]> {
  const edited = fc
    .tuple(
      valid,
      fc.array(fc.tuple(fc.nat(), fc.constantFrom('drop', 'repeat', 'swap')), { maxLength: 6 }),
      fc.array(fc.tuple(fc.nat(), fc.array(mutationArb, { minLength: 1, maxLength: 4 })), { maxLength: 4 }),
    )
    .map(([packets, edits, mutations]) => {
      const out = applyEdits(packets, edits);
      for (const [at, ms] of mutations) {
        if (out.length > 0) out[at % out.length] = applyMutations(out[at % out.length] as Buffer, ms);
      }
      return out;
    });
  return fc.oneof(
    { weight: 1, arbitrary: fc.array(rawBytes(200), { maxLength: 10 }) },
    { weight: 2, arbitrary: valid },
    { weight: 6, arbitrary: edited },
  );
}

function applyEdits(packets: readonly Buffer[], edits: readonly [number, string][]): Buffer[] {
  const out = [...packets];
  for (const [at, kind] of edits) {
    if (out.length === 0) break;
    const i = at % out.length;
    if (kind === 'drop') out.splice(i, 1);
    else if (kind === 'repeat') out.splice(i, 0, out[i] as Buffer);
    else if (kind === 'swap' && i + 1 < out.length) {
      [out[i], out[i + 1]] = [out[i + 1] as Buffer, out[i] as Buffer];
    }
  }
  return out;
}

/** A saved input: RTP packets in RTSP interleaved framing (`$`, channel, length), as a TCP publisher sends them. */
function packetsOf(file: Buffer): Buffer[] {
  return newRtspReader()
    .push(file)
    .flatMap((item) => (item.kind === 'interleaved' ? [item.payload] : []));
}

/**
 * The packetizers' payload limit: tiny ones (one byte per fragment) now and then, MTU-sized
 * mostly, since a tiny limit turns one access unit into thousands of packets.
 */
const maxPayloadArb = (min: number): fc.Arbitrary<number> =>
  fc.oneof(
    { weight: 1, arbitrary: fc.integer({ min, max: 16 }) },
    { weight: 6, arbitrary: fc.integer({ min: 17, max: 1500 }) },
  );

// ---------------------------------------------------------------------------------------------
// H.264

const h264NalArb = (maxBody: number): fc.Arbitrary<Buffer> =>
  fc
    .tuple(fc.integer({ min: 1, max: 23 }), fc.integer({ min: 0, max: 3 }), rawBytes(maxBody))
    .map(([type, nri, body]) => Buffer.concat([Buffer.of((nri << 5) | type), body]));

const accessUnitsArb = (maxNal: number): fc.Arbitrary<Buffer[][]> =>
  fc.array(fc.array(h264NalArb(maxNal), { minLength: 1, maxLength: 5 }), { minLength: 1, maxLength: 6 });

/**
 * Access units with a payload limit; NAL units stay within 40 packets each, so a one-byte limit
 * does not turn an input into thousands of packets.
 */
const h264StreamArb = maxPayloadArb(3).chain((maxPayload) =>
  fc.record({
    units: accessUnitsArb(Math.min(3000, 40 * (maxPayload - 2))),
    maxPayload: fc.constant(maxPayload),
    initialSequence: fc.nat({ max: 0xffff }),
    timestamp: fc.nat({ max: 0xffffffff }),
  }),
);

/** Access units, sometimes led by a parameter set pair whose SPS is over the 64 KiB an avcC length holds. */
const packetizedH264 = fc
  .tuple(h264StreamArb, fc.option(fc.integer({ min: 0xfff0, max: 0x10010 }), { freq: 30 }))
  .map(([{ units, maxPayload, initialSequence, timestamp }, big]) => {
    const withParams =
      big === null
        ? units
        : [[Buffer.concat([Buffer.of(0x67), Buffer.alloc(big, 0x11)]), Buffer.of(0x68, 0xce)], ...units];
    // A parameter set that large goes out in MTU-sized fragments, whatever the other packets use.
    const p = new H264Packetizer({
      payloadType: 96,
      ssrc: 1,
      initialSequence,
      maxPayload: big === null ? maxPayload : 1400,
    });
    return withParams.flatMap((nals, i) => p.packetize(nals, (timestamp + i * 3000) >>> 0));
  });

const avcCArb = fc.oneof(
  fc.constant(undefined),
  rawBytes(40),
  fc.constant(
    buildAvcC(
      [Buffer.from('Z0LADdoFB+wEQAAAAwBAAAAMo8UKqA==', 'base64')],
      [Buffer.from('aM4PyA==', 'base64')],
    ),
  ),
);

function checkH264(config: Buffer | undefined, packets: readonly Buffer[]): void {
  const inputBytes = packets.reduce((n, p) => n + p.length, 0);
  withinBudget(inputBytes, () => {
    const depacketizer = expectNoThrow(() => new H264Depacketizer(config));
    let outBytes = 0;
    for (const packet of packets) {
      const units = expectOnly([RtspProtocolError], () => depacketizer.push(parseRtp(packet))) ?? [];
      for (const au of units) {
        assert.ok(au.nals.length > 0, 'empty access unit');
        assert.equal(
          au.keyframe,
          au.nals.some((n) => nalType(n) === NalType.IDR),
          'keyframe flag',
        );
        if (au.config) assert.ok(parseAvcC(au.config), 'access unit config is not an avcC');
        outBytes += au.nals.reduce((n, nal) => n + nal.length, 0);
      }
    }
    // FU-A reassembly adds one header byte per NAL unit and drops two per fragment: never more out than in.
    assertBounded('access unit bytes', outBytes, inputBytes, 1, 0);
  });
}

// ---------------------------------------------------------------------------------------------
// AAC

/** fmtp values as announcedTracks passes them on: sizelength in (0, 16], the index lengths any number. */
const aacOptionsArb: fc.Arbitrary<AacDepacketizerOptions> = fc.oneof(
  { weight: 3, arbitrary: fc.constant({ sizeLength: 13, indexLength: 3, indexDeltaLength: 3 }) },
  {
    weight: 2,
    arbitrary: fc.record({
      sizeLength: fc.oneof(fc.integer({ min: 1, max: 16 }), fc.double({ min: 0.01, max: 16, noNaN: true })),
      indexLength: fc.oneof(
        fc.integer({ min: -20, max: 20 }),
        fc.constantFrom(1e9, Infinity, -Infinity, 0.5),
      ),
      indexDeltaLength: fc.oneof(
        fc.integer({ min: -20, max: 20 }),
        fc.constantFrom(1e9, Infinity, -Infinity, 0.5),
      ),
    }),
  },
);

const aacFramesArb = fc.array(
  rawBytes(2500).filter((b) => b.length > 0),
  { minLength: 1, maxLength: 8 },
);

const packetizedAac = fc
  .record({
    frames: aacFramesArb,
    maxPayload: maxPayloadArb(5),
    initialSequence: fc.nat({ max: 0xffff }),
    timestamp: fc.nat({ max: 0xffffffff }),
  })
  .map(({ frames, maxPayload, initialSequence, timestamp }) => {
    const p = new AacPacketizer({ payloadType: 97, ssrc: 2, initialSequence, maxPayload });
    return frames.flatMap((f, i) => p.packetize(f, (timestamp + i * 1024) >>> 0));
  });

function checkAac(options: AacDepacketizerOptions, packets: readonly Buffer[]): void {
  const inputBytes = packets.reduce((n, p) => n + p.length, 0);
  withinBudget(inputBytes, () => {
    const depacketizer = new AacDepacketizer(options);
    let outBytes = 0;
    for (const packet of packets) {
      const units = expectOnly([RtspProtocolError], () => depacketizer.push(parseRtp(packet))) ?? [];
      outBytes += units.reduce((n, u) => n + u.frame.length, 0);
    }
    assertBounded('frame bytes', outBytes, inputBytes, 1, 0);
  });
}

export const rtpTargets = [
  defineTarget({
    name: 'rtp-h264',
    property:
      'parseRtp + H264Depacketizer: any packet sequence → only RtspProtocolError per packet and usable after it; AUs ≤ input bytes, consistent keyframe/config',
    arbitrary: fc.record({
      config: avcCArb,
      packets: packetSequence(fc.oneof(capturedRun(CAPTURED.h264, 40), packetizedH264)),
    }),
    check: ({ config, packets }) => checkH264(config, packets),
    unitRuns: 80,
    replay: (file) => checkH264(undefined, packetsOf(file)),
  }),
  defineTarget({
    name: 'rtp-h264-roundtrip',
    property:
      'H264Packetizer (single NAL and FU-A, any MTU, sequence wrap) → parseRtp → H264Depacketizer gives every access unit back',
    arbitrary: h264StreamArb,
    check: ({ units, maxPayload, initialSequence, timestamp }) => {
      const packetizer = new H264Packetizer({ payloadType: 96, ssrc: 7, initialSequence, maxPayload });
      const depacketizer = new H264Depacketizer();
      const out = units.flatMap((nals, i) => {
        const ts = (timestamp + i * 3000) >>> 0;
        return packetizer.packetize(nals, ts).flatMap((p) => depacketizer.push(parseRtp(p)));
      });
      assert.equal(out.length, units.length, 'access unit count');
      out.forEach((au, i) => {
        assert.equal(au.timestamp, (timestamp + i * 3000) >>> 0);
        assert.deepStrictEqual(
          au.nals.map((n) => n.toString('hex')),
          (units[i] ?? []).map((n) => n.toString('hex')),
        );
      });
      assert.equal(depacketizer.lost, 0);
    },
    unitRuns: 60,
  }),
  defineTarget({
    name: 'rtp-aac',
    property:
      'parseRtp + AacDepacketizer (any fmtp sizelength/indexlength): any packet sequence → only RtspProtocolError per packet; frames ≤ input bytes',
    arbitrary: fc.record({
      options: aacOptionsArb,
      packets: packetSequence(fc.oneof(capturedRun(CAPTURED.aac, 20), packetizedAac)),
    }),
    check: ({ options, packets }) => checkAac(options, packets),
    replay: (file) => checkAac({ sizeLength: 13, indexLength: 3, indexDeltaLength: 3 }, packetsOf(file)),
  }),
  defineTarget({
    name: 'rtp-aac-roundtrip',
    property:
      'AacPacketizer (whole and fragmented AUs) → parseRtp → AacDepacketizer gives every frame and timestamp back',
    arbitrary: fc.record({
      frames: aacFramesArb,
      maxPayload: maxPayloadArb(5),
      initialSequence: fc.nat({ max: 0xffff }),
      timestamp: fc.nat({ max: 0xffffffff }),
    }),
    check: ({ frames, maxPayload, initialSequence, timestamp }) => {
      const packetizer = new AacPacketizer({ payloadType: 97, ssrc: 2, initialSequence, maxPayload });
      const depacketizer = new AacDepacketizer({ sizeLength: 13, indexLength: 3, indexDeltaLength: 3 });
      const out = frames.flatMap((f, i) =>
        packetizer.packetize(f, (timestamp + i * 1024) >>> 0).flatMap((p) => depacketizer.push(parseRtp(p))),
      );
      assert.equal(out.length, frames.length, 'frame count');
      out.forEach((u, i) => {
        assert.equal(u.timestamp, (timestamp + i * 1024) >>> 0);
        assert.ok(u.frame.equals(frames[i] as Buffer), `frame ${i}`);
      });
    },
  }),
  defineTarget({
    name: 'rtcp-sender-report',
    property:
      'parseSenderReports: any bytes → never throws, ≤ 1 report per 28 bytes; writeSenderReport → parse round-trips',
    arbitrary: fc.record({
      bytes: fc.oneof(rawBytes(200), mutated(fc.constantFrom(...CAPTURED.rtcp))),
      report: fc.record({
        ssrc: fc.nat({ max: 0xffffffff }),
        ntpSeconds: fc.double({ min: 0, max: 2 ** 32 - 1, noNaN: true }),
        rtpTimestamp: fc.nat({ max: 0xffffffff }),
        packetCount: fc.nat({ max: 0xffffffff }),
        octetCount: fc.nat({ max: 0xffffffff }),
      }),
    }),
    check: ({ bytes, report }) => {
      const reports = withinBudget(bytes.length, () => expectNoThrow(() => parseSenderReports(bytes)));
      assertBounded('sender reports', reports.length * 28, bytes.length, 1, 0);
      const [back] = parseSenderReports(writeSenderReport(report));
      assert.ok(back, 'no report back');
      assert.deepStrictEqual({ ...back, ntpSeconds: 0 }, { ...report, ntpSeconds: 0 });
      assert.ok(
        Math.abs(back.ntpSeconds - report.ntpSeconds) < 1e-6,
        `ntp ${back.ntpSeconds} vs ${report.ntpSeconds}`,
      );
      // And an RTP header written by writeRtp parses back.
      const rtp = parseRtp(
        writeRtp(
          {
            marker: true,
            payloadType: 96,
            sequence: report.packetCount & 0xffff,
            timestamp: report.rtpTimestamp,
            ssrc: report.ssrc,
          },
          [bytes],
        ),
      );
      assert.ok(
        rtp.payload.equals(bytes) && rtp.ssrc === report.ssrc && rtp.timestamp === report.rtpTimestamp,
      );
    },
  }),
];
