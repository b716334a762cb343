/**
 * AAC helpers: AudioSpecificConfig (ISO/IEC 14496-3 §1.6.2.1) and ADTS framing
 * (ISO/IEC 14496-3 §1.A.2.2). MPEG-TS carries AAC as ADTS, FLV/MP4/RTP carry the raw
 * frame plus an AudioSpecificConfig, so every bridge between them needs these few
 * conversions. Pure functions; malformed input yields undefined, never an exception.
 */

/** sampling_frequency_index → Hz (ISO/IEC 14496-3 Table 1.18). */
export const SAMPLE_RATES = [
  96000, 88200, 64000, 48000, 44100, 32000, 24000, 22050, 16000, 12000, 11025, 8000, 7350,
] as const;

/** channelConfiguration → channel count (ISO/IEC 14496-3 Table 1.19); 0 means "in a PCE". */
const CHANNELS = [0, 1, 2, 3, 4, 5, 6, 8] as const;

/** Samples per AAC frame (AAC-LC and the core of HE-AAC). */
export const AAC_FRAME_SAMPLES = 1024;

export interface AacConfig {
  /** audioObjectType of the core codec (2 = AAC-LC); SBR/PS signalling is looked through. */
  objectType: number;
  sampleRate: number;
  /** Index into SAMPLE_RATES, or 15 when the rate was given explicitly. */
  sampleRateIndex: number;
  channelConfig: number;
  /** Channel count; 0 when the layout is only in a program_config_element. */
  channels: number;
  /** Output sample rate with explicit SBR signalling (HE-AAC), when present. */
  extensionSampleRate?: number;
}

class Bits {
  private pos = 0;
  constructor(private readonly buf: Uint8Array) {}
  read(n: number): number | undefined {
    let v = 0;
    for (let i = 0; i < n; i++) {
      const byte = this.buf[this.pos >> 3];
      if (byte === undefined) return undefined;
      v = v * 2 + ((byte >> (7 - (this.pos & 7))) & 1);
      this.pos++;
    }
    return v;
  }
}

function readObjectType(b: Bits): number | undefined {
  const t = b.read(5);
  if (t !== 31) return t;
  const ext = b.read(6);
  return ext === undefined ? undefined : 32 + ext;
}

function readRate(b: Bits): { index: number; rate: number } | undefined {
  const index = b.read(4);
  if (index === undefined) return undefined;
  if (index === 0xf) {
    const rate = b.read(24);
    return rate ? { index, rate } : undefined;
  }
  const rate = SAMPLE_RATES[index];
  return rate === undefined ? undefined : { index, rate };
}

/** Parses the leading fields of an AudioSpecificConfig. */
export function parseAudioSpecificConfig(buf: Uint8Array): AacConfig | undefined {
  const b = new Bits(buf);
  let objectType = readObjectType(b);
  const rate = readRate(b);
  const channelConfig = b.read(4);
  if (objectType === undefined || !rate || channelConfig === undefined) return undefined;
  let extensionSampleRate: number | undefined;
  // Explicit hierarchical SBR/PS signalling (§1.6.2.1): the core object type follows.
  if (objectType === 5 || objectType === 29) {
    const ext = readRate(b);
    const core = readObjectType(b);
    if (!ext || core === undefined) return undefined;
    extensionSampleRate = ext.rate;
    objectType = core;
  }
  const cfg: AacConfig = {
    objectType,
    sampleRate: rate.rate,
    sampleRateIndex: rate.index,
    channelConfig,
    channels: CHANNELS[channelConfig] ?? 0,
  };
  if (extensionSampleRate !== undefined) cfg.extensionSampleRate = extensionSampleRate;
  return cfg;
}

export interface AscInput {
  objectType: number;
  sampleRateIndex?: number;
  sampleRate?: number;
  channels: number;
}

/** Builds a minimal AudioSpecificConfig (GASpecificConfig with all flags zero). */
export function buildAudioSpecificConfig(input: AscInput): Buffer {
  let index = input.sampleRateIndex;
  if (index === undefined) {
    const found = SAMPLE_RATES.indexOf(input.sampleRate as (typeof SAMPLE_RATES)[number]);
    index = found >= 0 ? found : 0xf;
  }
  const channelConfig = input.channels === 8 ? 7 : input.channels;
  if (channelConfig < 0 || channelConfig > 7) {
    throw new RangeError(`unsupported channel count ${input.channels}`);
  }
  const bits: [number, number][] = [];
  if (input.objectType >= 31) bits.push([31, 5], [input.objectType - 32, 6]);
  else bits.push([input.objectType, 5]);
  bits.push([index, 4]);
  if (index === 0xf) bits.push([input.sampleRate ?? 0, 24]);
  bits.push([channelConfig, 4], [0, 3]); // frameLengthFlag, dependsOnCoreCoder, extensionFlag
  let total = 0;
  for (const [, n] of bits) total += n;
  const out = Buffer.alloc(Math.ceil(total / 8));
  let pos = 0;
  for (const [value, n] of bits) {
    for (let i = n - 1; i >= 0; i--) {
      if (Math.floor(value / 2 ** i) & 1) out[pos >> 3] = (out[pos >> 3] ?? 0) | (0x80 >> (pos & 7));
      pos++;
    }
  }
  return out;
}

/** ADTS length of the fixed + variable header without CRC. */
export const ADTS_HEADER_SIZE = 7;

/**
 * Builds a 7-byte ADTS header (no CRC) for a raw frame of `frameLength` bytes.
 * ADTS can only express object types 1..4, indexed sample rates and channel
 * configurations 1..7, so other configurations throw a RangeError.
 */
export function adtsHeader(asc: Uint8Array | AacConfig, frameLength: number): Buffer {
  const cfg = asc instanceof Uint8Array ? parseAudioSpecificConfig(asc) : asc;
  if (!cfg) throw new RangeError('invalid AudioSpecificConfig');
  if (cfg.objectType < 1 || cfg.objectType > 4) {
    throw new RangeError(`ADTS cannot carry AOT ${cfg.objectType}`);
  }
  if (cfg.sampleRateIndex > 12) throw new RangeError(`ADTS cannot carry ${cfg.sampleRate} Hz`);
  const len = frameLength + ADTS_HEADER_SIZE;
  if (len > 0x1fff) throw new RangeError(`AAC frame too large for ADTS (${frameLength} bytes)`);
  const profile = cfg.objectType - 1;
  const ch = cfg.channelConfig & 7;
  return Buffer.from([
    0xff,
    0xf1, // MPEG-4, layer 0, protection_absent
    (profile << 6) | (cfg.sampleRateIndex << 2) | (ch >> 2),
    ((ch & 3) << 6) | (len >> 11),
    (len >> 3) & 0xff,
    ((len & 7) << 5) | 0x1f, // buffer fullness 0x7FF: variable bit rate
    0xfc, // one raw_data_block
  ]);
}

export interface AdtsFrameInfo {
  config: AacConfig;
  /** Header length: 7, or 9 with CRC. */
  headerLength: number;
  /** aac_frame_length: header plus payload. */
  frameLength: number;
}

/** Parses the ADTS header at `offset`, or undefined if there is none. */
export function parseAdtsHeader(buf: Uint8Array, offset = 0): AdtsFrameInfo | undefined {
  if (offset + ADTS_HEADER_SIZE > buf.length) return undefined;
  const b1 = buf[offset + 1] ?? 0;
  if (buf[offset] !== 0xff || (b1 & 0xf6) !== 0xf0) return undefined; // syncword, layer 0
  const b2 = buf[offset + 2] ?? 0;
  const b3 = buf[offset + 3] ?? 0;
  const sampleRateIndex = (b2 >> 2) & 0xf;
  const sampleRate = SAMPLE_RATES[sampleRateIndex];
  if (sampleRate === undefined) return undefined;
  const channelConfig = ((b2 & 1) << 2) | (b3 >> 6);
  const frameLength = ((b3 & 3) << 11) | ((buf[offset + 4] ?? 0) << 3) | ((buf[offset + 5] ?? 0) >> 5);
  const headerLength = b1 & 1 ? 7 : 9;
  if (frameLength < headerLength) return undefined;
  return {
    config: {
      objectType: (b2 >> 6) + 1,
      sampleRate,
      sampleRateIndex,
      channelConfig,
      channels: CHANNELS[channelConfig] ?? 0,
    },
    headerLength,
    frameLength,
  };
}

/**
 * Splits a buffer of ADTS frames into raw AAC frames. Garbage between frames is skipped
 * by searching for the next syncword; a truncated last frame is dropped. `config` and
 * `asc` describe the first frame found.
 */
export function splitAdts(buf: Buffer): { frames: Buffer[]; asc?: Buffer; config?: AacConfig } {
  const frames: Buffer[] = [];
  let config: AacConfig | undefined;
  let pos = 0;
  while (pos + ADTS_HEADER_SIZE <= buf.length) {
    const info = parseAdtsHeader(buf, pos);
    if (!info || pos + info.frameLength > buf.length) {
      if (info) break; // truncated
      pos++;
      continue;
    }
    config ??= info.config;
    frames.push(buf.subarray(pos + info.headerLength, pos + info.frameLength));
    pos += info.frameLength;
  }
  if (!config) return { frames };
  return { frames, config, asc: buildAudioSpecificConfig(config) };
}

/**
 * RFC 6381 codec string, e.g. `mp4a.40.2` for AAC-LC. From bytes it uses the signalled
 * object type, so explicit HE-AAC gives `mp4a.40.5` as HLS players expect.
 */
export function aacCodecString(asc: Uint8Array | AacConfig): string {
  const type = asc instanceof Uint8Array ? readObjectType(new Bits(asc)) : asc.objectType;
  return `mp4a.40.${type ?? 2}`;
}
