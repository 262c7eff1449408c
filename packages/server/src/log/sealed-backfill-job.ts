/**
 * The server's sealed-fields backfill in the background: when a collection's `sealedFields` gains a
 * field (PUT /v1/collections), the collection's data stored before is re-encrypted by a pass of
 * store/sealed-backfill.ts, one collection at a time, in bounded batches that leave room for commits.
 * When the server starts it resumes every pass left unfinished (a crash, a stop), from its last batch.
 * Progress is logged; it never stops the server: a failed pass is logged and resumes at the next start.
 * A pass the CLI left unfinished resumes as it was: a collection's own stages only, or the tenant-wide
 * pass (`*`, store/sealed-backfill-tenant.ts) with the fields it was started with.
 */
import type { Logger } from 'pino';
import {
  type BackfillJob,
  runSealedBackfill,
  type SealedBackfillStore,
  TENANT_WIDE,
} from '../store/sealed-backfill.ts';
import type { SecretBox } from '../store/secret-box.ts';

export interface SealedBackfillJobOptions {
  batchSize: number;
}

export class SealedBackfillJob {
  private readonly queue: { tenant: string; collection: string }[] = [];
  private running: Promise<void> | null = null;
  private current: { tenant: string; collection: string } | null = null;
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

  /** Whether a pass over the collection runs now, waits its turn, or neither. */
  activity(tenant: string, collection: string): 'running' | 'queued' | null {
    if (this.current?.tenant === tenant && this.current.collection === collection) return 'running';
    return this.queue.some((q) => q.tenant === tenant && q.collection === collection) ? 'queued' : null;
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
      this.current = job;
      try {
        const pass = await this.passOf(tenant, collection);
        if (!pass) continue;
        const { fields } = pass;
        this.logger.info({ tenant, collection, fields }, 'sealed fields: backfill started');
        const done = await runSealedBackfill(this.store, this.box, pass, {
          batchSize: this.options.batchSize,
          shouldStop: () => this.stopping,
          onProgress: (p) =>
            this.logger.debug(
              { tenant, collection, stage: p.stage, scanned: p.scanned, rewritten: p.rewritten },
              'sealed fields: backfill batch',
            ),
        });
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
      } finally {
        this.current = null;
      }
    }
  }

  /**
   * The pass to run: with the collection's fields now; an unfinished pass of the same fields that
   * walks some stages only (the CLI's) goes on as it was. The tenant-wide pass only resumes (null when
   * it is done).
   */
  private async passOf(tenant: string, collection: string): Promise<BackfillJob | null> {
    const prior = await this.store.readProgress(tenant, collection);
    const unfinished = prior && !prior.done ? prior : null;
    if (collection === TENANT_WIDE) {
      if (!unfinished?.collections) return null;
      const { stages, collections } = unfinished;
      return { tenant, collection, fields: [], collections, ...(stages ? { stages } : {}) };
    }
    const fields = await this.fieldsOf(tenant, collection);
    const same =
      unfinished?.stages !== undefined &&
      unfinished.fields.length === fields.length &&
      fields.every((f) => unfinished.fields.includes(f));
    return { tenant, collection, fields, ...(same ? { stages: unfinished.stages } : {}) };
  }
}
