/**
 * One worker of `workers N` (src/cluster/primary.ts forks them): the ordinary server, sharing
 * the listeners through Node's cluster module, plus what makes N processes act as one:
 * - the session store is the primary's (ipc-store.ts) unless `session_store` names Redis;
 * - a publisher here is announced to the primary, and this worker serves the stream to the
 *   others on its relay port; a stream another worker owns is pulled from there (relay.ts);
 * - static streams' pulled inputs (ffmpeg) run in worker slot 0 only and are relayed;
 * - the primary's `reload` and `shutdown` replace SIGHUP and SIGTERM, which go to the primary.
 */
import cluster from 'node:cluster';
import type { Logger } from 'pino';
import type { AdapterFactory } from '../adapter.js';
import type { Config } from '../config/types.js';
import { startServer, type RunningServer } from '../server.js';
import type { Stream } from '../streams/stream.js';
import { IpcClusterStore, Requests } from './ipc-store.js';
import { isPrimaryMessage, type Owner, type PrimaryMessage, type WorkerMessage } from './messages.js';
import { pullRelay, RelayServer } from './relay.js';
import { registerClusterSessionRoutes, runApiOp, type ApiManager } from './api.js';
import type { UniqueKick } from '../sessions/cluster.js';

/** After a relay ends, ask the primary again this much later (the owner may have moved). */
const RELAY_RETRY_MS = 1_000;

export const SLOT_ENV = 'STREAMGATE_WORKER_SLOT';
export const SECRET_ENV = 'STREAMGATE_RELAY_SECRET';

export async function runWorker(options: {
  config: Config;
  log: Logger;
  adapters: AdapterFactory[];
  reloadFromDisk?: () => Promise<Config>;
}): Promise<number> {
  const me = cluster.worker?.id ?? 0;
  const slot = Number(process.env[SLOT_ENV] ?? '0');
  const secret = Buffer.from(process.env[SECRET_ENV] ?? '', 'hex');
  // Not for ffmpeg children or anything else this process starts.
  delete process.env[SECRET_ENV];
  const log = options.log.child({ worker: slot });
  const send = (m: WorkerMessage): void => {
    if (process.send && process.connected) process.send(m);
    else throw new Error('no channel to the primary');
  };
  const requests = new Requests(send);
  let onUnique: (kick: UniqueKick) => void = () => undefined;
  let server: RunningServer | undefined;
  let manager: ApiManager | undefined;
  const pulls = new Map<string, { stop(): void }>();
  let markReady: () => void = () => undefined;
  const ready = new Promise<void>((resolve) => (markReady = resolve));

  const find = (name: string): Stream | undefined =>
    server?.core.registry.list().find((s) => s.name === name);
  const runsPulledInput = (): boolean => slot === 0;
  const owns = (stream: Stream): boolean =>
    stream.hasLocalPublisher || (runsPulledInput() && stream.pulledInputUrl !== undefined);

  const relayServer = new RelayServer({
    secret,
    log,
    owned: (name) => {
      const s = find(name);
      return s && owns(s) ? s : undefined;
    },
  });

  const post = (m: WorkerMessage): void => {
    try {
      send(m);
    } catch {
      // The primary is gone; `disconnect` below stops this worker.
    }
  };

  const attach = (stream: Stream, owner: Owner): void => {
    if (owner.worker === me || pulls.has(stream.name) || stream.hasPublisher) return;
    if (find(stream.name) !== stream) return; // removed or replaced meanwhile
    const pull = pullRelay(stream, owner.relay, secret, log, () => {
      if (pulls.get(stream.name) === pull) pulls.delete(stream.name);
      const retry = setTimeout(() => void lookupAndAttach(stream), RELAY_RETRY_MS);
      retry.unref();
    });
    if (pull) pulls.set(stream.name, pull);
  };

  const lookupAndAttach = async (stream: Stream): Promise<void> => {
    if (stopping || find(stream.name) !== stream || stream.hasPublisher) return;
    const owner = await requests.ask<Owner | null>((rid) => ({ t: 'lookup', rid, name: stream.name }), null);
    if (owner) attach(stream, owner);
  };

  const onStart = (stream: Stream): void => {
    void ready.then(() => {
      if (runsPulledInput() && stream.pulledInputUrl !== undefined) {
        post({ t: 'published', name: stream.name });
      } else if (stream.acceptsPublish || stream.pulledInputUrl !== undefined) void lookupAndAttach(stream);
    });
  };

  const onPublisher = (stream: Stream, publishing: boolean): void => {
    post({ t: publishing ? 'published' : 'unpublished', name: stream.name });
    if (!publishing) relayServer.endStream(stream.name);
  };

  let stopping = false;
  let finished: (code: number) => void = () => undefined;
  const done = new Promise<number>((resolve) => (finished = resolve));
  const stop = (why: string): void => {
    if (stopping) return;
    stopping = true;
    log.info({ why }, 'worker stopping');
    void (async () => {
      try {
        await server?.stop();
      } catch (err) {
        log.error({ err: (err as Error).message }, 'worker shutdown error');
      }
      await relayServer.close();
      finished(0);
    })();
  };

  process.on('message', (m: unknown) => {
    if (!isPrimaryMessage(m)) return;
    handle(m);
  });
  const handle = (m: PrimaryMessage): void => {
    switch (m.t) {
      case 'reply':
        requests.reply(m.rid, m.value);
        return;
      case 'owner': {
        const stream = find(m.name);
        if (stream) attach(stream, { worker: m.worker, relay: m.relay });
        return;
      }
      case 'no_owner':
        return; // the relays of that stream end on their own; a new owner is announced
      case 'unique':
        onUnique(m.kick);
        return;
      case 'reload':
        void reload();
        return;
      case 'call': {
        let value: unknown = null;
        try {
          if (manager) value = runApiOp(manager, m.op, m.arg);
        } catch (err) {
          log.error({ err: (err as Error).message, op: m.op }, 'cluster API call failed');
        }
        post({ t: 'call_result', cid: m.cid, value });
        return;
      }
      case 'shutdown':
        stop('shutdown');
        return;
    }
  };
  const reload = async (): Promise<void> => {
    try {
      if (!options.reloadFromDisk || !server) throw new Error('no config file to reload');
      await server.reload(await options.reloadFromDisk());
      post({ t: 'reloaded', ok: true });
    } catch (err) {
      log.error({ err: (err as Error).message }, 'config reload failed');
      post({ t: 'reloaded', ok: false, error: (err as Error).message });
    }
  };
  // Signals are the primary's to handle (a terminal's Ctrl-C reaches the whole group);
  // a worker stops when told, or when the primary is gone.
  process.on('SIGINT', () => undefined);
  process.on('SIGHUP', () => undefined);
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('disconnect', () => stop('primary gone'));

  const reloadAll = (read: () => Promise<Config>) => async (): Promise<Config> => {
    const next = await read();
    post({ t: 'reload_all' });
    return next;
  };

  const relay = await relayServer.listen();
  try {
    server = await startServer(options.config, {
      log,
      adapters: options.adapters,
      // A reload through the admin API lands on one worker; the primary has the others follow.
      ...(options.reloadFromDisk ? { reloadFromDisk: reloadAll(options.reloadFromDisk) } : {}),
      worker: {
        sharedStore: (unique) => {
          onUnique = unique;
          return new IpcClusterStore(post, requests, log);
        },
        streams: { onPublisher, onStart, runsPulledInput },
        routes: (router, sessions) => {
          manager = sessions;
          registerClusterSessionRoutes(router, sessions, (op, arg) =>
            requests.ask<unknown[] | undefined>((rid) => ({ t: 'fanout', rid, op, arg }), undefined),
          );
        },
      },
    });
  } catch (err) {
    log.fatal({ err: (err as Error).message }, 'worker cannot start');
    await relayServer.close();
    return 2;
  }
  markReady();
  post({ t: 'ready', addresses: server.addresses(), relay });
  return done;
}
