/**
 * The SQL of the sealed-fields backfill (sealed-backfill.ts), for both drivers: which table and columns
 * each stage walks, the keyset-paged read of a batch, the compare-and-set rewrite of one row (it changes
 * nothing when the row no longer holds what was read), and the progress table `sealed_backfills`.
 * Keys travel as JSON arrays of the row's key columns. PostgreSQL's JSON columns are read as text and
 * written back as jsonb.
 */
import type { BackfillProgress, BackfillStage } from './sealed-backfill.ts';

export type Dialect = 'sqlite' | 'postgres';

interface StageSpec {
  table: string;
  keys: string[];
  columns: string[];
  /** Columns of type jsonb on PostgreSQL. */
  jsonb: boolean;
  /** `collection`: the collection's rows and its branches' (`c@b`); `tenant`: every row of the tenant. */
  scope: 'collection' | 'tenant';
  where?: string;
  /** More columns read (not rewritten), as they are named. */
  extra?: string[];
}

const STAGES: Record<BackfillStage, StageSpec> = {
  records: {
    table: 'records',
    keys: ['collection', 'id'],
    columns: ['data'],
    jsonb: true,
    scope: 'collection',
  },
  events: {
    table: 'events',
    keys: ['seq'],
    columns: ['data', 'previous'],
    jsonb: true,
    scope: 'collection',
    where: "kind = 'record'",
    // A compacted entry (compact history): its record, to rebuild its data before it is sealed.
    extra: ['collection AS x_collection', 'record_id AS x_record', 'packed IS NOT NULL AS x_packed'],
  },
  conflicts: { table: 'conflicts', keys: ['id'], columns: ['doc'], jsonb: true, scope: 'collection' },
  branches: {
    table: 'record_branches',
    keys: ['collection', 'record_id', 'name'],
    columns: ['fork_data'],
    jsonb: true,
    scope: 'collection',
  },
  results: { table: 'mutation_results', keys: ['key'], columns: ['result'], jsonb: true, scope: 'tenant' },
  deliveries: { table: 'webhook_deliveries', keys: ['id'], columns: ['body'], jsonb: false, scope: 'tenant' },
  webhooks: { table: 'webhooks', keys: ['id'], columns: ['secrets'], jsonb: true, scope: 'tenant' },
};

/** Numbers `?` placeholders as `$1, $2, …` for PostgreSQL. */
function placeholders(sql: string, dialect: Dialect): string {
  if (dialect === 'sqlite') return sql;
  let n = 0;
  return sql.replace(/\?/g, () => `$${++n}`);
}

export interface BatchQuery {
  sql: string;
  params: unknown[];
  /** The stage's key columns and value columns, as the rows carry them. */
  keys: string[];
  columns: string[];
}

/** The read of up to `limit` rows of `stage` after `after` (a key as JSON), in key order. */
export function batchQuery(
  dialect: Dialect,
  stage: BackfillStage,
  tenant: string,
  collection: string,
  after: string | null,
  limit: number,
): BatchQuery {
  const spec = STAGES[stage];
  const cast = dialect === 'postgres' && spec.jsonb ? '::text' : '';
  const select = [
    ...spec.keys,
    ...spec.columns.map((c, i) => `${c}${cast} AS v${i}`),
    ...(spec.extra ?? []),
  ].join(', ');
  const where = ['tenant = ?'];
  const params: unknown[] = [tenant];
  if (spec.scope === 'collection') {
    where.push('(collection = ? OR substr(collection, 1, ?) = ?)');
    params.push(collection, collection.length + 1, `${collection}@`);
  }
  if (spec.where) where.push(spec.where);
  if (after !== null) {
    const values = JSON.parse(after) as unknown[];
    where.push(`(${spec.keys.join(', ')}) > (${spec.keys.map(() => '?').join(', ')})`);
    params.push(...values);
  }
  params.push(limit);
  const sql = `SELECT ${select} FROM ${spec.table} WHERE ${where.join(' AND ')} ORDER BY ${spec.keys.join(', ')} LIMIT ?`;
  return { sql: placeholders(sql, dialect), params, keys: spec.keys, columns: spec.columns };
}

/** The rewrite of one row: its new texts, where the row still holds `from`. */
export function rewriteQuery(
  dialect: Dialect,
  stage: BackfillStage,
  tenant: string,
  key: string,
  from: (string | null)[],
  to: (string | null)[],
): { sql: string; params: unknown[] } {
  const spec = STAGES[stage];
  const cast = dialect === 'postgres' && spec.jsonb ? '::jsonb' : '';
  const same = dialect === 'postgres' ? 'IS NOT DISTINCT FROM' : 'IS';
  const set = spec.columns.map((c) => `${c} = ?${cast}`).join(', ');
  const where = [
    'tenant = ?',
    ...spec.keys.map((k) => `${k} = ?`),
    ...spec.columns.map((c) => `${c} ${same} ?${cast}`),
  ];
  const sql = `UPDATE ${spec.table} SET ${set} WHERE ${where.join(' AND ')}`;
  return {
    sql: placeholders(sql, dialect),
    params: [...to, tenant, ...(JSON.parse(key) as unknown[]), ...from],
  };
}

/**
 * The rewrite of a compacted log entry (events stage) back to full data, sealed: `data` set, `packed`
 * cleared, where the row is still compacted and its `previous` is still as read.
 */
export function unpackQuery(
  dialect: Dialect,
  tenant: string,
  key: string,
  from: (string | null)[],
  to: (string | null)[],
): { sql: string; params: unknown[] } {
  const cast = dialect === 'postgres' ? '::jsonb' : '';
  const same = dialect === 'postgres' ? 'IS NOT DISTINCT FROM' : 'IS';
  const sql = `UPDATE events SET data = ?${cast}, previous = ?${cast}, packed = NULL
    WHERE tenant = ? AND seq = ? AND data IS NULL AND packed IS NOT NULL AND previous ${same} ?${cast}`;
  return {
    sql: placeholders(sql, dialect),
    params: [to[0], to[1], tenant, ...(JSON.parse(key) as unknown[]), from[1]],
  };
}

/**
 * Lowers a tenant's history compaction watermark to just before `seq` (the lowest entry a batch
 * unpacked), so the compaction job compacts those entries again, in their sealed form.
 */
export const WATERMARK_LOWER = (dialect: Dialect) =>
  placeholders('UPDATE history_compaction SET seq = ? WHERE tenant = ? AND seq > ?', dialect);

/** Whether a tenant has an unfinished backfill: the history compaction job waits for it to finish. */
export const UNFINISHED_OF_TENANT = (dialect: Dialect) =>
  placeholders('SELECT 1 AS one FROM sealed_backfills WHERE tenant = ? AND done = 0 LIMIT 1', dialect);

/** A read row's key as JSON, from its key columns. */
export function keyOf(row: Record<string, unknown>, keys: readonly string[]): string {
  return JSON.stringify(keys.map((k) => (typeof row[k] === 'bigint' ? Number(row[k]) : row[k])));
}

export const PROGRESS_UPSERT = (dialect: Dialect) =>
  placeholders(
    `INSERT INTO sealed_backfills (tenant, collection, doc, done, updated_at) VALUES (?, ?, ?, ?, ?)
     ON CONFLICT (tenant, collection) DO UPDATE SET doc = excluded.doc, done = excluded.done,
       updated_at = excluded.updated_at`,
    dialect,
  );

export const PROGRESS_READ = (dialect: Dialect) =>
  placeholders('SELECT doc FROM sealed_backfills WHERE tenant = ? AND collection = ?', dialect);

export const PROGRESS_UNFINISHED = 'SELECT doc FROM sealed_backfills WHERE done = 0 ORDER BY updated_at';

/** The progress row's parameters. */
export function progressParams(p: BackfillProgress): unknown[] {
  return [p.tenant, p.collection, JSON.stringify(p), p.done ? 1 : 0, p.updatedAt];
}
