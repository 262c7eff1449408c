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
  const select = [...spec.keys, ...spec.columns.map((c, i) => `${c}${cast} AS v${i}`)].join(', ');
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
