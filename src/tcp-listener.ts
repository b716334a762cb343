/**
 * A TCP listener for a persistent-connection protocol (RTMP, RTSP): one client object per
 * socket, every client ended on stop so their sessions close with history rows.
 */
import { createServer, type Server, type Socket } from 'node:net';
import type { Listen } from './config/types.js';
import type { CloseReason } from './core/reasons.js';

export interface TcpClient {
  close(reason: CloseReason): void;
}

export class TcpListener {
  private server: Server | undefined;
  private readonly clients = new Map<Socket, TcpClient>();

  constructor(
    private readonly listen: Listen,
    private readonly accept: (socket: Socket) => TcpClient,
  ) {}

  async start(): Promise<void> {
    const server = createServer((socket) => {
      this.clients.set(socket, this.accept(socket));
      socket.on('close', () => this.clients.delete(socket));
    });
    this.server = server;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.listen.port, this.listen.host, () => resolve());
    });
  }

  address(): { host: string; port: number } | undefined {
    const a = this.server?.address();
    return a && typeof a === 'object' ? { host: a.address, port: a.port } : undefined;
  }

  async stop(): Promise<void> {
    const server = this.server;
    if (!server) return;
    await new Promise<void>((resolve) => {
      server.close(() => resolve());
      for (const [socket, client] of this.clients) {
        client.close('server_shutdown');
        socket.destroy();
      }
    });
  }
}
