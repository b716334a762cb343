/**
 * Program-specific information (ISO/IEC 13818-1 §2.4.4): what the PAT and PMT say, read from
 * a complete section whose CRC the demuxer already checked. Pure helpers; the demuxer keeps
 * the section reassembly and acts on the answers.
 */
import { StreamType } from './muxer.js';
import { opusDescriptor } from './opus.js';

export type EsCodec = 'h264' | 'h265' | 'aac' | 'opus';

/** The first program's PMT PID in a PAT section (`end` excludes the CRC); network PIDs skipped. */
export function patPmtPid(s: Buffer, end: number): number | undefined {
  for (let i = 8; i + 4 <= end; i += 4) {
    if (s.readUInt16BE(i) === 0) continue; // program 0 names the network PID
    return s.readUInt16BE(i + 2) & 0x1fff;
  }
  return undefined;
}

export interface PmtStreams {
  videoPid: number | undefined;
  audioPid: number | undefined;
  /** The streams we carry (the first video and the first audio), by PID. */
  found: Map<number, { codec: EsCodec; channels: number }>;
}

/** The elementary streams of a PMT section we can carry; others are ignored. */
export function pmtStreams(s: Buffer, end: number): PmtStreams {
  let i = 12 + (s.readUInt16BE(10) & 0x0fff);
  let videoPid: number | undefined;
  let audioPid: number | undefined;
  const found = new Map<number, { codec: EsCodec; channels: number }>();
  while (i + 5 <= end) {
    const type = s[i] ?? 0;
    const pid = s.readUInt16BE(i + 1) & 0x1fff;
    const infoLen = s.readUInt16BE(i + 3) & 0x0fff;
    const desc = s.subarray(i + 5, Math.min(i + 5 + infoLen, end));
    i += 5 + infoLen;
    let codec: EsCodec | undefined;
    let channels = 2;
    if (type === StreamType.H264) codec = 'h264';
    else if (type === StreamType.H265) codec = 'h265';
    else if (type === StreamType.AAC_ADTS) codec = 'aac';
    else if (type === StreamType.PES_PRIVATE) {
      const opus = opusDescriptor(desc);
      if (opus !== undefined) {
        codec = 'opus';
        channels = opus;
      }
    }
    if (!codec) continue;
    const isVideo = codec === 'h264' || codec === 'h265';
    if (isVideo ? videoPid !== undefined : audioPid !== undefined) continue;
    if (isVideo) videoPid = pid;
    else audioPid = pid;
    found.set(pid, { codec, channels });
  }
  return { videoPid, audioPid, found };
}
