/**
 * The IPC vocabulary between the primary and its workers (`workers N`, src/cluster/). Node's
 * cluster channel carries JSON; every message has a `t` (type) and requests carry an `rid`
 * the reply repeats. Nothing here touches a socket: primary.ts and worker.ts do.
 */
import type { SessionKind } from '../core/proto.js';
import type { BanEntry } from '../sessions/store.js';
import type { ClusterSession, UniqueKick } from '../sessions/cluster.js';

/** Where a worker serves the streams it owns to the other workers (relay.ts). */
export interface RelayAddress {
  host: string;
  port: number;
}

export type WorkerMessage =
  | { t: 'ready'; addresses: Record<string, { host: string; port: number }>; relay: RelayAddress }
  | { t: 'published'; name: string }
  | { t: 'unpublished'; name: string }
  | { t: 'lookup'; rid: number; name: string }
  | { t: 'register'; rid: number; session: ClusterSession }
  | { t: 'unregister'; id: string }
  | { t: 'set_ban'; entry: BanEntry }
  | { t: 'get_ban'; rid: number; idKey: string }
  | { t: 'clear_ban'; idKey: string }
  | { t: 'unique'; kick: UniqueKick }
  | { t: 'reloaded'; ok: boolean; error?: string }
  /** The admin API reloaded this worker's config: the others reload too. */
  | { t: 'reload_all' }
  /** Run a session-API operation in every worker; the reply is each worker's answer. */
  | { t: 'fanout'; rid: number; op: ApiOp; arg: ApiArg }
  | { t: 'call_result'; cid: number; value: unknown };

export type PrimaryMessage =
  | { t: 'reply'; rid: number; value: unknown }
  /** A stream got an owner (broadcast): workers that hold the stream start relaying it. */
  | { t: 'owner'; name: string; worker: number; relay: RelayAddress }
  | { t: 'no_owner'; name: string }
  | { t: 'unique'; kick: UniqueKick }
  | { t: 'reload' }
  | { t: 'shutdown' }
  | { t: 'call'; cid: number; op: ApiOp; arg: ApiArg };

/** The session-API operations that span workers (api.ts). */
export type ApiOp = 'list' | 'get' | 'kick' | 'reauth' | 'bans' | 'unban';
export type ApiArg = string | { name?: string; userId?: string; proto?: string } | null;

/** An owner as a lookup answers it; `undefined` when nobody publishes the name. */
export interface Owner {
  worker: number;
  relay: RelayAddress;
}

const WORKER_TYPES = new Set([
  'ready',
  'published',
  'unpublished',
  'lookup',
  'register',
  'unregister',
  'set_ban',
  'get_ban',
  'clear_ban',
  'unique',
  'reloaded',
  'reload_all',
  'fanout',
  'call_result',
]);

/** Messages on the cluster channel may come from Node itself (internal ones) too: only ours pass. */
export function isWorkerMessage(m: unknown): m is WorkerMessage {
  return typeof m === 'object' && m !== null && WORKER_TYPES.has((m as { t?: unknown }).t as string);
}

export function isPrimaryMessage(m: unknown): m is PrimaryMessage {
  const t = typeof m === 'object' && m !== null ? (m as { t?: unknown }).t : undefined;
  return (
    t === 'reply' ||
    t === 'owner' ||
    t === 'no_owner' ||
    t === 'unique' ||
    t === 'reload' ||
    t === 'shutdown' ||
    t === 'call'
  );
}

export type { SessionKind };
