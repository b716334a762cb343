/**
 * The HTTP MPEG-TS adapter (SPEC §4): `GET /NAME/mpegts` plays a stream as an endless TS
 * body; `PUT`/`POST /NAME/mpegts` with a (chunked) TS body publishes into it.
 *
 * HTTP-TS is a persistent protocol (AUTH-SPEC §3.5): one session per connection, opened
 * before the first byte, closed when the connection goes; a session the manager kills
 * (ban, unique, failed re-check) has its socket closed without a word (§5.3).
 */
import { codecRefusal } from '../../src/media/codec-support.js';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Core, ProtocolAdapter } from '../../src/adapter.js';
import {
  httpClientRequest,
  playbackCors,
  sendDenial,
  sendPreflight,
  streamResourceMatcher,
} from '../../src/http/playback.js';
import type { RouteContext } from '../../src/http/router.js';
import { sendText } from '../../src/http/server.js';
import { TsDemuxer, type DemuxEvent } from '../../src/media/mpegts/index.js';
import type { Source } from '../../src/streams/source.js';
import type { CloseReason } from '../../src/core/reasons.js';
import type { Session } from '../../src/sessions/types.js';

import { TsEgress } from './egress.js';

const METHODS = 'GET, HEAD, PUT, POST, OPTIONS';

export type TsCore = Pick<Core, 'registry' | 'sessions' | 'router' | 'log'>;

export function createMpegtsAdapter(core: TsCore): ProtocolAdapter {
  const log = core.log.child({ proto: 'tshttp' });
  /** Open connections, so stop() can end them with a history row each. */
  const live = new Map<ServerResponse, Session>();

  const play = async (
    req: IncomingMessage,
    res: ServerResponse,
    ctx: RouteContext,
    name: string,
  ): Promise<void> => {
    const cors = playbackCors(core.registry.configFor(name)?.playbackHeaders, 'tshttp');
    const decision = await core.sessions.open(httpClientRequest(req, ctx, 'play', 'tshttp', name));
    if (!decision.allow) {
      sendDenial(res, decision, cors);
      return;
    }
    const session = decision.session;
    const stream = core.registry.resolve(name);
    const refuse = (status: number, reason: CloseReason): void => {
      sendText(res, status, `${status} ${reason}\n`, { ...cors, 'Cache-Control': 'no-cache' });
      session.close(reason);
    };
    if (!stream) return refuse(404, 'stream_not_found');
    if (!stream.allows('tshttp')) return refuse(403, 'protocol_disabled');
    const unplayable = codecRefusal('ts', stream.bus.tracks);
    if (unplayable) return void (sendText(res, 415, `415 ${unplayable}\n`, cors), session.close('refused'));
    if (res.destroyed) return void session.close('client_closed');

    res.writeHead(200, { ...cors, 'Content-Type': 'video/mp2t', 'Cache-Control': 'no-cache' });
    if (req.method === 'HEAD') {
      res.end();
      session.close('head');
      return;
    }
    res.flushHeaders();
    const socket = res.socket;
    // A live body never completes: no inactivity timeout on the viewer's socket.
    socket?.setTimeout(0);
    const egress = stream.bus.egress('mpegts', (bus) => new TsEgress(bus));
    const unsubscribe = egress.subscribe({
      deliver: (item) => {
        if (res.destroyed) return;
        res.write(item.bytes);
        session.addBytes(item.bytes.length);
      },
      backlog: () => res.writableLength + (socket?.writableLength ?? 0),
      // The egress dropped this viewer (stopped reading, or a write threw) and has logged why.
      close: (reason) => {
        session.close(reason);
        res.destroy();
      },
    });
    live.set(res, session);
    session.onKill((reason) => {
      log.info({ reason, session: session.id, stream: name }, 'session ended by the server');
      res.destroy();
    });
    res.on('close', () => {
      unsubscribe();
      live.delete(res);
      if (!session.closed) session.close('client_closed');
    });
  };

  const publish = async (
    req: IncomingMessage,
    res: ServerResponse,
    ctx: RouteContext,
    name: string,
  ): Promise<void> => {
    // Hold the body until access is decided: no media flows into the stream before that.
    req.pause();
    const decision = await core.sessions.open(httpClientRequest(req, ctx, 'publish', 'tshttp', name));
    if (!decision.allow) {
      sendDenial(res, decision, { Connection: 'close' });
      req.destroy();
      return;
    }
    const session = decision.session;
    const stream = core.registry.resolve(name);
    const publisher = stream?.claimPublisher();
    if (!stream || !publisher) {
      const [status, reason] = stream ? [409, 'stream_busy' as const] : [404, 'stream_not_found' as const];
      sendText(res, status, `${status} ${reason}\n`, { Connection: 'close' });
      session.close(reason);
      req.destroy();
      return;
    }
    req.socket.setTimeout(0);
    const source: Source = publisher.source;
    const demuxer = new TsDemuxer();
    let finished = false;
    const finish = (reason: CloseReason): void => {
      if (finished) return;
      finished = true;
      live.delete(res);
      publisher.release();
      if (!session.closed) session.close(reason);
    };
    const apply = (events: DemuxEvent[]): void => {
      for (const e of events) {
        if (e.kind === 'tracks') source.tracks(e.tracks);
        else source.frame(e.frame);
      }
    };
    live.set(res, session);
    session.onKill((reason) => {
      log.info({ reason, session: session.id, stream: name }, 'publisher ended by the server');
      finish(reason);
      req.destroy();
      res.destroy();
    });
    req.on('data', (chunk: Buffer) => {
      if (finished) return;
      session.addBytes(chunk.length);
      apply(demuxer.push(chunk));
    });
    req.on('end', () => {
      if (finished) return;
      apply(demuxer.flush());
      if (demuxer.errors > 0) log.info({ stream: name, errors: demuxer.errors }, 'malformed TS skipped');
      finish('publish_ended');
      sendText(res, 200, 'ok\n');
    });
    req.on('close', () => finish('client_closed'));
    log.info({ stream: name, session: session.id }, 'publishing over HTTP MPEG-TS');
    req.resume();
  };

  core.router.add(
    ['GET', 'PUT', 'POST', 'OPTIONS'],
    streamResourceMatcher(/^mpegts$/),
    async (req: IncomingMessage, res: ServerResponse, ctx: RouteContext) => {
      const name = ctx.params['name'] ?? '';
      // A handler that throws is answered 500 (or cut off) and logged by the HTTP front.
      if (req.method === 'OPTIONS') {
        const config = core.registry.configFor(name);
        if (config === undefined) sendText(res, 404, '404 stream_not_found\n');
        else sendPreflight(req, res, playbackCors(config.playbackHeaders, 'tshttp'), METHODS);
      } else if (req.method === 'PUT' || req.method === 'POST') {
        await publish(req, res, ctx, name);
      } else {
        await play(req, res, ctx, name);
      }
    },
  );

  return {
    name: 'mpegts',
    async start() {},
    async stop() {
      for (const [res, session] of live) {
        if (!session.closed) session.close('server_shutdown');
        res.destroy();
      }
      live.clear();
    },
    address: () => undefined,
  };
}
