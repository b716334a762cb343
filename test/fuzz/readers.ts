/**
 * The push readers the fuzz targets construct, in one place: configured with the server's
 * default limits, exactly as a connection has them.
 */
import { chunkReaderLimits } from '../../protocols/rtmp/session.js';
import { ChunkReader } from '../../protocols/rtmp/wire/chunk-reader.js';
import { readerLimits } from '../../protocols/rtsp/control.js';
import { RtspReader } from '../../protocols/rtsp/wire/message.js';
import { DEFAULT_LIMITS } from '../../src/core/limits.js';

const RTSP_LIMITS = readerLimits(DEFAULT_LIMITS);

/** An RTMP chunk reader as a connection has it. */
export function newChunkReader(): ChunkReader {
  return new ChunkReader(chunkReaderLimits(DEFAULT_LIMITS));
}

/** An RTSP reader as a connection has it. */
export function newRtspReader(): RtspReader {
  return new RtspReader(RTSP_LIMITS);
}

/** The most an RTSP reader may hold back: a whole head (+ its blank line) and a whole body, or one interleaved frame. */
export const RTSP_MAX_BUFFERED = RTSP_LIMITS.maxHeadBytes + 4 + RTSP_LIMITS.maxBodyBytes;
