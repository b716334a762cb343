/**
 * The primary's registry of who owns which stream (`workers N`): the worker a publisher
 * landed on, or the worker that runs a static stream's pulled input. One owner per name; a
 * second worker announcing the same name while the first still owns it is refused (the
 * single-process rule "one publisher per stream", held across workers). Pure: primary.ts
 * feeds it the workers' messages and exits.
 */
import type { Owner, RelayAddress } from './messages.js';

export type Claim = { ok: true } | { ok: false; owner: number };

export class OwnerRegistry {
  private readonly owners = new Map<string, number>();
  private readonly relays = new Map<number, RelayAddress>();

  /** A worker is up and serves relays at `relay`. */
  workerReady(worker: number, relay: RelayAddress): void {
    this.relays.set(worker, relay);
  }

  published(worker: number, name: string): Claim {
    const current = this.owners.get(name);
    if (current !== undefined && current !== worker) return { ok: false, owner: current };
    this.owners.set(name, worker);
    return { ok: true };
  }

  /** Returns whether the name lost its owner (only the owner can give it up). */
  unpublished(worker: number, name: string): boolean {
    if (this.owners.get(name) !== worker) return false;
    this.owners.delete(name);
    return true;
  }

  lookup(name: string): Owner | undefined {
    const worker = this.owners.get(name);
    if (worker === undefined) return undefined;
    const relay = this.relays.get(worker);
    return relay ? { worker, relay } : undefined;
  }

  /** A worker exited: the names it owned, which now have no owner. */
  workerGone(worker: number): string[] {
    this.relays.delete(worker);
    const lost: string[] = [];
    for (const [name, w] of this.owners) {
      if (w === worker) {
        this.owners.delete(name);
        lost.push(name);
      }
    }
    return lost;
  }

  names(): string[] {
    return [...this.owners.keys()];
  }
}
