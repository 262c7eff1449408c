/**
 * SQLite side of the sealed-fields backfill (SealedBackfillStore, see store/sealed-backfill.ts): batches
 * read on the reader, each batch's rewrites and progress in one transaction through the writer queue,
 * with `secure_delete` on so the replaced plaintext does not linger in the file's free space.
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
import type { SqliteParts } from './accounts.ts';

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
    const db = this.parts.writer;
    return this.parts.exclusive(() => {
      // The plaintext a rewrite replaces is zeroed in the file, not left in a freed cell; once the pass
      // is done the WAL (which holds the pages as they were) is checkpointed and truncated.
      db.pragma('secure_delete = ON');
      try {
        const rewritten = db.transaction(() => {
          let n = 0;
          for (const change of changes) {
            const q = rewriteQuery('sqlite', stage, tenant, change.key, change.from, change.to);
            n += db.prepare(q.sql).run(...q.params).changes;
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
