/**
 * What the primary decides when a worker speaks: pure, so the IPC logic is tested without
 * processes. primary.ts delivers the answers and reacts to forks and exits.
 */
import type { Owner, PrimaryMessage, WorkerMessage } from './messages.js';
import { OwnerRegistry } from './owners.js';
import { SharedSessions } from './shared-sessions.js';

/** A message to deliver: to one worker, to every worker, or to every worker but `except`. */
export type Outgoing =
  { to: number; msg: PrimaryMessage } | { to: 'all'; msg: PrimaryMessage; except?: number };

/** Something primary.ts logs. */
export interface PrimaryEvent {
  kind: 'ready' | 'publish_conflict' | 'reloaded' | 'reload_failed';
  worker: number;
  stream?: string;
  error?: string;
}

interface Call {
  from: number;
  rid: number;
  waiting: Set<number>;
  values: unknown[];
}

export class PrimaryState {
  readonly owners = new OwnerRegistry();
  private readonly workers = new Set<number>();
  private readonly calls = new Map<number, Call>();
  private nextCall = 1;
  readonly shared: SharedSessions;

  constructor(now?: () => number) {
    this.shared = new SharedSessions(now);
  }

  handle(worker: number, m: WorkerMessage, events: PrimaryEvent[] = []): Outgoing[] {
    const reply = (rid: number, value: unknown): Outgoing[] => [
      { to: worker, msg: { t: 'reply', rid, value } },
    ];
    switch (m.t) {
      case 'ready':
        this.workers.add(worker);
        this.owners.workerReady(worker, m.relay);
        events.push({ kind: 'ready', worker });
        return [];
      case 'published': {
        const claim = this.owners.published(worker, m.name);
        const owner: Owner | undefined = this.owners.lookup(m.name);
        if (!claim.ok) {
          events.push({ kind: 'publish_conflict', worker, stream: m.name });
          return [];
        }
        return owner ? [{ to: 'all', except: worker, msg: { t: 'owner', name: m.name, ...owner } }] : [];
      }
      case 'unpublished':
        return this.owners.unpublished(worker, m.name)
          ? [{ to: 'all', except: worker, msg: { t: 'no_owner', name: m.name } }]
          : [];
      case 'lookup':
        return reply(m.rid, this.owners.lookup(m.name) ?? null);
      case 'register':
        return reply(m.rid, this.shared.register(worker, m.session));
      case 'unregister':
        this.shared.unregister(m.id);
        return [];
      case 'set_ban':
        this.shared.setBan(m.entry);
        return [];
      case 'get_ban':
        return reply(m.rid, this.shared.getBan(m.idKey) ?? null);
      case 'clear_ban':
        this.shared.clearBan(m.idKey);
        return [];
      case 'unique':
        // Like Redis pub/sub: every worker, the sender too, kicks its own older sessions.
        return [{ to: 'all', msg: { t: 'unique', kick: m.kick } }];
      case 'fanout': {
        const cid = this.nextCall++;
        this.calls.set(cid, { from: worker, rid: m.rid, waiting: new Set(this.workers), values: [] });
        return [...this.workers].map((w) => ({ to: w, msg: { t: 'call', cid, op: m.op, arg: m.arg } }));
      }
      case 'call_result': {
        const call = this.calls.get(m.cid);
        if (!call || !call.waiting.delete(worker)) return [];
        call.values.push(m.value);
        return call.waiting.size === 0 ? this.finish(m.cid) : [];
      }
      case 'reload_all':
        return [{ to: 'all', except: worker, msg: { t: 'reload' } }];
      case 'reloaded':
        events.push(
          m.ok
            ? { kind: 'reloaded', worker }
            : { kind: 'reload_failed', worker, ...(m.error !== undefined ? { error: m.error } : {}) },
        );
        return [];
    }
  }

  /** A worker exited: its streams lose their owner, its sessions stop counting, calls stop waiting for it. */
  workerGone(worker: number): { out: Outgoing[]; sessionsDropped: number } {
    this.workers.delete(worker);
    const out: Outgoing[] = this.owners
      .workerGone(worker)
      .map((name) => ({ to: 'all' as const, msg: { t: 'no_owner' as const, name } }));
    for (const [cid, call] of this.calls) {
      if (call.waiting.delete(worker) && call.waiting.size === 0) out.push(...this.finish(cid));
    }
    return { out, sessionsDropped: this.shared.workerGone(worker) };
  }

  /** A fan-out call's deadline passed: the caller gets the answers that came. */
  expireCall(cid: number): Outgoing[] {
    return this.calls.has(cid) ? this.finish(cid) : [];
  }

  private finish(cid: number): Outgoing[] {
    const call = this.calls.get(cid) as Call;
    this.calls.delete(cid);
    if (call.from === undefined || !this.workers.has(call.from)) return [];
    return [{ to: call.from, msg: { t: 'reply', rid: call.rid, value: call.values } }];
  }
}
