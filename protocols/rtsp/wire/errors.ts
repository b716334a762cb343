/**
 * The one error class of the RTSP wire layer. A peer that breaks RTSP, SDP or RTP (a bad
 * request line, an oversize header block, a truncated RTP header, a FU-A without a start)
 * makes a wire function throw this; the connection answers or closes with its message as
 * the reason. Any other exception from wire code is a bug.
 */
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
