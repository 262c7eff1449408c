/**
 * Row <-> model mapping shared by the SQL stores, so both return byte-identical records and events.
 * JSON columns arrive as text (SQLite) or parsed (PostgreSQL jsonb); `parseJson` accepts either.
 */
import type { LogEvent, MutationOp, MutationResult, SyncRecord } from '@syncbridge/protocol';

export function parseJson(value: unknown): unknown {
  return typeof value === 'string' ? JSON.parse(value) : value;
}

export interface RecordRow {
  collection: string;
  id: string;
  data: unknown;
  version: number | string;
  hlc: string;
  updated_at: string | Date;
  updated_by: string;
  deleted: number | boolean;
}

export function toIso(value: string | Date): string {
  return typeof value === 'string' ? value : value.toISOString();
}

export function recordFromRow(row: RecordRow): SyncRecord {
  return {
    collection: row.collection,
    id: row.id,
    data: parseJson(row.data) as Record<string, unknown>,
    version: Number(row.version),
    hlc: row.hlc,
    updatedAt: toIso(row.updated_at),
    updatedBy: row.updated_by,
    deleted: Boolean(row.deleted),
  };
}

/** The event columns after `tenant`, in the order `eventColumns` gives their values. */
export const EVENT_COLUMNS =
  'seq, event_id, kind, collection, record_id, op, version, data, type, payload, source, target, priority, hlc, actor, ts, device, previous';

export interface EventRow {
  seq: number | string;
  event_id: string;
  kind: string;
  collection: string | null;
  record_id: string | null;
  op: string | null;
  version: number | string | null;
  data: unknown;
  type: string | null;
  payload: unknown;
  source: string | null;
  target: string | null;
  priority: number | null;
  hlc: string | null;
  actor: string;
  ts: string | Date;
  device: string | null;
  previous: unknown;
}

/** Builds the event as clients see it; absent fields are left out, never sent as null. */
export function eventFromRow(row: EventRow): LogEvent {
  const event: LogEvent = {
    seq: Number(row.seq),
    eventId: row.event_id,
    kind: row.kind as LogEvent['kind'],
    actor: row.actor,
    ts: toIso(row.ts),
  };
  if (row.kind === 'record') {
    event.collection = row.collection!;
    event.id = row.record_id!;
    event.op = row.op as MutationOp;
    event.version = Number(row.version);
    event.data = parseJson(row.data) as Record<string, unknown>;
  } else {
    event.type = row.type!;
    if (row.payload !== null && row.payload !== undefined) event.payload = parseJson(row.payload);
    if (row.source) event.source = row.source;
    if (row.target) event.target = row.target;
    if (row.priority !== null && row.priority !== undefined) event.priority = row.priority;
  }
  // Domain events carry an HLC too; read back, they must look as they did when they were live.
  if (row.hlc) event.hlc = row.hlc;
  if (row.device) event.device = row.device;
  if (row.previous !== null && row.previous !== undefined) {
    event.previous = parseJson(row.previous) as Record<string, unknown>;
  }
  return event;
}

/**
 * JSON text of values, each serialized once (per batch): a record's data and its log entry's data are
 * the same object.
 */
export function jsonOnce(): (value: unknown) => string {
  const seen = new Map<unknown, string>();
  return (value) => {
    let text = seen.get(value);
    if (text === undefined) {
      text = JSON.stringify(value);
      seen.set(value, text);
    }
    return text;
  };
}

/**
 * The columns of an event row in insertion order, shared by both stores' INSERTs. `json` serializes
 * the JSON columns (a store may pass one that reuses the text of a record's data).
 */
export function eventColumns(
  tenant: string,
  e: LogEvent,
  json: (value: unknown) => string = JSON.stringify,
): unknown[] {
  return [
    tenant,
    e.seq,
    e.eventId,
    e.kind,
    e.collection ?? null,
    e.id ?? null,
    e.op ?? null,
    e.version ?? null,
    e.data === undefined ? null : json(e.data),
    e.type ?? null,
    e.payload === undefined ? null : json(e.payload),
    e.source ?? null,
    e.target ?? null,
    e.priority ?? null,
    e.hlc ?? null,
    e.actor,
    e.ts,
    e.device ?? null,
    e.previous === undefined ? null : json(e.previous),
  ];
}

/**
 * The stored form of a mutation's result, for idempotency. An applied or merged result leaves its
 * record out and says so (`recordInLog`): the log entry at its seq holds the same data, and
 * `withLoggedRecord` rebuilds it when a duplicate arrives. Other results keep everything they carry.
 */
export function storedResult(result: MutationResult): string {
  return JSON.stringify(storedResultValue(result));
}

/** What `storedResult` serializes. */
export function storedResultValue(result: MutationResult): StoredResult {
  if (
    result.record &&
    (result.status === 'applied' || result.status === 'merged') &&
    result.seq !== undefined &&
    result.version === result.record.version
  ) {
    // A plain copy: a rest pattern and a spread cost three times as much, once per acknowledged write.
    const compact: Record<string, unknown> = {};
    for (const key in result) if (key !== 'record') compact[key] = result[key as keyof MutationResult];
    compact.recordInLog = true;
    return compact as StoredResult;
  }
  return result;
}

/** A stored result as `storedResult` wrote it. */
export type StoredResult = MutationResult & { recordInLog?: true };

/** Whether a stored result left its record to its log entry (see `storedResult`). */
export function needsLoggedRecord(result: StoredResult): boolean {
  return result.recordInLog === true;
}

/**
 * The columns of a record event, read as a RecordRow (the record as that change left it); the
 * statement's WHERE names the event. `e` is the events table's alias.
 */
export const LOGGED_RECORD_COLUMNS = (e: string, emptyData: string) =>
  `${e}.collection AS collection, ${e}.record_id AS id, coalesce(${e}.data, ${emptyData}) AS data, ` +
  `${e}.version AS version, ${e}.hlc AS hlc, ${e}.ts AS updated_at, ${e}.actor AS updated_by, ` +
  `${e}.op = 'delete' AS deleted`;

/**
 * The result as it was given to `storedResult`, its record rebuilt from its log entry (`row`); without
 * the record when that entry is gone (history compaction dropped the version).
 */
export function withLoggedRecord(stored: StoredResult, row: RecordRow | null | undefined): MutationResult {
  const { recordInLog: _marker, ...result } = stored;
  if (!row || row.id === null || row.id === undefined) return result;
  return { ...result, record: recordFromRow(row) };
}
