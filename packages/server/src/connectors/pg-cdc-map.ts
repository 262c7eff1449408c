/**
 * How rows of the source become syncbridge writes for the `pg-cdc` connector: a mapped table's row
 * becomes a record (primary key → id, columns → data, through the include/exclude lists), an outbox
 * row a domain event. Pure functions over decoded rows: the same code serves the initial snapshot and
 * the stream, so a row reads the same whichever path brought it. LSN arithmetic lives here too.
 */
import {
  type Mutation,
  NAME_MAX_LENGTH,
  NAME_PATTERN,
  type NewDomainEvent,
  RECORD_ID_MAX_LENGTH,
  RECORD_ID_PATTERN,
} from '@syncbridge/protocol';
import { type PgCdcOptions, type PgCdcOutbox, type PgCdcTable, qualified } from './pg-cdc-config.ts';

type Row = Record<string, unknown>;

const NAME_RE = new RegExp(NAME_PATTERN);
const ID_RE = new RegExp(RECORD_ID_PATTERN);

/** An LSN (`X/Y`, hex) as a number of bytes. */
export function lsnValue(lsn: string): bigint {
  const [hi, lo] = lsn.split('/');
  return (BigInt(`0x${hi || '0'}`) << 32n) | BigInt(`0x${lo || '0'}`);
}

/** An LSN in PostgreSQL's own spelling (`16/B374D848`). */
export function lsnText(value: bigint): string {
  return `${(value >> 32n).toString(16).toUpperCase()}/${(value & 0xffffffffn).toString(16).toUpperCase()}`;
}

/** A column value as JSON: dates as ISO text, bytes as `\x` hex, big integers as text. */
export function jsonValue(value: unknown): unknown {
  if (value === null || value === undefined) return null;
  if (value instanceof Date) return Number.isNaN(value.getTime()) ? null : value.toISOString();
  if (Buffer.isBuffer(value) || value instanceof Uint8Array)
    return `\\x${Buffer.from(value).toString('hex')}`;
  if (typeof value === 'bigint') return value.toString();
  if (typeof value === 'number' && !Number.isFinite(value)) return String(value);
  if (Array.isArray(value)) return value.map(jsonValue);
  if (typeof value === 'object') {
    const out: Row = {};
    for (const [k, v] of Object.entries(value as Row)) out[k] = jsonValue(v);
    return out;
  }
  return value;
}

/** What a change of one mapped table or of the outbox becomes. */
export type Mapped =
  | { kind: 'mutation'; mutation: Omit<Mutation, 'mid'> }
  | { kind: 'event'; event: NewDomainEvent }
  | { kind: 'skip'; reason: string };

export class RowMapper {
  private readonly tables = new Map<string, PgCdcTable>();
  private readonly outbox: PgCdcOutbox | undefined;
  private readonly outboxName: string | null;

  constructor(options: PgCdcOptions) {
    for (const t of options.tables ?? []) this.tables.set(qualified(t.table), t);
    this.outbox = options.outbox;
    this.outboxName = options.outbox ? qualified(options.outbox.table) : null;
  }

  /** The mapped tables (not the outbox), as `schema.table`. */
  tableNames(): string[] {
    return [...this.tables.keys()];
  }

  table(schema: string, name: string): PgCdcTable | undefined {
    return this.tables.get(`${schema}.${name}`);
  }

  isOutbox(schema: string, name: string): boolean {
    return this.outboxName === `${schema}.${name}`;
  }

  /**
   * A row inserted or updated (`put`; `patch` when some columns are absent: unchanged TOAST values the
   * stream does not resend), or deleted. `keys` are the table's key columns when no id is configured.
   */
  change(table: PgCdcTable, keys: readonly string[], op: 'put' | 'delete', row: Row): Mapped {
    const id = recordId(table.id ?? keys, row);
    if (typeof id !== 'string') return id;
    if (op === 'delete') return { kind: 'mutation', mutation: { collection: table.collection, id, op } };
    const data: Row = {};
    let partial = false;
    for (const [column, value] of Object.entries(row)) {
      if (table.include && !table.include.includes(column)) continue;
      if (table.exclude?.includes(column)) continue;
      if (value === undefined) partial = true;
      else data[column] = jsonValue(value);
    }
    return {
      kind: 'mutation',
      mutation: { collection: table.collection, id, op: partial ? 'patch' : 'put', data },
    };
  }

  /** An outbox row as a domain event, or why it cannot be one. */
  event(row: Row): Mapped {
    const o = this.outbox!;
    const type = row[o.type];
    if (typeof type !== 'string' || !validName(type)) {
      return { kind: 'skip', reason: `outbox row without a valid event type in column ${o.type}` };
    }
    const event: NewDomainEvent = { type };
    if (o.payload && row[o.payload] !== null && row[o.payload] !== undefined) {
      event.payload = payloadOf(row[o.payload]);
    }
    for (const field of ['source', 'target'] as const) {
      const column = o[field];
      const value = column ? row[column] : null;
      if (value === null || value === undefined) continue;
      if (typeof value !== 'string' || !validName(value)) {
        return { kind: 'skip', reason: `outbox row with an invalid ${field} in column ${column}` };
      }
      event[field] = value;
    }
    if (o.priority && row[o.priority] !== null && row[o.priority] !== undefined) {
      const priority = Number(row[o.priority]);
      if (!Number.isInteger(priority) || priority < 0 || priority > 9) {
        return { kind: 'skip', reason: `outbox row with a priority outside 0..9 in column ${o.priority}` };
      }
      event.priority = priority;
    }
    return { kind: 'event', event };
  }
}

function validName(value: string): boolean {
  return value.length <= NAME_MAX_LENGTH && NAME_RE.test(value);
}

/** A payload column: JSON as decoded, or text that holds JSON (kept as text when it does not). */
function payloadOf(value: unknown): unknown {
  if (typeof value !== 'string') return jsonValue(value);
  try {
    return JSON.parse(value);
  } catch {
    return value;
  }
}

/** The record id of a row: its key columns' values joined with `:` (escaped when not a valid id). */
function recordId(columns: readonly string[], row: Row): string | Mapped {
  if (columns.length === 0) return { kind: 'skip', reason: 'the table has no primary key and no id columns' };
  const parts: string[] = [];
  for (const column of columns) {
    const value = row[column];
    if (value === null || value === undefined) {
      return { kind: 'skip', reason: `the row has no value in id column ${column}` };
    }
    const text = String(jsonValue(value));
    parts.push(ID_RE.test(text) && !text.includes(':') ? text : encodeURIComponent(text));
  }
  const id = parts.join(':');
  if (id.length > RECORD_ID_MAX_LENGTH || !ID_RE.test(id)) {
    return { kind: 'skip', reason: 'the row id is too long for a record id' };
  }
  return id;
}
