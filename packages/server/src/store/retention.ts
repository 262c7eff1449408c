/**
 * The retention job: on a timer, drops superseded record versions per each collection's `retention`
 * setting (`maxVersions`, `maxAgeDays`), and forgets idempotency results older than the configured
 * window. Idempotent, so several nodes may run it at once. It never drops a record's current version.
 */
import type { Logger } from 'pino';
import type { CollectionRegistry } from '../core/collections.ts';
import type { Store } from './types.ts';

const DAY_MS = 86_400_000;

export interface RetentionOptions {
  intervalMs: number;
  resultRetentionDays: number;
}

export class RetentionJob {
  private timer: NodeJS.Timeout | null = null;
  private running: Promise<unknown> | null = null;

  constructor(
    private readonly store: Store,
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

  /** One pass over every tenant; returns how many log entries and results were dropped. */
  async runOnce(now = Date.now()): Promise<{ compacted: number; pruned: number }> {
    let compacted = 0;
    for (const tenant of await this.store.listTenants()) {
      for (const [name, { settings }] of await this.collections.list(tenant, { fresh: true })) {
        const retention = settings.retention;
        if (!retention || (retention.maxVersions === undefined && retention.maxAgeDays === undefined))
          continue;
        compacted += await this.store.compactHistory(tenant, name, {
          keepVersions: retention.maxVersions ?? null,
          before:
            retention.maxAgeDays === undefined
              ? null
              : new Date(now - retention.maxAgeDays * DAY_MS).toISOString(),
        });
      }
    }
    const pruned = await this.store.pruneResults(
      new Date(now - this.options.resultRetentionDays * DAY_MS).toISOString(),
    );
    if (compacted > 0 || pruned > 0)
      this.logger.info({ compacted, pruned }, 'retention: dropped old history');
    return { compacted, pruned };
  }
}
