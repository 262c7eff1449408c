/**
 * The options of the `pg-cdc` connector kind (change data capture from an outside PostgreSQL): where
 * to connect, which publication and replication slot, which tables become which collections (with
 * column lists), and which table is an outbox of domain events. Checked the same way from the config
 * file and from `POST /v1/connectors`.
 */
import { type Static, Type } from '@sinclair/typebox';

const NAME = '^[A-Za-z0-9_.\\-]{1,128}$';
/** A PostgreSQL identifier as the connector accepts it (no quoting needed, no injection possible). */
const IDENT = '^[A-Za-z_][A-Za-z0-9_$]{0,62}$';
/** `table` or `schema.table`. */
const TABLE = '^([A-Za-z_][A-Za-z0-9_$]{0,62}\\.)?[A-Za-z_][A-Za-z0-9_$]{0,62}$';
const Column = Type.String({ pattern: IDENT });

export const PgCdcTable = Type.Object(
  {
    /** `table` (schema `public`) or `schema.table`. */
    table: Type.String({ pattern: TABLE }),
    collection: Type.String({ pattern: NAME }),
    /** Columns of the record id (joined with `:`); default: the table's primary key. */
    id: Type.Optional(Type.Array(Column, { minItems: 1, maxItems: 8 })),
    /** Only these columns go into the record's data. */
    include: Type.Optional(Type.Array(Column, { minItems: 1 })),
    /** These columns never go into the record's data. */
    exclude: Type.Optional(Type.Array(Column)),
  },
  { additionalProperties: false },
);
export type PgCdcTable = Static<typeof PgCdcTable>;

export const PgCdcOutbox = Type.Object(
  {
    table: Type.String({ pattern: TABLE }),
    /** The column holding the event's type (required). */
    type: Column,
    /** Columns of the payload (json/jsonb or text holding JSON), source, target and priority. */
    payload: Type.Optional(Column),
    source: Type.Optional(Column),
    target: Type.Optional(Column),
    priority: Type.Optional(Column),
  },
  { additionalProperties: false },
);
export type PgCdcOutbox = Static<typeof PgCdcOutbox>;

export const PgCdcOptions = Type.Object(
  {
    name: Type.String({ pattern: NAME }),
    tenant: Type.String({ pattern: NAME }),
    kind: Type.Literal('pg-cdc'),
    enabled: Type.Optional(Type.Boolean()),
    /** A PostgreSQL connection URL, usually `{{secrets.NAME}}` (a REST definition) or `{{env.NAME}}`. */
    connection: Type.String({ minLength: 1, maxLength: 2000 }),
    /** The publication to stream (created by the source's owner; see docs/connectors.md). */
    publication: Type.String({ pattern: IDENT }),
    /** The logical replication slot (created by the connector); default `syncbridge_<name>`. */
    slot: Type.Optional(Type.String({ pattern: '^[a-z0-9_]{1,63}$' })),
    tables: Type.Optional(Type.Array(PgCdcTable, { maxItems: 200 })),
    outbox: Type.Optional(PgCdcOutbox),
    /** Copy the mapped tables first when the connector starts without a position (default true). */
    snapshot: Type.Optional(Type.Boolean()),
    /** Rows per snapshot transaction (default 500). */
    snapshotBatch: Type.Optional(Type.Integer({ minimum: 1, maximum: 10_000 })),
    /** Warn when the slot holds more WAL than this (default 1 GiB). */
    maxRetainedWalBytes: Type.Optional(Type.Integer({ minimum: 1 })),
    /** How often lag and retained WAL are read from the source (default 5000 ms). */
    statusIntervalMs: Type.Optional(Type.Integer({ minimum: 100 })),
  },
  { additionalProperties: false },
);
export type PgCdcOptions = Static<typeof PgCdcOptions>;

/** Problems the schema cannot see: nothing to map, a table mapped twice, an id column excluded. */
export function pgCdcProblems(options: PgCdcOptions, where: string): string[] {
  const problems: string[] = [];
  const tables = options.tables ?? [];
  if (tables.length === 0 && !options.outbox) problems.push(`${where}: map at least one table or an outbox`);
  const seen = new Set<string>();
  for (const [i, t] of tables.entries()) {
    const key = qualified(t.table);
    if (seen.has(key) || (options.outbox && qualified(options.outbox.table) === key)) {
      problems.push(`${where}/tables/${i}: table ${key} is mapped twice`);
    }
    seen.add(key);
    if (t.include && t.exclude) problems.push(`${where}/tables/${i}: give include or exclude, not both`);
  }
  return problems;
}

/** `schema.table` of a configured table name (schema `public` when none is given). */
export function qualified(table: string): string {
  return table.includes('.') ? table : `public.${table}`;
}

/** The slot's name: configured, or `syncbridge_<tenant>_<name>` made a valid slot name. */
export function slotName(options: PgCdcOptions): string {
  if (options.slot) return options.slot;
  const raw = `syncbridge_${options.tenant}_${options.name}`;
  return raw
    .toLowerCase()
    .replace(/[^a-z0-9_]/g, '_')
    .slice(0, 63);
}
