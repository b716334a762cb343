/**
 * The RTMP adapter: a TCP listener handing each client to an RtmpConn.
 */
import { createServer, type Server, type Socket } from 'node:net';
import type { Listen } from '../../src/config/types.js';
import type { ProtocolAdapter } from '../../src/adapter.js';
import { RtmpConn, type RtmpDeps } from './rtmp-conn.js';

export function createRtmpAdapter(listen: Listen, deps: RtmpDeps): ProtocolAdapter {
  const conns = new Set<RtmpConn>();
  const sockets = new Set<Socket>();
  let server: Server | undefined;
  return {
    name: 'rtmp',
    async start() {
      server = createServer((socket) => {
        sockets.add(socket);
        socket.on('close', () => sockets.delete(socket));
        const conn = new RtmpConn(socket, deps);
        conns.add(conn);
        socket.on('close', () => conns.delete(conn));
      });
      await new Promise<void>((resolve, reject) => {
        server?.once('error', reject);
        server?.listen(listen.port, listen.host, () => resolve());
      });
    },
    address() {
      const a = server?.address();
      return a && typeof a === 'object' ? { host: a.address, port: a.port } : undefined;
    },
    async stop() {
      await new Promise<void>((resolve) => {
        if (!server) return resolve();
        server.close(() => resolve());
        for (const c of conns) c.close('server_shutdown');
        for (const s of sockets) s.destroy();
      });
    },
  };
}
