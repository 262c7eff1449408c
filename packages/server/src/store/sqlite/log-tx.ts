/**
 * The SQLite log transaction's reads and writes on the writer connection (the `WriteTx` a group
 * commit runs against, inside BEGIN IMMEDIATE ... COMMIT): the tenant's head, earlier results, the
 * records a batch touches, base versions, conflicts, and one tenant's batch of rows. Its statements
 * return plain values or arrays, never row objects, and the batch is written statement by statement
 * with its parameters in place (no intermediate list): a group commit of 50 runs some 250 of them, so
 * what each one costs around SQLite's own work is paid 250 times. It writes the same rows as
 * commit-ops.ts's `batchOps` (which the commit thread runs) and must never begin or end a transaction.
 */
import type { Conflict, MutationResult, SyncRecord } from '@syncbridge/protocol';
import type Database from 'better-sqlite3';
import {
  jsonOnce,
  needsLoggedRecord,
  parseJson,
  type StoredResult,
  storedResult,
  toIso,
  withLoggedRecord,
} from '../rows.ts';
import type { RecordKey, TenantBatch, VersionKey, WriteTx } from '../types.ts';
import { recordKey } from '../types.ts';
import { readVersionData } from './commit-thread.ts';
import { RECORD_COLUMNS } from './connection.ts';
import type { SqliteHistory } from './history.ts';
import type { prepareStatements } from './statements.ts';
import { newDeliveryValues } from './webhook-store.ts';

type Stmts = ReturnType<typeof prepareStatements>;
/** A records row as an array, in RECORD_COLUMNS order. */
type RecordCells = [string, string, string, number | bigint, string, string, string, number];

/** The log transaction's own statements: values and arrays instead of row objects. */
export interface LogTxStatements {
  result: Database.Statement<[string, string], string>;
  record: Database.Statement<[string, string, string], RecordCells>;
  /** A record change's log entry: the columns only a domain event has are NULL. */
  recordEvent: Database.Statement<unknown[]>;
}

export function prepareLogTx(w: Database.Database): LogTxStatements {
  return {
    result: w
      .prepare<[string, string], string>('SELECT result FROM mutation_results WHERE tenant = ? AND key = ?')
      .pluck(true),
    record: w
      .prepare<[string, string, string], RecordCells>(
        `SELECT ${RECORD_COLUMNS} FROM records WHERE tenant = ? AND collection = ? AND id = ?`,
      )
      .raw(true),
    recordEvent: w.prepare(
      `INSERT INTO events (tenant, seq, event_id, kind, collection, record_id, op, version, data, hlc, actor, ts, device, previous)
       VALUES (?, ?, ?, 'record', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    ),
  };
}

/** The WriteTx of an in-thread log transaction on the writer connection. */
export function logTx(
  s: Stmts,
  t: LogTxStatements,
  writer: Database.Database,
  history: SqliteHistory,
): WriteTx {
  return {
    lockTenant: async (tenant) => {
      const row = s.lockHead.get(tenant);
      return {
        head: row?.seq ?? 0,
        hooksVersion: row?.hooks_version ?? 0,
        collectionsVersion: row?.collections_version ?? 0,
      };
    },
    getResults: async (tenant, keys) => {
      const found = new Map<string, MutationResult>();
      for (const key of keys) {
        const text = t.result.get(tenant, key);
        if (text === undefined) continue;
        const result = JSON.parse(text) as StoredResult;
        const logged = needsLoggedRecord(result)
          ? await history.unpackRow(writer, tenant, s.loggedRecord.get(tenant, result.seq!, result.version!))
          : null;
        found.set(key, logged === null ? result : withLoggedRecord(result, logged));
      }
      return found;
    },
    getRecords: async (tenant, keys: RecordKey[]) => {
      const found = new Map<string, SyncRecord>();
      for (const { collection, id } of keys) {
        const row = t.record.get(tenant, collection, id);
        if (row) found.set(recordKey(collection, id), recordFromCells(row));
      }
      return found;
    },
    getVersionData: (tenant, keys: VersionKey[]) =>
      readVersionData(s.versionData, tenant, keys, (tn, collection, id, row) =>
        history.dataOf(writer, tn, collection, id, row),
      ),
    getConflict: async (tenant, id) => {
      const row = s.getConflictW.get(tenant, id);
      return row ? (JSON.parse(row.doc) as Conflict) : null;
    },
    writeBatch: async (tenant, batch) => writeTenantBatch(s, t, tenant, batch),
  };
}

/** As rows.ts's recordFromRow, from the row's cells. */
function recordFromCells(row: RecordCells): SyncRecord {
  return {
    collection: row[0],
    id: row[1],
    data: parseJson(row[2]) as Record<string, unknown>,
    version: Number(row[3]),
    hlc: row[4],
    updatedAt: toIso(row[5]),
    updatedBy: row[6],
    deleted: Boolean(row[7]),
  };
}

/** The rows `batchOps` lists, in its order, each statement run as it is reached. */
function writeTenantBatch(s: Stmts, t: LogTxStatements, tenant: string, batch: TenantBatch): void {
  const now = new Date().toISOString();
  for (const c of batch.conflicts ?? []) {
    s.commit.putConflict.run(tenant, c.id, c.collection, c.status, c.createdAt, JSON.stringify(c));
  }
  // A record's data and its log entry's are one object: serialized once for both.
  const json = jsonOnce();
  for (const r of batch.records) {
    s.commit.upsertRecord.run(
      tenant,
      r.collection,
      r.id,
      json(r.data),
      r.version,
      r.hlc,
      r.updatedAt,
      r.updatedBy,
      r.deleted ? 1 : 0,
    );
  }
  for (const e of batch.events) {
    if (
      e.kind === 'record' &&
      e.type === undefined &&
      e.payload === undefined &&
      e.source === undefined &&
      e.target === undefined &&
      e.priority === undefined
    ) {
      t.recordEvent.run(
        tenant,
        e.seq,
        e.eventId,
        e.collection ?? null,
        e.id ?? null,
        e.op ?? null,
        e.version ?? null,
        e.data === undefined ? null : json(e.data),
        e.hlc ?? null,
        e.actor,
        e.ts,
        e.device ?? null,
        e.previous === undefined ? null : json(e.previous),
      );
      continue;
    }
    s.commit.insertEvent.run(
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
    );
  }
  for (const { key, result } of batch.results) s.commit.putResult.run(tenant, key, storedResult(result), now);
  for (const d of batch.deliveries ?? []) s.commit.insertDelivery.run(...newDeliveryValues(d));
  s.commit.setHead.run(tenant, batch.head);
}
