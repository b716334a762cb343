/**
 * The short fuzz run of `npm test`: every target of test/fuzz/ with a fixed seed and a small
 * number of runs (the long, freshly seeded runs are `npm run fuzz`), and the saved inputs of
 * the bugs fuzzing found (test/fixtures/fuzz/<target>/) replayed through their target.
 */
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { FlvReader, FlvToFrames } from '../../src/media/flv.js';
import { parseAvcC } from '../../src/media/h264.js';
import { TsDemuxer } from '../../src/media/mpegts/index.js';
import { checkJwt } from '../../src/tokens/jwt.js';
import { H264Depacketizer } from '../../protocols/rtsp/wire/h264-rtp.js';
import { RtspProtocolError } from '../../protocols/rtsp/wire/errors.js';
import { newRtspReader } from '../fuzz/readers.js';
import { parseRtp } from '../../protocols/rtsp/wire/rtp.js';
import { announcedTracks, parseSdp } from '../../protocols/rtsp/wire/sdp.js';
import { propertyOf, targets } from '../fuzz/registry.js';

const SEED = 20240611;
/**
 * unitRuns is a target's relative weight; this scale makes the whole run take ~7 s here,
 * 500 to 1500 executions per target: enough to catch a regression, not to explore.
 */
const RUNS_SCALE = 10;
const FIXTURES = new URL('../fixtures/fuzz/', import.meta.url);

describe('fuzz targets, fixed seed', () => {
  for (const target of targets) {
    test(target.name, () => {
      fc.assert(propertyOf(target), { seed: SEED, numRuns: RUNS_SCALE * (target.unitRuns ?? 100) });
    });
  }
});

describe('fuzz regression inputs', () => {
  for (const target of targets) {
    const dir = new URL(`${target.name}/`, FIXTURES);
    if (!existsSync(dir)) continue;
    for (const name of readdirSync(dir)
      .filter((f) => !f.endsWith('.md'))
      .sort()) {
      test(`${target.name}: ${name}`, () => {
        assert.ok(target.replay, `${target.name} has saved inputs but no replay`);
        target.replay(readFileSync(new URL(name, dir)));
      });
    }
  }
});

/** What each saved input must now produce (test/fixtures/fuzz/README.md tells the story of each). */
describe('fuzz findings', () => {
  const bytes = (path: string): Buffer => readFileSync(new URL(path, FIXTURES));
  const text = (path: string): string => bytes(path).toString('utf8');

  test('jwt: an alg naming an Object.prototype member is refused, not a TypeError from createHmac', () => {
    const r = checkJwt(text('jwt/alg-constructor.txt'), { secrets: ['s3cret'] }, { now: 0 });
    assert.deepEqual(r.ok ? 'ok' : r.reason, 'alg_not_allowed');
  });

  test('jwt: an alg object whose toString is data is malformed, not a TypeError from String()', () => {
    const r = checkJwt(text('jwt/alg-object-tostring.txt'), { secrets: ['s3cret'] }, { now: 0 });
    assert.deepEqual(r.ok ? 'ok' : r.reason, 'malformed');
  });

  test('ts-demux: an in-band SPS over 64 KiB is left out of the avcC instead of a RangeError from the demuxer', () => {
    const d = new TsDemuxer();
    const events = [...d.push(bytes('ts-demux/oversized-sps.ts')), ...d.flush()];
    const frames = events.filter((e) => e.kind === 'frame');
    assert.equal(frames.length, 2, 'both pictures still come out');
  });

  test('rtp-h264: an SPS over 64 KiB in FU-A fragments is a config-less access unit, not a RangeError', () => {
    const depacketizer = new H264Depacketizer();
    const packets = newRtspReader().push(bytes('rtp-h264/oversized-sps.bin'));
    const units = packets.flatMap((p) =>
      p.kind === 'interleaved' ? depacketizer.push(parseRtp(p.payload)) : [],
    );
    assert.equal(units.length, 1);
    assert.equal(units[0]?.nals.length, 3);
  });

  test('sdp-parse: 32 SPS in sprop-parameter-sets give an avcC with 31 of them and the PPS', () => {
    const config = announcedTracks(parseSdp(text('sdp-parse/32-sps.sdp'))).tracks.video?.config;
    const cfg = config && parseAvcC(config);
    assert.equal(cfg?.sps.length, 31);
    assert.equal(cfg?.pps.length, 1);
  });

  test('ts-demux: a held-back frame of a track the PMT then changes is dropped, not emitted without its track', () => {
    const d = new TsDemuxer();
    const events = [...d.push(bytes('ts-demux/pmt-change-pending-frame.ts')), ...d.flush()];
    assert.deepEqual(events, []);
  });

  test('flv-tags: a negative CompositionTime gives pts = dts, not a frame shown before it is decoded', () => {
    const demux = new FlvToFrames();
    const frames = new FlvReader()
      .push(bytes('flv-tags/negative-cts.flv'))
      .flatMap((t) => (t.type === 9 ? [demux.video(t.timestamp, t.data).frame] : []))
      .filter((f) => f !== undefined);
    assert.deepEqual(
      frames.map((f) => [f.dts, f.pts]),
      [[40 * 90, 40 * 90]],
    );
  });

  test('rtsp-reader: a head with a bad start line is refused before its body arrives, in one piece or many', () => {
    const input = bytes('rtsp-reader/bad-start-line-waits-for-body.bin');
    assert.throws(() => newRtspReader().push(input), RtspProtocolError);
  });

  test('ts-demux: a stream that moves to a new PID continues the timeline instead of going back', () => {
    const d = new TsDemuxer();
    const events = [...d.push(bytes('ts-demux/new-pid-restarts-clock.ts')), ...d.flush()];
    const dts = events.flatMap((e) => (e.kind === 'frame' ? [e.frame.dts] : []));
    assert.deepEqual(dts, [900_000, 903_000]);
  });

  test('rtsp-reader: a 16-letter method is read as a request whether its head arrives whole or in pieces', () => {
    const input = bytes('rtsp-reader/16-letter-method.bin');
    const inPieces = newRtspReader();
    const items = [...input].flatMap((b) => inPieces.push(Buffer.of(b)));
    assert.deepEqual(
      items.map((i) => (i.kind === 'request' ? i.request.method : i.kind)),
      ['AUTHORIZTEARDOWN'],
    );
  });
});
