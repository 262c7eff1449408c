/**
 * Commit pipelines per tenant, for stores that commit tenants independently (PostgreSQL): each tenant's
 * writes queue on their own and are committed in groups, in order: a group is computed once the one
 * before it is on its way (at most two of a tenant in flight; the store checks the earlier one
 * committed) and settles after it, so its seqs are assigned and heard in order; commits of different
 * tenants run at once, at most `maxInFlight` of them (the connections a node may spend on writes).
 *
 * It must never run two commits of one tenant at once, or hold a tenant's writes back for another
 * tenant's commit beyond waiting for a free slot: a slow or failing commit delays its own tenant only.
 */

import type { CommitPipeline } from '../store/types.ts';
import { type PendingWrite, writeSize } from './pending-writes.ts';

/** Commits one tenant's batch and settles every write in it (after `pipeline.after`); never rejects. */
export type CommitTenantBatch = (
  tenant: string,
  batch: PendingWrite[],
  pipeline: CommitPipeline,
) => Promise<void>;

/** Commits of one tenant in flight at once: the next is computed while the last one's round trip runs. */
const DEPTH = 2;

export class CommitPipelines {
  private readonly queues = new Map<string, PendingWrite[]>();
  private readonly running = new Set<string>();
  /** Wakes a tenant's pipeline that waits, its queue empty, for a write or its commits to settle. */
  private readonly wakers = new Map<string, () => void>();
  private inFlight = 0;
  private readonly slots: Array<() => void> = [];
  private idle: Array<() => void> = [];

  constructor(
    private readonly commit: CommitTenantBatch,
    private readonly maxBatch: number,
    private readonly maxInFlight: number,
  ) {}

  push(write: PendingWrite): void {
    const tenant = write.principal.tenant;
    const queue = this.queues.get(tenant);
    if (queue) queue.push(write);
    else this.queues.set(tenant, [write]);
    if (this.running.has(tenant)) {
      this.wakers.get(tenant)?.();
      return;
    }
    this.running.add(tenant);
    // The rest of this turn's writes join the first group.
    setImmediate(() => void this.run(tenant));
  }

  /** Resolves once every write pushed so far has been committed or failed. */
  drain(): Promise<void> {
    if (this.running.size === 0) return Promise.resolve();
    return new Promise((resolve) => this.idle.push(resolve));
  }

  private async run(tenant: string): Promise<void> {
    let previous: Promise<unknown> = Promise.resolve();
    const pending: Promise<void>[] = [];
    try {
      for (;;) {
        if ((this.queues.get(tenant)?.length ?? 0) === 0) {
          // Writes that arrive while the last commits are in flight start the next group.
          let settled = false;
          await Promise.race([
            previous.then(() => {
              settled = true;
            }),
            new Promise<void>((resolve) => this.wakers.set(tenant, resolve)),
          ]);
          this.wakers.delete(tenant);
          if (settled && (this.queues.get(tenant)?.length ?? 0) === 0) break;
          if ((this.queues.get(tenant)?.length ?? 0) === 0) continue;
        }
        if (pending.length >= DEPTH) await pending[0];
        await this.acquire();
        // Taken once a slot is free: whatever queued while waiting joins this group.
        const batch = this.take(this.queues.get(tenant)!);
        let prepared = () => {};
        const ready = new Promise<void>((resolve) => {
          prepared = resolve;
        });
        const done: Promise<void> = this.commit(tenant, batch, { prepared, after: previous }).finally(() => {
          this.release();
          pending.splice(pending.indexOf(done), 1);
        });
        pending.push(done);
        previous = done;
        // The next group may start once this one no longer needs the tenant's state to itself.
        await Promise.race([ready, done]);
      }
    } catch (err) {
      // Not reached (commit settles its writes and never rejects); if it were, nothing is left waiting.
      for (const write of this.queues.get(tenant) ?? []) write.reject(err);
    } finally {
      this.queues.delete(tenant);
      this.running.delete(tenant);
      if (this.running.size === 0) {
        const waiting = this.idle;
        this.idle = [];
        for (const resolve of waiting) resolve();
      }
    }
  }

  private take(queue: PendingWrite[]): PendingWrite[] {
    let size = 0;
    let n = 0;
    while (n < queue.length && (n === 0 || size < this.maxBatch)) {
      size += writeSize(queue[n]!);
      n += 1;
    }
    return queue.splice(0, n);
  }

  private acquire(): Promise<void> {
    if (this.inFlight < this.maxInFlight) {
      this.inFlight += 1;
      return Promise.resolve();
    }
    return new Promise((resolve) => this.slots.push(resolve));
  }

  /** Hands the slot to the longest waiting tenant, or frees it. */
  private release(): void {
    const next = this.slots.shift();
    if (next) next();
    else this.inFlight -= 1;
  }
}
