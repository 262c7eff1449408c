/**
 * PostgreSQL side of the sealed-fields backfill (SealedBackfillStore, see store/sealed-backfill.ts):
 * batches read from the pool, each batch's rewrites and progress in one transaction.
 */
import type {
  BackfillChange,
  BackfillProgress,
  BackfillRow,
  BackfillStage,
  SealedBackfillStore,
} from '../sealed-backfill.ts';
import {
  batchQuery,
  keyOf,
  PROGRESS_READ,
  PROGRESS_UNFINISHED,
  PROGRESS_UPSERT,
  progressParams,
  rewriteQuery,
} from '../sealed-backfill-sql.ts';
import type { PostgresParts } from './accounts.ts';
import { query } from './pool.ts';

export class PostgresSealedBackfill implements SealedBackfillStore {
  constructor(private readonly parts: PostgresParts) {}

  async readProgress(tenant: string, collection: string): Promise<BackfillProgress | null> {
    const rows = await query<{ doc: string }>(this.parts.pool, PROGRESS_READ('postgres'), [
      tenant,
      collection,
    ]);
    return rows[0] ? (JSON.parse(rows[0].doc) as BackfillProgress) : null;
  }

  async listUnfinished(): Promise<BackfillProgress[]> {
    const rows = await query<{ doc: string }>(this.parts.pool, PROGRESS_UNFINISHED);
    return rows.map((r) => JSON.parse(r.doc) as BackfillProgress);
  }

  async readRows(
    stage: BackfillStage,
    tenant: string,
    collection: string,
    after: string | null,
    limit: number,
  ): Promise<BackfillRow[]> {
    const q = batchQuery('postgres', stage, tenant, collection, after, limit);
    const rows = await query<Record<string, unknown>>(this.parts.pool, q.sql, q.params);
    return rows.map((row) => ({
      key: keyOf(row, q.keys),
      values: q.columns.map((_, i) => (row[`v${i}`] ?? null) as string | null),
    }));
  }

  async writeRows(
    stage: BackfillStage,
    tenant: string,
    changes: BackfillChange[],
    progress: BackfillProgress,
  ): Promise<number> {
    return this.parts.inTransaction('BEGIN', async (client) => {
      let rewritten = 0;
      for (const change of changes) {
        const q = rewriteQuery('postgres', stage, tenant, change.key, change.from, change.to);
        const res = await client.query(q.sql, q.params);
        rewritten += res.rowCount ?? 0;
      }
      const saved = { ...progress, rewritten: progress.rewritten + rewritten };
      await query(client, PROGRESS_UPSERT('postgres'), progressParams(saved));
      return rewritten;
    });
  }
}
