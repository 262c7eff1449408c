/**
 * Secrets key rotation in the background: once a new `SYNCBRIDGE_SECRETS_KEY` is set (the old one in
 * `SYNCBRIDGE_SECRETS_KEYS_PREVIOUS`), everything sealed under another key is re-sealed under it, so the
 * old key can be dropped. Connector secrets, webhook signing secrets and delivery bodies are re-sealed
 * row by row (store/key-rotation.ts); sealed record fields by a sealed-fields backfill pass
 * (store/sealed-backfill.ts) over each collection that still holds a value under an older key, or that
 * names `sealedFields` and has no finished pass under the current key (its compacted history cannot be
 * read without one). Batches are bounded and every rewrite is a compare-and-set, so a pass is resumable
 * and idempotent and a concurrent write always wins. Where several nodes share a database, one leads
 * (SealedRows.tryLead); the others try again every interval. It runs at start, then every interval until
 * a run finds nothing left. A failure is logged and retried; it never stops the server.
 */
import type { Logger } from 'pino';
import {
  collectionOf,
  DIRECT_KINDS,
  keyIdsIn,
  resealKind,
  SEALED_KINDS,
  type SealedKind,
  type SealedRows,
} from '../store/key-rotation.ts';
import { runSealedBackfill, type SealedBackfillStore } from '../store/sealed-backfill.ts';
import type { SecretBox } from '../store/secret-box.ts';

export interface KeyRotationDeps {
  rows: SealedRows;
  box: SecretBox;
  sealed: SealedBackfillStore;
  /** A collection's sealed fields now (its settings). */
  fieldsOf(tenant: string, collection: string): Promise<readonly string[]>;
  /** Every collection of every tenant that names `sealedFields`. */
  sealedCollections(): Promise<{ tenant: string; collection: string }[]>;
  logger: Logger;
  batchSize: number;
  intervalMs: number;
}

/** What one run did. */
export interface RotationRun {
  led: boolean;
  rewritten: number;
  passes: number;
  /** The run saw everything under the current key (nothing left for a later run). */
  complete: boolean;
}

/** The collections whose sealed fields need a backfill pass under the box's current key. */
export async function pendingPasses(
  rows: SealedRows,
  box: SecretBox,
  sealed: SealedBackfillStore,
  sealedCollections: () => Promise<{ tenant: string; collection: string }[]>,
  pageSize = 1000,
): Promise<{ tenant: string; collection: string }[]> {
  const found = new Map<string, { tenant: string; collection: string }>();
  const add = (tenant: string, collection: string) =>
    found.set(`${tenant}\u0000${collection}`, { tenant, collection });
  const fieldKinds: SealedKind[] = SEALED_KINDS.filter((k) => !DIRECT_KINDS.includes(k));
  for (const kind of fieldKinds) {
    let after: string | null = null;
    for (;;) {
      const page = await rows.page(kind, after, pageSize);
      for (const row of page) {
        const old = [...keyIdsIn(row.text)].some((id) => id !== box.sealingKeyId);
        const collection = old ? collectionOf(kind, row) : null;
        if (collection !== null) add(row.tenant, collection);
      }
      if (page.length < pageSize) break;
      after = page[page.length - 1]!.key;
    }
  }
  for (const { tenant, collection } of await sealedCollections()) {
    if (found.has(`${tenant}\u0000${collection}`)) continue;
    const progress = await sealed.readProgress(tenant, collection);
    if (!progress?.done || progress.keyId !== box.sealingKeyId) add(tenant, collection);
  }
  return [...found.values()].sort((a, b) =>
    a.tenant === b.tenant ? a.collection.localeCompare(b.collection) : a.tenant.localeCompare(b.tenant),
  );
}

export class KeyRotationJob {
  private timer: NodeJS.Timeout | null = null;
  private running: Promise<RotationRun> | null = null;
  private stopping = false;
  private complete = false;

  constructor(private readonly deps: KeyRotationDeps) {}

  start(): void {
    void this.runOnce();
    if (this.deps.intervalMs > 0) {
      this.timer = setInterval(() => {
        if (!this.complete) void this.runOnce();
      }, this.deps.intervalMs);
      this.timer.unref();
    }
  }

  /** One run (or the one in progress). */
  runOnce(): Promise<RotationRun> {
    this.running ??= this.run()
      .catch((err: unknown): RotationRun => {
        this.deps.logger.warn({ err }, 'secrets key rotation failed; it is tried again later');
        return { led: true, rewritten: 0, passes: 0, complete: false };
      })
      .finally(() => {
        this.running = null;
      });
    return this.running;
  }

  /** Stops after the batch in progress (the rotation resumes at the next start). */
  async stop(): Promise<void> {
    this.stopping = true;
    if (this.timer) clearInterval(this.timer);
    await this.running;
    await this.deps.rows.close();
  }

  private async run(): Promise<RotationRun> {
    const { rows, box, logger } = this.deps;
    // With one key configured there is nothing to re-seal (data under any other key cannot be opened):
    // no scan of the log at every start.
    if (box.keyIds.length <= 1) {
      this.complete = true;
      return { led: false, rewritten: 0, passes: 0, complete: true };
    }
    if (this.stopping || !(await rows.tryLead()))
      return { led: false, rewritten: 0, passes: 0, complete: false };
    const shouldStop = () => this.stopping;
    let rewritten = 0;
    for (const kind of DIRECT_KINDS) {
      const done = await resealKind(rows, box, kind, { batchSize: this.deps.batchSize, shouldStop });
      rewritten += done.rewritten;
      if (done.rewritten > 0)
        logger.info(
          { kind, rewritten: done.rewritten, keyId: box.sealingKeyId },
          'secrets key rotation: re-sealed',
        );
      if (done.stopped) return { led: true, rewritten, passes: 0, complete: false };
    }
    const passes = await pendingPasses(rows, box, this.deps.sealed, this.deps.sealedCollections);
    let finished = 0;
    for (const { tenant, collection } of passes) {
      if (this.stopping) break;
      const fields = await this.deps.fieldsOf(tenant, collection);
      const done = await runSealedBackfill(
        this.deps.sealed,
        box,
        { tenant, collection, fields },
        { batchSize: this.deps.batchSize, shouldStop },
      );
      if (done.done) finished += 1;
      rewritten += done.rewritten;
      logger.info(
        { tenant, collection, rewritten: done.rewritten, done: done.done, keyId: box.sealingKeyId },
        'secrets key rotation: sealed fields pass',
      );
    }
    const complete = finished === passes.length;
    this.complete = complete;
    if (complete && rewritten > 0)
      logger.info(
        { keyId: box.sealingKeyId },
        'secrets key rotation: everything is sealed under the current key',
      );
    return { led: true, rewritten, passes: passes.length, complete };
  }
}
