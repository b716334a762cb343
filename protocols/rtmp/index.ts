/**
 * The RTMP adapter: a TCP listener handing each client to an RtmpConn.
 */
import type { Listen } from '../../src/config/types.js';
import type { ProtocolAdapter } from '../../src/adapter.js';
import { TcpListener } from '../../src/tcp-listener.js';
import { RtmpConn, type RtmpDeps } from './rtmp-conn.js';

export function createRtmpAdapter(listen: Listen, deps: RtmpDeps): ProtocolAdapter {
  const listener = new TcpListener(listen, (socket) => new RtmpConn(socket, deps), {
    proto: 'rtmp',
    log: deps.log,
    limits: () => deps.config().limits,
  });
  return {
    name: 'rtmp',
    start: () => listener.start(),
    address: () => listener.address(),
    stop: () => listener.stop(),
  };
}
