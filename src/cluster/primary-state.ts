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

export class PrimaryState {
  readonly owners = new OwnerRegistry();
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

  /** A worker exited: its streams lose their owner and its sessions stop counting. */
  workerGone(worker: number): { out: Outgoing[]; sessionsDropped: number } {
    const out: Outgoing[] = this.owners
      .workerGone(worker)
      .map((name) => ({ to: 'all' as const, msg: { t: 'no_owner' as const, name } }));
    return { out, sessionsDropped: this.shared.workerGone(worker) };
  }
}
