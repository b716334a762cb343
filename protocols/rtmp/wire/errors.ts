/**
 * The one error class of the RTMP wire layer. A peer that breaks the protocol (bad version,
 * malformed chunk, oversize message) makes a wire parser throw this; the connection closes with
 * its message as the reason. Any other exception from wire code is a bug.
 */
export class RtmpProtocolError extends Error {
  override name = 'RtmpProtocolError';
}
