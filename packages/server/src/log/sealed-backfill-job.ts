/**
 * The server's sealed-fields backfill in the background: when a collection's `sealedFields` gains a
 * field (PUT /v1/collections), the collection's data stored before is re-encrypted by a pass of
 * store/sealed-backfill.ts, one collection at a time, in bounded batches that leave room for commits.
 * When the server starts it resumes every pass left unfinished (a crash, a stop), from its last batch.
 * Progress is logged; it never stops the server: a failed pass is logged and resumes at the next start.
 */
import type { Logger } from 'pino';
import { runSealedBackfill, type SealedBackfillStore } from '../store/sealed-backfill.ts';
import type { SecretBox } from '../store/secret-box.ts';

export interface SealedBackfillJobOptions {
  batchSize: number;
}

export class SealedBackfillJob {
  private readonly queue: { tenant: string; collection: string }[] = [];
  private running: Promise<void> | null = null;
  private stopping = false;

  constructor(
    private readonly store: SealedBackfillStore,
    private readonly box: SecretBox,
    /** The collection's sealed fields now (its settings). */
    private readonly fieldsOf: (tenant: string, collection: string) => Promise<readonly string[]>,
    private readonly logger: Logger,
    private readonly options: SealedBackfillJobOptions,
  ) {}

  /** Queues a pass over the collection (once, if it is already waiting). */
  request(tenant: string, collection: string): void {
    if (this.stopping) return;
    if (!this.queue.some((q) => q.tenant === tenant && q.collection === collection))
      this.queue.push({ tenant, collection });
    this.running ??= this.drain().finally(() => {
      this.running = null;
    });
  }

  /** Queues every pass a previous run of the server left unfinished. */
  async resumeUnfinished(): Promise<void> {
    try {
      for (const p of await this.store.listUnfinished()) this.request(p.tenant, p.collection);
    } catch (err) {
      this.logger.warn({ err }, 'sealed fields: could not read unfinished backfills');
    }
  }

  /** Stops after the batch in progress (the pass resumes at the next start). */
  async stop(): Promise<void> {
    this.stopping = true;
    this.queue.length = 0;
    await this.running;
  }

  private async drain(): Promise<void> {
    for (let job = this.queue.shift(); job && !this.stopping; job = this.queue.shift()) {
      const { tenant, collection } = job;
      try {
        const fields = await this.fieldsOf(tenant, collection);
        this.logger.info({ tenant, collection, fields }, 'sealed fields: backfill started');
        const done = await runSealedBackfill(
          this.store,
          this.box,
          { tenant, collection, fields },
          {
            batchSize: this.options.batchSize,
            shouldStop: () => this.stopping,
            onProgress: (p) =>
              this.logger.debug(
                { tenant, collection, stage: p.stage, scanned: p.scanned, rewritten: p.rewritten },
                'sealed fields: backfill batch',
              ),
          },
        );
        if (done.done)
          this.logger.info(
            { tenant, collection, scanned: done.scanned, rewritten: done.rewritten },
            'sealed fields: backfill finished',
          );
      } catch (err) {
        this.logger.warn(
          { err, tenant, collection },
          'sealed fields: backfill failed; it resumes at the next start',
        );
      }
    }
  }
}
