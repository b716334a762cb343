/**
 * The push readers the fuzz targets construct, in one place: how they are configured (their
 * limits) is the one thing about them that changes when the server's limits do.
 */
import { ChunkReader } from '../../protocols/rtmp/wire/chunk-reader.js';
import { MAX_BODY_BYTES, MAX_HEAD_BYTES, RtspReader } from '../../protocols/rtsp/wire/message.js';

/** An RTMP chunk reader as a connection has it. */
export function newChunkReader(): ChunkReader {
  return new ChunkReader();
}

/** An RTSP reader as a connection has it. */
export function newRtspReader(): RtspReader {
  return new RtspReader();
}

/** The most an RTSP reader may hold back: a whole head (+ its blank line) and a whole body, or one interleaved frame. */
export const RTSP_MAX_BUFFERED = MAX_HEAD_BYTES + 4 + MAX_BODY_BYTES;
