/**
 * PostgreSQL side of the sealed-fields backfill (SealedBackfillStore, see store/sealed-backfill.ts):
 * batches read from the pool, each batch's rewrites and progress in one transaction.
 */
import { type PackedRef, resolvePacked } from '../history/packing.ts';
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
  unpackQuery,
  WATERMARK_LOWER,
} from '../sealed-backfill-sql.ts';
import type { PostgresParts } from './accounts.ts';
import { chainFetch } from './history.ts';
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
    const out: BackfillRow[] = rows.map((row) => ({
      key: keyOf(row, q.keys),
      values: q.columns.map((_, i) => (row[`v${i}`] ?? null) as string | null),
    }));
    if (stage !== 'events') return out;
    // Compacted entries: their data rebuilt from the entries after them, as stored now.
    const refs: PackedRef[] = [];
    rows.forEach((row) => {
      if (row.x_packed) {
        refs.push({
          collection: row.x_collection as string,
          id: row.x_record as string,
          seq: Number(row.seq),
        });
      }
    });
    if (refs.length === 0) return out;
    const found = await resolvePacked(refs, chainFetch(this.parts.pool, tenant));
    rows.forEach((row, i) => {
      if (!row.x_packed) return;
      const data = found.get(Number(row.seq));
      if (data) out[i] = { ...out[i], values: [JSON.stringify(data), out[i].values[1]], packed: true };
    });
    return out;
  }

  async writeRows(
    stage: BackfillStage,
    tenant: string,
    changes: BackfillChange[],
    progress: BackfillProgress,
  ): Promise<number> {
    return this.parts.inTransaction('BEGIN', async (client) => {
      // The tenant's compaction watermark row, locked as a compaction batch locks it: a batch running
      // now commits before this write does, and one starting later sees this pass unfinished and stops
      // (store/sealed-backfill.ts).
      await query(
        client,
        'INSERT INTO history_compaction (tenant, seq) VALUES ($1, 0) ON CONFLICT (tenant) DO NOTHING',
        [tenant],
      );
      await query(client, 'SELECT seq FROM history_compaction WHERE tenant = $1 FOR UPDATE', [tenant]);
      let rewritten = 0;
      let lowest = Number.POSITIVE_INFINITY;
      for (const change of changes) {
        const q = change.unpack
          ? unpackQuery('postgres', tenant, change.key, change.from, change.to)
          : rewriteQuery('postgres', stage, tenant, change.key, change.from, change.to);
        const res = await client.query(q.sql, q.params);
        rewritten += res.rowCount ?? 0;
        if (change.unpack && res.rowCount) lowest = Math.min(lowest, (JSON.parse(change.key) as number[])[0]);
      }
      if (lowest !== Number.POSITIVE_INFINITY) {
        await query(client, WATERMARK_LOWER('postgres'), [lowest - 1, tenant, lowest - 1]);
      }
      const saved = { ...progress, rewritten: progress.rewritten + rewritten };
      await query(client, PROGRESS_UPSERT('postgres'), progressParams(saved));
      return rewritten;
    });
  }
}
