/**
 * Fuzz targets for the RTP payload formats issue 10 added: H.265 (RFC 7798), MP4A-LATM
 * (RFC 6416) with its StreamMuxConfig, Opus (RFC 7587), and the UDP reorder buffer. Valid
 * inputs come from the GStreamer captures in test/fixtures/rtsp/ and from our packetizers.
 */
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { RtspProtocolError } from '../../protocols/rtsp/wire/errors.js';
import { H265Depacketizer, H265Packetizer } from '../../protocols/rtsp/wire/h265-rtp.js';
import { LatmDepacketizer, parseStreamMuxConfig } from '../../protocols/rtsp/wire/latm-rtp.js';
import { RtpReorder } from '../../protocols/rtsp/wire/reorder.js';
import { parseRtp, type RtpPacket } from '../../protocols/rtsp/wire/rtp.js';
import { newRtspReader } from './readers.js';
import {
  assertBounded,
  defineTarget,
  expectOnly,
  fixture,
  mutated,
  rawBytes,
  withinBudget,
} from './support.js';

/** Interleaved packets of a capture by channel. */
function channels(file: string): Map<number, Buffer[]> {
  const by = new Map<number, Buffer[]>();
  for (const item of newRtspReader().push(fixture(file))) {
    if (item.kind === 'interleaved') {
      by.set(item.channel, [...(by.get(item.channel) ?? []), Buffer.from(item.payload)]);
    }
  }
  return by;
}

const GST_HEVC = channels('test/fixtures/rtsp/gst-h265-opus-tcp.bin').get(2) ?? [];
const GST_LATM = channels('test/fixtures/rtsp/gst-h264-latm-tcp.bin').get(0) ?? [];
const LATM_CONFIG = Buffer.from('40002420adca00', 'hex');

/** A run of captured packets, some mutated, some garbage, in a possibly shuffled order. */
function packets(captured: readonly Buffer[]): fc.Arbitrary<Buffer[]> {
  const one = fc.oneof(
    { weight: 4, arbitrary: fc.constantFrom(...captured) },
    { weight: 2, arbitrary: mutated(fc.constantFrom(...captured)) },
    { weight: 1, arbitrary: rawBytes(300) },
  );
  return fc.array(one, { maxLength: 40 });
}

/** Every packet parses or throws RtspProtocolError; the depacketizer stays usable after it. */
function feed<T>(bufs: readonly Buffer[], push: (p: RtpPacket) => T[]): T[] {
  const out: T[] = [];
  for (const b of bufs) {
    const got = withinBudget(b.length, () => expectOnly([RtspProtocolError], () => push(parseRtp(b))));
    if (got) out.push(...got);
  }
  return out;
}

const nalArb = (type: number, max: number): fc.Arbitrary<Buffer> =>
  fc.uint8Array({ minLength: 1, maxLength: max }).map((b) => Buffer.concat([Buffer.of(type << 1, 1), b]));

export const rtpCodecTargets = [
  defineTarget({
    name: 'rtp-h265',
    property:
      'parseRtp + H265Depacketizer: any packet sequence → only RtspProtocolError per packet; access units ≤ input bytes',
    arbitrary: packets(GST_HEVC),
    check: (bufs) => {
      const d = new H265Depacketizer();
      const aus = feed(bufs, (p) => d.push(p));
      const total = bufs.reduce((n, b) => n + b.length, 0);
      // Every NAL unit gains at most its 2-byte header back from a fragmentation unit.
      const out = aus.reduce((n, au) => n + au.nals.reduce((m, x) => m + x.length, 0), 0);
      assertBounded('h265 access units', out, total, 1, 64);
    },
    unitRuns: 60,
  }),
  defineTarget({
    name: 'rtp-h265-roundtrip',
    property:
      'H265Packetizer (single NAL and FU, any MTU, sequence wrap) → H265Depacketizer gives every access unit back',
    arbitrary: fc.record({
      units: fc.array(
        fc.array(fc.oneof(nalArb(1, 3000), nalArb(19, 6000), nalArb(39, 40)), { minLength: 1, maxLength: 4 }),
        {
          minLength: 1,
          maxLength: 5,
        },
      ),
      maxPayload: fc.integer({ min: 4, max: 1500 }),
      initialSequence: fc.nat({ max: 0xffff }),
    }),
    check: ({ units, maxPayload, initialSequence }) => {
      const p = new H265Packetizer({ payloadType: 96, ssrc: 1, initialSequence, maxPayload });
      const d = new H265Depacketizer();
      const out = units.flatMap((nals, i) => p.packetize(nals, i * 3000).flatMap((b) => d.push(parseRtp(b))));
      assert.equal(out.length, units.length);
      out.forEach((au, i) =>
        assert.deepStrictEqual(
          au.nals.map((n) => n.toString('hex')),
          (units[i] ?? []).map((n) => n.toString('hex')),
        ),
      );
    },
    unitRuns: 40,
  }),
  defineTarget({
    name: 'latm',
    property:
      'parseStreamMuxConfig: any bytes → a config or RtspProtocolError (415); LatmDepacketizer: any packets → only RtspProtocolError, frames ≤ input bytes',
    arbitrary: fc.record({
      config: fc.oneof(mutated(fc.constant(LATM_CONFIG)), rawBytes(16)),
      packets: packets(GST_LATM),
    }),
    check: ({ config, packets: bufs }) => {
      expectOnly([RtspProtocolError], () => {
        try {
          parseStreamMuxConfig(config);
        } catch (err) {
          if (err instanceof RtspProtocolError) assert.equal(err.status, 415);
          throw err;
        }
      });
      const d = new LatmDepacketizer(parseStreamMuxConfig(LATM_CONFIG), 44100);
      const frames = feed(bufs, (p) => d.push(p));
      assertBounded(
        'latm frames',
        frames.reduce((n, f) => n + f.frame.length, 0),
        bufs.reduce((n, b) => n + b.length, 0),
        1,
        0,
      );
    },
  }),
  defineTarget({
    name: 'rtp-reorder',
    property:
      'RtpReorder: any sequence numbers (wraps, repeats, jumps) → each packet out at most once, never more out than in',
    arbitrary: fc.record({
      depth: fc.integer({ min: 0, max: 8 }),
      seqs: fc.array(fc.oneof(fc.nat({ max: 0xffff }), fc.integer({ min: 100, max: 120 })), {
        maxLength: 200,
      }),
    }),
    check: ({ depth, seqs }) => {
      const r = new RtpReorder(depth);
      const ids = new Set<number>();
      let count = 0;
      seqs.forEach((sequence, i) => {
        const p = {
          marker: false,
          payloadType: 96,
          sequence,
          timestamp: i,
          ssrc: 1,
          payload: Buffer.alloc(0),
        };
        for (const q of r.push(p, i * 0.001)) {
          assert.ok(!ids.has(q.timestamp), 'a packet came out twice');
          ids.add(q.timestamp);
          count++;
        }
      });
      assert.ok(count <= seqs.length);
    },
  }),
];
