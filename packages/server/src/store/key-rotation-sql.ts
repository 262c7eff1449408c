/**
 * The SQL of key rotation (store/key-rotation.ts), for both drivers: for each kind, its table, key
 * columns and sealed column(s), the keyset-paged read of the rows holding a sealed value, and the
 * compare-and-set rewrite of one row's sealed column (nothing changes when the row no longer holds what
 * was read). PostgreSQL's JSON columns are read as text and written back as jsonb.
 */
import type { SealedKind } from './key-rotation.ts';

export type Dialect = 'sqlite' | 'postgres';

interface KindSpec {
  table: string;
  keys: string[];
  /** The sealed column(s); several are read as one text (events: data and previous). */
  columns: string[];
  jsonb: boolean;
  /** The column naming the row's collection, if any. */
  collection?: string;
  where?: string;
}

const SPECS: Record<SealedKind, KindSpec> = {
  connectorSecrets: {
    table: 'connector_secrets',
    keys: ['tenant', 'name'],
    columns: ['sealed'],
    jsonb: false,
  },
  webhookSecrets: { table: 'webhooks', keys: ['tenant', 'id'], columns: ['secrets'], jsonb: true },
  webhookDeliveries: { table: 'webhook_deliveries', keys: ['id'], columns: ['body'], jsonb: false },
  records: {
    table: 'records',
    keys: ['tenant', 'collection', 'id'],
    columns: ['data'],
    jsonb: true,
    collection: 'collection',
  },
  events: {
    table: 'events',
    keys: ['tenant', 'seq'],
    columns: ['data', 'previous'],
    jsonb: true,
    collection: 'collection',
    where: "kind = 'record'",
  },
  conflicts: {
    table: 'conflicts',
    keys: ['tenant', 'id'],
    columns: ['doc'],
    jsonb: true,
    collection: 'collection',
  },
  branches: {
    table: 'record_branches',
    keys: ['tenant', 'collection', 'record_id', 'name'],
    columns: ['fork_data'],
    jsonb: true,
    collection: 'collection',
  },
  results: { table: 'mutation_results', keys: ['tenant', 'key'], columns: ['result'], jsonb: true },
};

/** Numbers `?` placeholders as `$1, $2, …` for PostgreSQL. */
function placeholders(sql: string, dialect: Dialect): string {
  if (dialect === 'sqlite') return sql;
  let n = 0;
  return sql.replace(/\?/g, () => `$${++n}`);
}

/** The sealed column(s) as one text. */
function textOf(spec: KindSpec, dialect: Dialect): string {
  const cast = dialect === 'postgres' && spec.jsonb ? '::text' : '';
  if (spec.columns.length === 1) return `${spec.columns[0]}${cast}`;
  return spec.columns.map((c) => `coalesce(${c}${cast}, '')`).join(" || ' ' || ");
}

export interface PageQuery {
  sql: string;
  params: unknown[];
  keys: string[];
}

/** Up to `limit` rows of `kind` holding `sbx1.` after `after` (a key as JSON), in key order. */
export function pageQuery(
  dialect: Dialect,
  kind: SealedKind,
  after: string | null,
  limit: number,
): PageQuery {
  const spec = SPECS[kind];
  const text = textOf(spec, dialect);
  const select = [
    ...spec.keys,
    ...(spec.keys.includes('tenant') ? [] : ['tenant']),
    `${spec.collection ?? 'NULL'} AS x_collection`,
    `${text} AS x_text`,
  ].join(', ');
  const where = [`${text} LIKE '%sbx1.%'`];
  if (spec.where) where.push(spec.where);
  const params: unknown[] = [];
  if (after !== null) {
    where.push(`(${spec.keys.join(', ')}) > (${spec.keys.map(() => '?').join(', ')})`);
    params.push(...(JSON.parse(after) as unknown[]));
  }
  params.push(limit);
  const sql = `SELECT ${select} FROM ${spec.table} WHERE ${where.join(' AND ')} ORDER BY ${spec.keys.join(', ')} LIMIT ?`;
  return { sql: placeholders(sql, dialect), params, keys: spec.keys };
}

/** The compare-and-set rewrite of a row of a one-column kind. */
export function rewriteQuery(
  dialect: Dialect,
  kind: SealedKind,
  key: string,
  from: string,
  to: string,
): { sql: string; params: unknown[] } {
  const spec = SPECS[kind];
  if (spec.columns.length !== 1) throw new Error(`${kind} is re-sealed by the sealed-fields backfill`);
  const column = spec.columns[0]!;
  const cast = dialect === 'postgres' && spec.jsonb ? '::jsonb' : '';
  const where = [...spec.keys.map((k) => `${k} = ?`), `${column} = ?${cast}`];
  const sql = `UPDATE ${spec.table} SET ${column} = ?${cast} WHERE ${where.join(' AND ')}`;
  return { sql: placeholders(sql, dialect), params: [to, ...(JSON.parse(key) as unknown[]), from] };
}

/** Which database holds a kind on SQLite: connector secrets live in the connector store's own file. */
export const inConnectorDb = (kind: SealedKind): boolean => kind === 'connectorSecrets';

/** A read row's key as JSON, from its key columns. */
export function keyOf(row: Record<string, unknown>, keys: readonly string[]): string {
  return JSON.stringify(keys.map((k) => (typeof row[k] === 'bigint' ? Number(row[k]) : row[k])));
}
