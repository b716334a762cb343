/**
 * The error classes of the RTMP wire layer. A peer that breaks the protocol (bad version,
 * malformed chunk) makes a wire parser throw RtmpProtocolError; one that goes over a limit it
 * was given throws RtmpLimitError, which names the limit. The connection closes with the
 * message as the reason. Any other exception from wire code is a bug.
 */
import type { ChunkReaderLimit } from './chunk-reader.js';

export class RtmpProtocolError extends Error {
  override name = 'RtmpProtocolError';
}

export class RtmpLimitError extends RtmpProtocolError {
  override name = 'RtmpLimitError';

  constructor(
    message: string,
    readonly limit: ChunkReaderLimit,
  ) {
    super(message);
  }
}
