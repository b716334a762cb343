/**
 * The error classes of the RTSP wire layer. A peer that breaks RTSP, SDP or RTP (a bad
 * request line, a truncated RTP header, a FU-A without a start) makes a wire function throw
 * RtspProtocolError; one that goes over a limit the reader was given (an oversize head or
 * body) throws RtspLimitError, which names it. The connection answers or closes with the
 * message as the reason. Any other exception from wire code is a bug.
 */
import type { RtspReaderLimit } from './message.js';

export class RtspProtocolError extends Error {
  override name = 'RtspProtocolError';

  constructor(
    message: string,
    /** The RTSP status a server answers with when the error is about a request (RFC 2326 §7.1.1). */
    readonly status = 400,
  ) {
    super(message);
  }
}

export class RtspLimitError extends RtspProtocolError {
  override name = 'RtspLimitError';

  constructor(
    message: string,
    status: number,
    readonly limit: RtspReaderLimit,
  ) {
    super(message, status);
  }
}
