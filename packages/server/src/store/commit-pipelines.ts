/**
 * Commit pipelines per tenant, for stores that commit tenants independently (PostgreSQL): each tenant's
 * writes queue on their own and are committed in groups, one commit of that tenant in flight at a
 * time, so its seqs are assigned and heard in order; commits of different tenants run at once, at most
 * `maxInFlight` of them (the connections a node may spend on writes).
 *
 * It must never run two commits of one tenant at once, or hold a tenant's writes back for another
 * tenant's commit beyond waiting for a free slot: a slow or failing commit delays its own tenant only.
 */
import { type PendingWrite, writeSize } from './pending-writes.ts';

/** Commits one tenant's batch and settles every write in it; never rejects. */
export type CommitTenantBatch = (tenant: string, batch: PendingWrite[]) => Promise<void>;

export class CommitPipelines {
  private readonly queues = new Map<string, PendingWrite[]>();
  private readonly running = new Set<string>();
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
    if (this.running.has(tenant)) return;
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
    try {
      for (;;) {
        if ((this.queues.get(tenant)?.length ?? 0) === 0) break;
        await this.acquire();
        try {
          // Taken once a slot is free: whatever queued while waiting joins this group.
          const batch = this.take(this.queues.get(tenant)!);
          await this.commit(tenant, batch);
        } finally {
          this.release();
        }
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
