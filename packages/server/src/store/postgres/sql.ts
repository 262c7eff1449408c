/**
 * SQL building blocks of the PostgreSQL store: column lists, the record field filter, the multi-row
 * (unnest) parameter arrays of `writeBatch`, and the one place driver errors become SyncErrors.
 * Pure functions only: nothing here opens a connection or runs a query.
 */
import type { SyncRecord } from '@syncbridge/protocol';
import { SyncError } from '@syncbridge/protocol';
import { EVENT_COLUMNS } from '../rows.ts';
import { recordKey } from '../types.ts';
import { UNAVAILABLE_MESSAGES, type UnavailableCause } from '../unavailable.ts';

export { EVENT_COLUMNS };

export const RECORD_COLUMNS = 'collection, id, data, version, hlc, updated_at, updated_by, deleted';

/**
 * Parameter types of the event columns after `tenant`, in `eventColumns` order (rows.ts).
 * JSON columns arrive as JSON text and are cast to jsonb by the array type.
 */
const EVENT_ARRAY_TYPES = [
  'bigint',
  'text',
  'text',
  'text',
  'text',
  'text',
  'bigint',
  'jsonb',
  'text',
  'jsonb',
  'text',
  'text',
  'integer',
  'text',
  'text',
  'text',
  'text',
  'jsonb',
];

/** `SELECT $1, * FROM unnest($2::bigint[], $3::text[], ...)`: one row per event, tenant as $1. */
export const INSERT_EVENTS = `INSERT INTO events (tenant, ${EVENT_COLUMNS})
  SELECT $1, * FROM unnest(${EVENT_ARRAY_TYPES.map((type, i) => `$${i + 2}::${type}[]`).join(', ')})`;

export const UPSERT_RECORDS = `INSERT INTO records (tenant, ${RECORD_COLUMNS})
  SELECT $1, * FROM unnest($2::text[], $3::text[], $4::jsonb[], $5::bigint[], $6::text[], $7::text[],
    $8::text[], $9::boolean[])
  ON CONFLICT (tenant, collection, id) DO UPDATE SET data = excluded.data, version = excluded.version,
    hlc = excluded.hlc, updated_at = excluded.updated_at, updated_by = excluded.updated_by,
    deleted = excluded.deleted`;

export const INSERT_RESULTS = `INSERT INTO mutation_results (tenant, key, result)
  SELECT $1, * FROM unnest($2::text[], $3::jsonb[]) ON CONFLICT DO NOTHING`;

/**
 * A group commit's writes in one statement, one round trip instead of four: the record upsert ($2-$9),
 * the log entries ($10-$27), the results ($28-$29) and the tenant's new head ($30), with the tenant as
 * $1. The parts touch different tables, so running them as one statement's CTEs changes nothing but
 * the round trips; empty arrays insert nothing. Returns the tenant when its head row exists.
 */
export const WRITE_BATCH = (() => {
  const shift = (sql: string, by: number) =>
    sql.replace(/\$(\d+)/g, (_, n: string) => (n === '1' ? '$1' : `$${Number(n) + by}`));
  return `WITH records_written AS (${UPSERT_RECORDS}),
    events_written AS (${shift(INSERT_EVENTS, 8)}),
    results_written AS (${shift(INSERT_RESULTS, 26)})
  UPDATE tenant_heads SET seq = $30 WHERE tenant = $1 RETURNING tenant`;
})();

/** Turns rows (arrays of column values) into one array per column, for `unnest`. */
export function columnArrays(rows: unknown[][], width: number): unknown[][] {
  const columns: unknown[][] = Array.from({ length: width }, () => []);
  for (const row of rows) for (let i = 0; i < width; i++) columns[i].push(row[i]);
  return columns;
}

/**
 * The record upsert's column arrays. A record written twice in one batch keeps its last version, as
 * SQLite's row-by-row upsert does (PostgreSQL refuses to upsert one row twice in a statement).
 */
export function recordArrays(
  records: SyncRecord[],
  json: (value: unknown) => string = JSON.stringify,
): unknown[][] {
  const last = new Map<string, SyncRecord>();
  for (const r of records) {
    const key = recordKey(r.collection, r.id);
    last.delete(key);
    last.set(key, r);
  }
  const rows = [...last.values()].map((r) => [
    r.collection,
    r.id,
    json(r.data),
    r.version,
    r.hlc,
    r.updatedAt,
    r.updatedBy,
    r.deleted,
  ]);
  return columnArrays(rows, 8);
}

/**
 * SQL for "the data field at this dotted path, written as text, equals the value", matching
 * core/filters.ts and SQLite's filterSql: strings compare as they are, numbers and booleans as their
 * JSON text (`#>>` renders them so); objects, arrays, null and missing fields never match. Every step
 * before the last must be an object: `#>` would also index into arrays, which filters.ts never does.
 * `firstParam` is the number of the first placeholder to use; returns the clauses and their params.
 */
export function filterSql(
  filter: Record<string, string>,
  firstParam: number,
): { sql: string; params: unknown[] } {
  const clauses: string[] = [];
  const params: unknown[] = [];
  let n = firstParam;
  for (const [field, value] of Object.entries(filter)) {
    const parts = field.split('.');
    const path = `$${n}::text[]`;
    const checks = [`jsonb_typeof(data #> ${path}) IN ('string', 'number', 'boolean')`];
    for (let depth = 1; depth < parts.length; depth++) {
      checks.push(`jsonb_typeof(data #> (${path})[1:${depth}]) = 'object'`);
    }
    checks.push(`data #>> ${path} = $${n + 1}::text`);
    clauses.push(`(${checks.join(' AND ')})`);
    params.push(parts, value);
    n += 2;
  }
  return { sql: clauses.length ? ` AND ${clauses.join(' AND ')}` : '', params };
}

/** SQLSTATEs that mean "retry later can work", by cause (the same causes as SQLite's, store/sqlite/errors.ts). */
const SQLSTATE_CAUSES: Record<string, UnavailableCause> = {
  '55P03': 'busy', // lock_not_available: lock_timeout passed (busyTimeoutMs)
  '40P01': 'busy', // deadlock_detected
  '40001': 'busy', // serialization_failure
  '53100': 'full', // disk_full
  '57P01': 'down',
  '57P02': 'down',
  '57P03': 'down',
  '53200': 'down', // out_of_memory
  '53300': 'down',
  '53400': 'down',
};
const UNAVAILABLE_NODE_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'ENOTFOUND',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EAI_AGAIN',
  'EPIPE',
]);
const DOWN_MESSAGES = [
  'Connection terminated',
  'timeout exceeded when trying to connect',
  'is not queryable',
  'connection timeout',
];

function causeOf(err: Error): UnavailableCause | null {
  const code = (err as { code?: unknown }).code;
  if (typeof code === 'string') {
    const cause = SQLSTATE_CAUSES[code];
    if (cause) return cause;
    if (code.startsWith('08') || UNAVAILABLE_NODE_CODES.has(code)) return 'down';
  }
  if (err instanceof AggregateError) {
    for (const e of err.errors) if (e instanceof Error && causeOf(e)) return causeOf(e);
  }
  return DOWN_MESSAGES.some((m) => err.message.includes(m)) ? 'down' : null;
}

/**
 * The one place PostgreSQL driver errors are translated: a database that is busy (a lock wait past
 * `lock_timeout`), full or unreachable becomes SyncError('UNAVAILABLE') with the message SQLite's
 * translator gives for the same cause, so callers see the same error whatever the store. Everything
 * else (constraint violations, SyncErrors thrown by a transaction's callback, bugs) passes through.
 */
export function translateError(err: unknown): unknown {
  if (!(err instanceof Error) || err instanceof SyncError) return err;
  const code = (err as { code?: unknown }).code;
  // PostgreSQL text and jsonb cannot hold U+0000; retrying would never help, so it is the caller's error.
  // Inputs are refused before they reach a store (core/nul.ts); this is the last line.
  if (code === '22P05' || code === '22021') {
    return new SyncError('BAD_REQUEST', 'text containing the NUL character (\\u0000) cannot be stored');
  }
  // The driver's error stays as `cause`, so that a start can say where and why (startup/reach.ts).
  const cause = causeOf(err);
  return cause
    ? Object.assign(new SyncError('UNAVAILABLE', UNAVAILABLE_MESSAGES[cause]), { cause: err })
    : err;
}
