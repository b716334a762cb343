/**
 * The primary of `workers N`: it serves no client itself. It forks N workers (worker.ts) that
 * share the listening sockets through Node's cluster module (connections are handed out
 * round-robin), and it is the one place the workers agree through:
 * - who owns which stream (owners.ts), answering lookups and announcing new owners;
 * - the session store for per-user limits, bans and X-Unique when no Redis is configured
 *   (shared-sessions.ts);
 * - signals: SIGHUP reloads every worker, SIGTERM/SIGINT stop them all gracefully;
 * - a worker that dies is logged and started again in its slot, with back-off when it keeps dying.
 */
import cluster, { type Worker } from 'node:cluster';
import { randomBytes } from 'node:crypto';
import os from 'node:os';
import type { Logger } from 'pino';
import type { Config } from '../config/types.js';
import { isWorkerMessage, type PrimaryMessage, type WorkerMessage } from './messages.js';
import { PrimaryState, type Outgoing, type PrimaryEvent } from './primary-state.js';
import { SECRET_ENV, SLOT_ENV } from './worker.js';
import { SECRET_BYTES } from './relay-wire.js';

/** A worker that ran this long before dying starts its slot's back-off afresh. */
const STABLE_MS = 30_000;
/** How long a cluster-wide API call waits for the workers' answers. */
const CALL_DEADLINE_MS = 1_500;
/** How long workers get to close their sessions (history rows) on shutdown before SIGKILL. */
const SHUTDOWN_GRACE_MS = 15_000;

/** Delay before restarting a slot whose worker died `crashes` times in a row: 250 ms doubling, at most 30 s. */
export function restartDelay(crashes: number): number {
  return Math.min(30_000, 250 * 2 ** Math.max(0, crashes));
}

interface Slot {
  worker: Worker | undefined;
  startedAt: number;
  crashes: number;
  restart: NodeJS.Timeout | undefined;
}

export function runPrimary(options: {
  count: number;
  log: Logger;
  /** Re-reads the config file for SIGHUP; undefined on the embedded config. */
  readConfig?: () => Promise<Config | string[]>;
  /** Logs the start-up line once every worker listens. */
  announce: (addresses: Record<string, { host: string; port: number }>) => void;
}): Promise<number> {
  const { count, log } = options;
  const secret = randomBytes(SECRET_BYTES).toString('hex');
  const state = new PrimaryState();
  const slots: Slot[] = Array.from({ length: count }, () => ({
    worker: undefined,
    startedAt: 0,
    crashes: 0,
    restart: undefined,
  }));
  const live = new Map<number, Worker>();
  let announced = false;
  const readyOnce = new Set<number>();
  let stopping = false;
  let exitCode = 0;
  let finish: (code: number) => void = () => undefined;
  const done = new Promise<number>((resolve) => (finish = resolve));

  const sendTo = (w: Worker, m: PrimaryMessage): void => {
    if (!w.isConnected()) return;
    try {
      w.send(m);
    } catch {
      // It is exiting; its exit handler cleans up.
    }
  };
  const broadcast = (m: PrimaryMessage, except?: number): void => {
    for (const [id, w] of live) if (id !== except) sendTo(w, m);
  };

  const fork = (index: number): void => {
    const slot = slots[index] as Slot;
    slot.restart = undefined;
    const w = cluster.fork({ [SLOT_ENV]: String(index), [SECRET_ENV]: secret });
    slot.worker = w;
    slot.startedAt = Date.now();
    live.set(w.id, w);
    w.on('message', (m: unknown) => {
      if (isWorkerMessage(m)) onMessage(w, index, m);
    });
    w.on('exit', (code, signal) => onExit(w, index, code, signal));
  };

  const deliver = (out: Outgoing[]): void => {
    for (const o of out) {
      if (o.to === 'all') broadcast(o.msg, o.except);
      else {
        const w = live.get(o.to);
        if (w) sendTo(w, o.msg);
      }
    }
  };

  const onMessage = (w: Worker, index: number, m: WorkerMessage): void => {
    const events: PrimaryEvent[] = [];
    const out = state.handle(w.id, m, events);
    deliver(out);
    const call = out.find((o) => o.msg.t === 'call')?.msg;
    if (call?.t === 'call') {
      const deadline = setTimeout(() => deliver(state.expireCall(call.cid)), CALL_DEADLINE_MS);
      deadline.unref();
    }
    for (const e of events) {
      if (e.kind === 'ready') {
        log.info(
          { worker: index, pid: w.process.pid },
          readyOnce.has(index) ? 'worker restarted' : 'worker ready',
        );
        readyOnce.add(index);
        if (!announced && readyOnce.size === count && m.t === 'ready') {
          announced = true;
          options.announce(m.addresses);
        }
      } else if (e.kind === 'publish_conflict') {
        log.warn(
          { stream: e.stream, worker: index },
          'stream published on a second worker at the same time; the other workers keep relaying the first',
        );
      } else if (e.kind === 'reloaded') {
        log.info({ worker: index }, 'worker reloaded its config');
      } else {
        log.error({ worker: index, err: e.error }, 'worker could not reload its config');
      }
    }
  };

  const onExit = (w: Worker, index: number, code: number | null, signal: string | null): void => {
    live.delete(w.id);
    const slot = slots[index] as Slot;
    if (slot.worker === w) slot.worker = undefined;
    const { out, sessionsDropped: dropped } = state.workerGone(w.id);
    deliver(out);
    if (stopping) {
      if (live.size === 0) finish(exitCode);
      return;
    }
    if (!announced && code === 2) {
      // A worker that cannot start (a port in use, a bad file) will not start on a retry either.
      log.fatal({ worker: index }, 'a worker could not start; stopping');
      exitCode = 2;
      stop('startup failure');
      return;
    }
    slot.crashes = Date.now() - slot.startedAt >= STABLE_MS ? 0 : slot.crashes + 1;
    const delay = restartDelay(slot.crashes - 1);
    log.error(
      { worker: index, pid: w.process.pid, code, signal, sessions_dropped: dropped, restart_in_ms: delay },
      'worker exited; starting it again',
    );
    slot.restart = setTimeout(() => fork(index), delay);
  };

  const stop = (signal: string): void => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, 'shutting down');
    for (const s of slots) if (s.restart) clearTimeout(s.restart);
    if (live.size === 0) {
      finish(exitCode);
      return;
    }
    broadcast({ t: 'shutdown' });
    const kill = setTimeout(() => {
      for (const w of live.values()) {
        log.error({ pid: w.process.pid }, 'worker did not stop in time; killing it');
        w.process.kill('SIGKILL');
      }
    }, SHUTDOWN_GRACE_MS);
    kill.unref();
  };
  process.on('SIGINT', () => stop('SIGINT'));
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGHUP', () => {
    const read = options.readConfig;
    if (!read) {
      log.warn('SIGHUP ignored: running on the embedded config, there is no file to reload');
      return;
    }
    read()
      .then((next) => {
        if (Array.isArray(next)) {
          log.error({ errors: next }, 'config reload refused; the running config stays');
          return;
        }
        if (workerCount(next) !== count) {
          log.warn(
            { running: count, configured: next.workers },
            "a changed 'workers' applies at the next start",
          );
        }
        broadcast({ t: 'reload' });
      })
      .catch((err: unknown) => log.error({ err: (err as Error).message }, 'config reload failed'));
  });

  log.info({ workers: count }, 'starting workers');
  for (let i = 0; i < count; i++) fork(i);
  return done;
}

/** `workers N | auto` as a process count; `auto` is one per CPU the process may use. */
export function workerCount(config: Pick<Config, 'workers'>, cpus: () => number = availableCpus): number {
  const w = config.workers;
  if (w === undefined) return 1;
  return w === 'auto' ? Math.max(1, cpus()) : w;
}

function availableCpus(): number {
  return os.availableParallelism();
}
