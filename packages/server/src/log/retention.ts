/**
 * The retention job: on a timer, drops superseded record versions per each collection's `retention`
 * setting (`maxVersions`, `maxAgeDays`), forgets idempotency results older than the configured window,
 * and deletes what the server's `retention` settings let expire: finished webhook deliveries (successes
 * and dead letters, with their attempts), resolved conflicts, devices not seen for long (with their
 * cursors) and cursors of device ids nobody registered. Deletions run in bounded batches, each its own
 * short transaction, so a backlog of millions never holds the writer for long. Idempotent, so several
 * nodes may run it at once. It never drops a record's current version, a domain event, a pending
 * delivery or an open conflict. A collection's branches (`<collection>@<branch>`, whose versions are
 * records and log entries of that name) are compacted by their collection's `retention`, as the
 * collection's own records are: a branch has no settings of its own.
 */
import type { Logger } from 'pino';
import { mainCollection } from '../core/branches.ts';
import type { CollectionRegistry } from '../core/collections.ts';
import type { ExpiryStore, RetentionPolicy } from '../store/types.ts';

/** The Maintenance port: what the retention job deletes through (the stores implement it). */
export interface Maintenance {
  /** Deletion of rows past their retention. */
  readonly expiry: ExpiryStore;
  /** Every tenant that has a log. */
  listTenants(): Promise<string[]>;
  /** The collections a tenant has records in (branches `c@b` included). */
  listRecordCollections(tenant: string): Promise<string[]>;
  /** Deletes superseded record versions per the policy, never a record's current one; returns how many. */
  compactHistory(tenant: string, collection: string, policy: RetentionPolicy): Promise<number>;
  /** Forgets idempotency results recorded before this ISO time; returns how many. */
  pruneResults(before: string): Promise<number>;
}

const DAY_MS = 86_400_000;

/** How long finished and idle rows are kept, in days (0: forever), and the size of one deletion batch. */
export interface ExpirySettings {
  deliveriesDays: number;
  deadLettersDays: number;
  resolvedConflictsDays: number;
  devicesUnseenDays: number;
  batchSize: number;
}

export interface RetentionOptions {
  intervalMs: number;
  resultRetentionDays: number;
  expiry: ExpirySettings;
  /** Told how many rows of a table one run deleted (the `syncbridge_retention_pruned_total` metric). */
  pruned?: (table: PrunedTable, count: number) => void;
}

export type PrunedTable =
  | 'events'
  | 'mutation_results'
  | 'webhook_deliveries'
  | 'webhook_dead_letters'
  | 'conflicts'
  | 'devices'
  | 'cursors';

export type RetentionReport = Record<PrunedTable, number>;

export class RetentionJob {
  private timer: NodeJS.Timeout | null = null;
  private running: Promise<unknown> | null = null;

  constructor(
    private readonly store: Maintenance,
    private readonly collections: CollectionRegistry,
    private readonly logger: Logger,
    private readonly options: RetentionOptions,
  ) {}

  start(): void {
    if (this.options.intervalMs <= 0) return;
    this.timer = setInterval(() => {
      this.running ??= this.runOnce()
        .catch((err: unknown) => this.logger.warn({ err }, 'retention run failed'))
        .finally(() => {
          this.running = null;
        });
    }, this.options.intervalMs);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    await this.running;
  }

  /** One pass over every tenant; returns how many rows of each table were dropped. */
  async runOnce(now = Date.now()): Promise<RetentionReport> {
    const report: RetentionReport = {
      events: 0,
      mutation_results: 0,
      webhook_deliveries: 0,
      webhook_dead_letters: 0,
      conflicts: 0,
      devices: 0,
      cursors: 0,
    };
    for (const tenant of await this.store.listTenants()) {
      let branches: Map<string, string[]> | null = null;
      for (const [name, { settings }] of await this.collections.list(tenant, { fresh: true })) {
        const retention = settings.retention;
        if (!retention || (retention.maxVersions === undefined && retention.maxAgeDays === undefined))
          continue;
        const policy = {
          keepVersions: retention.maxVersions ?? null,
          before:
            retention.maxAgeDays === undefined
              ? null
              : new Date(now - retention.maxAgeDays * DAY_MS).toISOString(),
        };
        branches ??= await this.branchesOf(tenant);
        for (const collection of [name, ...(branches.get(name) ?? [])])
          report.events += await this.store.compactHistory(tenant, collection, policy);
      }
    }
    report.mutation_results = await this.store.pruneResults(
      new Date(now - this.options.resultRetentionDays * DAY_MS).toISOString(),
    );
    const { expiry: settings } = this.options;
    const expiry = this.store.expiry;
    const cutoff = (days: number) => now - days * DAY_MS;
    const iso = (days: number) => new Date(cutoff(days)).toISOString();
    if (settings.deliveriesDays > 0) {
      report.webhook_deliveries = await this.inBatches((n) =>
        expiry.pruneDeliveries('success', cutoff(settings.deliveriesDays), n),
      );
    }
    if (settings.deadLettersDays > 0) {
      report.webhook_dead_letters = await this.inBatches((n) =>
        expiry.pruneDeliveries('failed', cutoff(settings.deadLettersDays), n),
      );
    }
    if (settings.resolvedConflictsDays > 0) {
      for (const tenant of await this.store.listTenants()) {
        report.conflicts += await this.inBatches((n) =>
          expiry.pruneResolvedConflicts(tenant, iso(settings.resolvedConflictsDays), n),
        );
      }
    }
    if (settings.devicesUnseenDays > 0) {
      report.devices = await this.inBatches((n) => expiry.pruneDevices(iso(settings.devicesUnseenDays), n));
      report.cursors = await this.inBatches((n) => expiry.pruneCursors(iso(settings.devicesUnseenDays), n));
    }
    const dropped = Object.entries(report).filter(([, n]) => n > 0);
    for (const [table, n] of dropped) this.options.pruned?.(table as PrunedTable, n);
    if (dropped.length > 0) this.logger.info(Object.fromEntries(dropped), 'retention: dropped old rows');
    return report;
  }

  /** The branch collections (`c@b`) a tenant has records in, by their collection `c`. */
  private async branchesOf(tenant: string): Promise<Map<string, string[]>> {
    const out = new Map<string, string[]>();
    for (const collection of await this.store.listRecordCollections(tenant)) {
      const main = mainCollection(collection);
      if (main === collection) continue;
      const list = out.get(main);
      if (list) list.push(collection);
      else out.set(main, [collection]);
    }
    return out;
  }

  /** Runs one bounded deletion until a batch comes back short, yielding to other work between batches. */
  private async inBatches(prune: (limit: number) => Promise<number>): Promise<number> {
    const limit = this.options.expiry.batchSize;
    let total = 0;
    for (;;) {
      const n = await prune(limit);
      total += n;
      if (n < limit) return total;
      await new Promise((resolve) => setImmediate(resolve));
    }
  }
}
