/**
 * The HistoryStore contract: converting a tenant's superseded record versions to their compact form
 * (store/history/packing.ts) in bounded batches. Each batch is one short transaction and moves the
 * tenant's watermark (`history_compaction`, migration 17): every record log entry at or below it whose
 * version was superseded before the batch's cutoff is compacted. Reads rebuild compacted versions
 * transparently; the stores do that in their event and version reads. `readVersion` is one record's
 * entry at one version, looked up on the record's index (not a page of the log), rebuilt when packed.
 */
import type { LogEvent } from '@syncbridge/protocol';

export interface HistoryBatchOptions {
  /** At most this many log entries are looked at. */
  limit: number;
  /** Versions superseded at or after this ISO time stay full (recent history is read most). */
  before: string;
}

export interface HistoryBatch {
  /** Log entries the watermark moved over. */
  scanned: number;
  /** Versions that became compact. */
  packed: number;
  /** Bytes of their data before and after (JSON text; the packed form). */
  bytesBefore: number;
  bytesAfter: number;
  /** The tenant's watermark after the batch. */
  watermark: number;
  /** Nothing more to compact before the cutoff (the batch came back short or reached it). */
  done: boolean;
}

export interface HistoryStore {
  compactBatch(tenant: string, options: HistoryBatchOptions): Promise<HistoryBatch>;
  /** The tenant's watermark (0: nothing compacted yet). */
  watermark(tenant: string): Promise<number>;
  /**
   * The record's log entry at `version` (its data rebuilt when compacted), or null when the log keeps
   * none (never written, or removed by retention).
   */
  readVersion(tenant: string, collection: string, id: string, version: number): Promise<LogEvent | null>;
}
