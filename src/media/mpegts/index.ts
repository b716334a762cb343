/** MPEG-TS (ISO/IEC 13818-1): deterministic muxer and sans-IO demuxer. */
export { crc32 } from './crc32.js';
export { TsDemuxer, type DemuxEvent } from './demuxer.js';
export { AUDIO_PID, PMT_PID, StreamType, TS_PACKET_SIZE, TsMuxer, VIDEO_PID } from './muxer.js';
