/**
 * The history compaction job: on a timer, converts each tenant's superseded record versions to their
 * compact form (store/history/packing.ts: deltas against the next version, with keyframes) in bounded
 * batches, each its own short transaction, yielding to other work between batches. The write path does
 * none of this work: a commit stores full versions as before, and a version is compacted once it was
 * superseded at least `afterMs` ago. `syncbridge history compact` runs the same passes from the CLI,
 * with progress. Idempotent and resumable (the watermark is per tenant), so several nodes may run it.
 */
import type { Logger } from 'pino';
import type { HistoryBatch, HistoryStore } from '../store/history/types.ts';

/** What the job needs of a store. */
export interface HistorySource {
  readonly history: HistoryStore;
  listTenants(): Promise<string[]>;
}

export interface HistoryCompactionSettings {
  /** How often the job runs (0: never; the CLI command still converts). */
  intervalMs: number;
  /** Versions superseded less than this long ago stay full. */
  afterMs: number;
  /** Log entries looked at per batch (one transaction). */
  batchSize: number;
}

export interface HistoryProgress {
  tenant: string;
  batches: number;
  scanned: number;
  packed: number;
  bytesBefore: number;
  bytesAfter: number;
  watermark: number;
}

/** Compacts one tenant until nothing is left before the cutoff; reports after every batch. */
export async function compactTenant(
  store: HistorySource,
  tenant: string,
  options: { batchSize: number; before: string; progress?: (p: HistoryProgress) => void },
): Promise<HistoryProgress> {
  const total: HistoryProgress = {
    tenant,
    batches: 0,
    scanned: 0,
    packed: 0,
    bytesBefore: 0,
    bytesAfter: 0,
    watermark: 0,
  };
  for (;;) {
    const batch: HistoryBatch = await store.history.compactBatch(tenant, {
      limit: options.batchSize,
      before: options.before,
    });
    total.batches++;
    total.scanned += batch.scanned;
    total.packed += batch.packed;
    total.bytesBefore += batch.bytesBefore;
    total.bytesAfter += batch.bytesAfter;
    total.watermark = batch.watermark;
    options.progress?.({ ...total });
    if (batch.done || batch.scanned === 0) return total;
    await new Promise((resolve) => setImmediate(resolve));
  }
}

export class HistoryCompactionJob {
  private timer: NodeJS.Timeout | null = null;
  private running: Promise<unknown> | null = null;
  private stopped = false;

  constructor(
    private readonly store: HistorySource,
    private readonly logger: Logger,
    private readonly settings: HistoryCompactionSettings,
  ) {}

  start(): void {
    if (this.settings.intervalMs <= 0) return;
    this.timer = setInterval(() => {
      this.running ??= this.runOnce()
        .catch((err: unknown) => this.logger.warn({ err }, 'history compaction failed'))
        .finally(() => {
          this.running = null;
        });
    }, this.settings.intervalMs);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    await this.running;
  }

  /** One pass over every tenant; returns what it compacted per tenant that had work. */
  async runOnce(now = Date.now()): Promise<HistoryProgress[]> {
    const before = new Date(now - this.settings.afterMs).toISOString();
    const done: HistoryProgress[] = [];
    for (const tenant of await this.store.listTenants()) {
      if (this.stopped) break;
      const result = await compactTenant(this.store, tenant, { batchSize: this.settings.batchSize, before });
      if (result.packed === 0) continue;
      done.push(result);
      this.logger.info(
        {
          tenant,
          packed: result.packed,
          batches: result.batches,
          bytesBefore: result.bytesBefore,
          bytesAfter: result.bytesAfter,
        },
        'history compaction: superseded versions compacted',
      );
    }
    return done;
  }
}
