/**
 * A raw RTSP client for the in-process tests: everything the server sends, parsed with the
 * wire reader; requests written as text; the ffmpeg publisher capture replayed; UDP ports
 * bound as players bind them.
 */
import assert from 'node:assert/strict';
import { createSocket, type Socket as UdpSocket } from 'node:dgram';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { DEFAULT_LIMITS } from '../../../../src/core/limits.js';
import { readerLimits } from '../../../../protocols/rtsp/control.js';
import { RtspReader, type RtspItem, type RtspResponse } from '../../../../protocols/rtsp/wire/message.js';

/** What the server reads with by default (src/core/limits.ts). */
const READER_LIMITS = readerLimits(DEFAULT_LIMITS);

/** A raw RTSP client: everything the server sends, parsed with the wire reader. */
export class RtspTestClient {
  readonly items: RtspItem[] = [];
  closed = false;
  private readonly reader = new RtspReader(READER_LIMITS);
  private wake: () => void = () => undefined;

  private constructor(readonly socket: Socket) {
    socket.on('data', (d: Buffer) => {
      this.items.push(...this.reader.push(d));
      this.wake();
    });
    socket.on('close', () => {
      this.closed = true;
      this.wake();
    });
    socket.on('error', () => undefined);
  }

  static async open(port: number, localAddress?: string): Promise<RtspTestClient> {
    const s = connect({ port, host: '127.0.0.1', ...(localAddress ? { localAddress } : {}) });
    s.on('error', () => undefined);
    await once(s, 'connect');
    return new RtspTestClient(s);
  }

  send(...messages: (string | Buffer)[]): void {
    for (const m of messages) this.socket.write(m);
  }

  get responses(): RtspResponse[] {
    return this.items.flatMap((i) => (i.kind === 'response' ? [i.response] : []));
  }

  get packets(): { channel: number; payload: Buffer }[] {
    return this.items.flatMap((i) => (i.kind === 'interleaved' ? [i] : []));
  }

  /** Waits until `ready()` holds; fails after `ms`. */
  async until(ready: () => boolean, what: string, ms = 3000): Promise<void> {
    const deadline = Date.now() + ms;
    while (!ready()) {
      const left = deadline - Date.now();
      if (left <= 0) assert.fail(`timed out waiting for ${what}`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
    }
  }

  /** The n-th answer (1-based), once it came. */
  async answer(n: number): Promise<RtspResponse> {
    await this.until(() => this.responses.length >= n, `answer ${n}`);
    const r = this.responses[n - 1];
    assert.ok(r);
    return r;
  }

  /** Something `until` waits for happened elsewhere (a UDP datagram). */
  notify(): void {
    this.wake();
  }

  close(): void {
    this.socket.destroy();
  }
}

export function request(
  method: string,
  url: string,
  cseq: number,
  headers: string[] = [],
  body = '',
): string {
  const head = [`${method} ${url} RTSP/1.0`, `CSeq: ${cseq}`, 'User-Agent: conn-test', ...headers];
  if (body) head.push(`Content-Length: ${Buffer.byteLength(body)}`);
  return `${head.join('\r\n')}\r\n\r\n${body}`;
}

export const sessionOf = (r: RtspResponse): string => (r.headers.get('session') ?? '').split(';')[0] ?? '';

async function bindLoopback(s: UdpSocket, port = 0): Promise<void> {
  s.bind(port, '127.0.0.1');
  await once(s, 'listening');
}

/** An even RTP port and RTCP on the next one, as players bind them (the server refuses other pairs). */
export async function bindPair(): Promise<{ rtp: UdpSocket; rtcp: UdpSocket }> {
  for (;;) {
    const rtp = createSocket('udp4');
    await bindLoopback(rtp);
    const port = rtp.address().port;
    if (port % 2 === 0 && port < 65535) {
      const rtcp = createSocket('udp4');
      rtcp.on('error', () => undefined);
      const bound = await bindLoopback(rtcp, port + 1).then(
        () => true,
        () => false,
      );
      if (bound) return { rtp, rtcp };
      rtcp.close();
    }
    rtp.close();
  }
}

const capture = readFileSync(new URL('../../../fixtures/rtsp/ffmpeg-publish-tcp.bin', import.meta.url));

/**
 * Replays the ffmpeg capture for another stream name of the same length (so no offset
 * moves) as ffmpeg sent it: OPTIONS, ANNOUNCE and the first SETUP, then with the Session id
 * this server handed out, the second SETUP and RECORD. Returns the rest: the media, which
 * ffmpeg sends only after the RECORD answer, and TEARDOWN.
 */
export async function startPublish(
  c: RtspTestClient,
  name: string,
): Promise<{ media: Buffer; teardown: Buffer }> {
  assert.equal(name.length, 'live/cam1'.length);
  const bytes = capture.toString('latin1').replaceAll('live/cam1', name);
  const secondSetup = bytes.indexOf('SETUP ', bytes.indexOf('SETUP ') + 1);
  const mediaAt = bytes.indexOf('\r\n\r\n', bytes.indexOf('RECORD ')) + 4;
  const teardownAt = bytes.lastIndexOf('TEARDOWN ');
  c.send(Buffer.from(bytes.slice(0, secondSetup), 'latin1'));
  const session = sessionOf(await c.answer(3));
  const ours = (text: string): Buffer =>
    Buffer.from(text.replaceAll('Session: 12345678', `Session: ${session}`), 'latin1');
  c.send(ours(bytes.slice(secondSetup, mediaAt)));
  await c.answer(5);
  assert.deepEqual(
    c.responses.map((r) => r.status),
    [200, 200, 200, 200, 200],
  );
  return {
    media: Buffer.from(bytes.slice(mediaAt, teardownAt), 'latin1'),
    teardown: ours(bytes.slice(teardownAt)),
  };
}
