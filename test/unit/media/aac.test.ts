/** AAC AudioSpecificConfig and ADTS tests; ADTS references come from ffmpeg's own muxer. */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { describe, it } from 'node:test';

import {
  aacCodecString,
  adtsHeader,
  buildAudioSpecificConfig,
  parseAdtsHeader,
  parseAudioSpecificConfig,
  splitAdts,
} from '../../../src/media/aac.js';

const hex = (s: string): Buffer => Buffer.from(s, 'hex');

describe('AudioSpecificConfig', () => {
  it('parses common configurations', () => {
    assert.deepEqual(parseAudioSpecificConfig(hex('1188')), {
      objectType: 2,
      sampleRate: 48000,
      sampleRateIndex: 3,
      channelConfig: 1,
      channels: 1,
    });
    const stereo44 = parseAudioSpecificConfig(hex('1210'));
    assert.equal(stereo44?.sampleRate, 44100);
    assert.equal(stereo44?.channels, 2);
    assert.equal(parseAudioSpecificConfig(hex('11b8'))?.channels, 8); // channelConfiguration 7
  });

  it('round-trips an explicit (0xF) sampling frequency', () => {
    const asc = buildAudioSpecificConfig({ objectType: 2, sampleRate: 50000, channels: 2 });
    assert.equal(asc.length, 5);
    const cfg = parseAudioSpecificConfig(asc);
    assert.equal(cfg?.sampleRateIndex, 15);
    assert.equal(cfg?.sampleRate, 50000);
    assert.equal(cfg?.channels, 2);
  });

  it('looks through explicit HE-AAC signalling to the core', () => {
    // AOT 5 (SBR), 24 kHz core, stereo, extension 48 kHz, core AOT 2.
    const cfg = parseAudioSpecificConfig(hex('2b118800'));
    assert.equal(cfg?.objectType, 2);
    assert.equal(cfg?.sampleRate, 24000);
    assert.equal(cfg?.extensionSampleRate, 48000);
    assert.equal(aacCodecString(hex('2b118800')), 'mp4a.40.5');
  });

  it('builds what it parses, by index or by rate, including escaped object types', () => {
    assert.deepEqual(
      buildAudioSpecificConfig({ objectType: 2, sampleRate: 48000, channels: 1 }),
      hex('1188'),
    );
    assert.deepEqual(
      buildAudioSpecificConfig({ objectType: 2, sampleRateIndex: 4, channels: 2 }),
      hex('1210'),
    );
    const usac = buildAudioSpecificConfig({ objectType: 42, sampleRate: 48000, channels: 2 });
    assert.equal(parseAudioSpecificConfig(usac)?.objectType, 42);
    assert.throws(
      () => buildAudioSpecificConfig({ objectType: 2, sampleRate: 48000, channels: 9 }),
      RangeError,
    );
  });

  it('rejects truncated configs', () => {
    assert.equal(parseAudioSpecificConfig(Buffer.alloc(0)), undefined);
    assert.equal(parseAudioSpecificConfig(hex('11')), undefined);
    assert.equal(parseAudioSpecificConfig(hex('17')), undefined); // 0xF rate without its 24 bits
  });

  it('gives RFC 6381 codec strings', () => {
    assert.equal(aacCodecString(hex('1188')), 'mp4a.40.2');
    assert.equal(aacCodecString({ ...parseAudioSpecificConfig(hex('1188'))!, objectType: 1 }), 'mp4a.40.1');
  });
});

describe('ADTS', () => {
  it('builds and parses headers', () => {
    const h = adtsHeader(hex('1190'), 300);
    assert.deepEqual(h, hex('fff14c80267ffc'));
    const info = parseAdtsHeader(h);
    assert.equal(info?.frameLength, 307);
    assert.equal(info?.headerLength, 7);
    assert.deepEqual(info?.config.channels, 2);
    assert.deepEqual(info?.config.sampleRate, 48000);
  });

  it('refuses configurations ADTS cannot express', () => {
    assert.throws(() =>
      adtsHeader(buildAudioSpecificConfig({ objectType: 2, sampleRate: 50000, channels: 2 }), 10),
    );
    assert.throws(() =>
      adtsHeader(buildAudioSpecificConfig({ objectType: 42, sampleRate: 48000, channels: 2 }), 10),
    );
    assert.throws(() => adtsHeader(hex('1190'), 9000));
  });

  it('splits ADTS, skipping garbage and a truncated tail', () => {
    const a = Buffer.alloc(20, 1);
    const b = Buffer.alloc(33, 2);
    const asc = hex('1188');
    const buf = Buffer.concat([
      hex('00fff0'),
      adtsHeader(asc, a.length),
      a,
      hex('123456'),
      adtsHeader(asc, b.length),
      b,
      adtsHeader(asc, 50),
      Buffer.alloc(10),
    ]);
    const out = splitAdts(buf);
    assert.deepEqual(out.frames, [a, b]);
    assert.deepEqual(out.asc, asc);
    assert.deepEqual(splitAdts(Buffer.alloc(100)), { frames: [] });
  });

  it('splits ffmpeg ADTS output into its packets and rebuilds it byte-exact', (t) => {
    const r = spawnSync(
      'ffmpeg',
      ['-v', 'error', '-f', 'lavfi', '-i', 'sine=frequency=440:sample_rate=44100', '-t', '0.5', '-ac', '2',
        '-c:a', 'aac', '-f', 'adts', '-'],
      { maxBuffer: 16 << 20 },
    ); // prettier-ignore
    if (r.error || r.status !== 0) {
      if (process.env.CI === 'true') assert.fail(`ffmpeg unavailable: ${r.error?.message ?? r.stderr}`);
      t.skip(`ffmpeg unavailable: ${r.error?.message ?? String(r.stderr)}`);
      return;
    }
    const adts = r.stdout;
    const { frames, asc, config } = splitAdts(adts);
    assert.equal(config?.sampleRate, 44100);
    assert.equal(config?.channels, 2);
    assert.deepEqual(asc, hex('1210'));
    // 0.5 s at 44.1 kHz = 21.5 frames of 1024 samples → 22 frames plus the encoder's priming frame.
    assert.ok(frames.length >= 22 && frames.length <= 24, `${frames.length} frames`);
    const rebuilt = Buffer.concat(frames.flatMap((f) => [adtsHeader(asc!, f.length), f]));
    assert.ok(rebuilt.equals(adts));
  });
});
