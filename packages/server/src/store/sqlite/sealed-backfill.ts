/**
 * SQLite side of the sealed-fields backfill (SealedBackfillStore, see store/sealed-backfill.ts): batches
 * read on the reader, each batch's rewrites and progress in one transaction through the writer queue,
 * with `secure_delete` on so the replaced plaintext does not linger in the file's free space.
 */
import { type ChainRow, type PackedRef, resolvePacked } from '../history/packing.ts';
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
import type { SqliteParts } from './accounts.ts';
import { CHAIN_SQL } from './history.ts';

export class SqliteSealedBackfill implements SealedBackfillStore {
  constructor(private readonly parts: SqliteParts) {}

  async readProgress(tenant: string, collection: string): Promise<BackfillProgress | null> {
    const row = this.parts.reader
      .prepare<[string, string], { doc: string }>(PROGRESS_READ('sqlite'))
      .get(tenant, collection);
    return row ? (JSON.parse(row.doc) as BackfillProgress) : null;
  }

  async listUnfinished(): Promise<BackfillProgress[]> {
    return this.parts.reader
      .prepare<[], { doc: string }>(PROGRESS_UNFINISHED)
      .all()
      .map((r) => JSON.parse(r.doc) as BackfillProgress);
  }

  async readRows(
    stage: BackfillStage,
    tenant: string,
    collection: string,
    after: string | null,
    limit: number,
  ): Promise<BackfillRow[]> {
    const q = batchQuery('sqlite', stage, tenant, collection, after, limit);
    const rows = this.parts.reader.prepare(q.sql).all(...q.params) as Record<string, unknown>[];
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
    const chain = this.parts.reader.prepare<unknown[], ChainRow>(CHAIN_SQL);
    const found = await resolvePacked(refs, (c, id, fromSeq, limit) =>
      chain.all(tenant, c, id, fromSeq, limit),
    );
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
    const db = this.parts.writer;
    return this.parts.exclusive(() => {
      // The plaintext a rewrite replaces is zeroed in the file, not left in a freed cell; once the pass
      // is done the WAL (which holds the pages as they were) is checkpointed and truncated.
      db.pragma('secure_delete = ON');
      try {
        const rewritten = db.transaction(() => {
          let n = 0;
          let lowest = Number.POSITIVE_INFINITY;
          for (const change of changes) {
            const q = change.unpack
              ? unpackQuery('sqlite', tenant, change.key, change.from, change.to)
              : rewriteQuery('sqlite', stage, tenant, change.key, change.from, change.to);
            const done = db.prepare(q.sql).run(...q.params).changes;
            n += done;
            if (change.unpack && done > 0) lowest = Math.min(lowest, (JSON.parse(change.key) as number[])[0]);
          }
          if (lowest !== Number.POSITIVE_INFINITY) {
            db.prepare(WATERMARK_LOWER('sqlite')).run(lowest - 1, tenant, lowest - 1);
          }
          const saved = { ...progress, rewritten: progress.rewritten + n };
          db.prepare(PROGRESS_UPSERT('sqlite')).run(...progressParams(saved));
          return n;
        })();
        if (progress.done) db.pragma('wal_checkpoint(TRUNCATE)');
        return rewritten;
      } finally {
        db.pragma('secure_delete = OFF');
      }
    });
  }
}
