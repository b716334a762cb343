/**
 * A programmable on_play/on_publish HTTP backend on loopback for end-to-end tests: every
 * request is recorded, and a replaceable handler decides status, headers and delay.
 */
import { createServer, type IncomingMessage } from 'node:http';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';

export interface BackendAnswer {
  status: number;
  headers?: Record<string, string>;
  body?: string;
  delayMs?: number;
}

export type BackendHandler = (query: URLSearchParams, req: IncomingMessage) => BackendAnswer;

export interface TestBackend {
  port: number;
  url: string;
  calls: URLSearchParams[];
  handler: BackendHandler;
  callsFor(token: string): URLSearchParams[];
  close(): Promise<void>;
}

/** Allows tokens starting with `good`, denies the rest. */
export const allowGoodTokens: BackendHandler = (q) => ({
  status: q.get('token')?.startsWith('good') ? 200 : 403,
});

export async function startBackend(handler: BackendHandler = allowGoodTokens): Promise<TestBackend> {
  const calls: URLSearchParams[] = [];
  const server = createServer((req, res) => {
    const q = new URL(req.url ?? '/', 'http://x').searchParams;
    calls.push(q);
    const answer = backend.handler(q, req);
    const send = (): void => {
      res.writeHead(answer.status, answer.headers ?? {}).end(answer.body ?? '');
    };
    if (answer.delayMs) setTimeout(send, answer.delayMs);
    else send();
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const port = (server.address() as AddressInfo).port;
  const backend: TestBackend = {
    port,
    url: `http://127.0.0.1:${port}/auth`,
    calls,
    handler,
    callsFor: (token) => calls.filter((q) => q.get('token') === token),
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
  return backend;
}
