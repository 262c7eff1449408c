/**
 * The server's background maintenance, started and stopped together: retention (log/retention.ts), the
 * sealed-fields backfill (log/sealed-backfill-job.ts, only with a secrets key: without one nothing can be
 * sealed), the secrets key rotation (log/key-rotation-job.ts, likewise) and history compaction
 * (log/history-compaction.ts). Each works in bounded batches and never
 * stops the server; this only wires them to the server's lifecycle.
 */
import type { Logger } from 'pino';
import type { CollectionRegistry } from '../core/collections.ts';
import type { SealedRows } from '../store/key-rotation.ts';
import type { SealedBackfillStore } from '../store/sealed-backfill.ts';
import type { SecretBox } from '../store/secret-box.ts';
import { HistoryCompactionJob, type HistoryCompactionSettings } from './history-compaction.ts';
import { KeyRotationJob } from './key-rotation-job.ts';
import { RetentionJob } from './retention.ts';
import { SealedBackfillJob } from './sealed-backfill-job.ts';

export interface MaintenanceJobsParts {
  retention: ConstructorParameters<typeof RetentionJob>[0];
  retentionOptions: ConstructorParameters<typeof RetentionJob>[3];
  history: ConstructorParameters<typeof HistoryCompactionJob>[0];
  historySettings: HistoryCompactionSettings;
  sealed: SealedBackfillStore;
  secretBox: SecretBox | null;
  collections: CollectionRegistry;
  logger: Logger;
  /** The rows key rotation re-seals (startup/key-rotation.ts; null without a secrets key). */
  keyRotation?: {
    rows: SealedRows | null;
    sealedCollections(): Promise<{ tenant: string; collection: string }[]>;
  };
}

export class MaintenanceJobs {
  readonly retention: RetentionJob;
  /** Null without a secrets key. */
  readonly sealedBackfill: SealedBackfillJob | null;
  readonly historyCompaction: HistoryCompactionJob;
  /** Null without a secrets key. */
  readonly keyRotation: KeyRotationJob | null;

  constructor(parts: MaintenanceJobsParts) {
    const { collections, logger } = parts;
    this.retention = new RetentionJob(
      parts.retention,
      collections,
      logger.child({ component: 'retention' }),
      parts.retentionOptions,
    );
    // A field added to a collection's sealedFields: what was stored before is sealed in the background.
    this.sealedBackfill = parts.secretBox
      ? new SealedBackfillJob(
          parts.sealed,
          parts.secretBox,
          async (tenant, collection) =>
            (await collections.get(tenant, collection)).settings.sealedFields ?? [],
          logger.child({ component: 'sealed-backfill' }),
          { batchSize: parts.retentionOptions.expiry.batchSize },
        )
      : null;
    const rotation = parts.keyRotation;
    // Everything sealed under an older key is re-sealed under the current one, so the old key may go.
    this.keyRotation =
      parts.secretBox && rotation?.rows
        ? new KeyRotationJob({
            rows: rotation.rows,
            box: parts.secretBox,
            sealed: parts.sealed,
            fieldsOf: async (tenant, collection) =>
              (await collections.get(tenant, collection)).settings.sealedFields ?? [],
            sealedCollections: rotation.sealedCollections,
            logger: logger.child({ component: 'key-rotation' }),
            batchSize: parts.retentionOptions.expiry.batchSize,
            intervalMs: parts.retentionOptions.intervalMs,
          })
        : null;
    this.historyCompaction = new HistoryCompactionJob(
      parts.history,
      logger.child({ component: 'history' }),
      parts.historySettings,
    );
  }

  start(): void {
    this.retention.start();
    void this.sealedBackfill?.resumeUnfinished();
    this.keyRotation?.start();
    this.historyCompaction.start();
  }

  async stop(): Promise<void> {
    await this.retention.stop();
    await this.sealedBackfill?.stop();
    await this.keyRotation?.stop();
    await this.historyCompaction.stop();
  }
}
