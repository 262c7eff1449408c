/**
 * The SQLite store's prepared statements for the log, records, conflicts and collections: writes on the
 * writer connection, reads on the reader (sqlite-store.ts says why there are two). Statements only: it
 * must never run one.
 */
import type Database from 'better-sqlite3';
import { EVENT_COLUMNS, type EventRow, LOGGED_RECORD_COLUMNS, type RecordRow } from '../rows.ts';
import { COMMIT_SQL, type CommitStatement } from './commit-ops.ts';
import { RECORD_COLUMNS } from './connection.ts';

/** An event row with its compact form (store/history/packing.ts), null while it is full. */
export type PackedEventRow = EventRow & { packed: Buffer | null };

/**
 * What the store uses of a prepared statement, under a name of our own: better-sqlite3's statement type is
 * declared in a namespace its typings do not export, so the declarations emitted for this module could not
 * name it.
 */
export interface Statement<P extends unknown[] = unknown[], R = unknown> {
  get(...params: P): R | undefined;
  all(...params: P): R[];
  run(...params: P): Database.RunResult;
}

function prep<P extends unknown[] = unknown[], R = unknown>(
  db: Database.Database,
  sql: string,
): Statement<P, R> {
  return db.prepare<P, R>(sql);
}

export function prepareStatements(w: Database.Database, r: Database.Database) {
  return {
    lockHead: prep<[string], { seq: number; hooks_version: number; collections_version: number }>(
      w,
      'SELECT seq, hooks_version, collections_version FROM tenant_heads WHERE tenant = ?',
    ),
    // The index is named: without statistics the planner picks the primary key (tenant, seq) and reads
    // the tenant's whole log for every base version a merge needs. A record's versions grow with its
    // seqs, so walking its entries newest first reaches a recent base version after a few steps.
    versionData: prep<
      [string, string, string, number],
      { seq: number; data: string | null; packed: Buffer | null }
    >(
      w,
      `SELECT seq, data, packed FROM events INDEXED BY events_by_record
       WHERE tenant = ? AND kind = 'record' AND collection = ? AND record_id = ? AND version = ?
       ORDER BY seq DESC LIMIT 1`,
    ),
    getConflictW: prep<[string, string], { doc: string }>(
      w,
      'SELECT doc FROM conflicts WHERE tenant = ? AND id = ?',
    ),
    getConflict: prep<[string, string], { doc: string }>(
      r,
      'SELECT doc FROM conflicts WHERE tenant = ? AND id = ?',
    ),
    getResult: prep<[string, string], { result: string }>(
      w,
      'SELECT result FROM mutation_results WHERE tenant = ? AND key = ?',
    ),
    // The record an applied mutation's stored result leaves out: its log entry (rows.ts, storedResult).
    loggedRecord: prep<[string, number, number], RecordRow & { seq: number; packed: Buffer | null }>(
      w,
      `SELECT ${LOGGED_RECORD_COLUMNS('events', "'{}'")}, seq, packed FROM events
       WHERE tenant = ? AND seq = ? AND kind = 'record' AND version = ?`,
    ),
    getRecordW: prep<[string, string, string], RecordRow>(
      w,
      `SELECT ${RECORD_COLUMNS} FROM records WHERE tenant = ? AND collection = ? AND id = ?`,
    ),
    // The same on the reader, for a commit computed ahead of its transaction (a version's data never changes).
    versionDataR: prep<
      [string, string, string, number],
      { seq: number; data: string | null; packed: Buffer | null }
    >(
      r,
      `SELECT seq, data, packed FROM events INDEXED BY events_by_record
       WHERE tenant = ? AND kind = 'record' AND collection = ? AND record_id = ? AND version = ?
       ORDER BY seq DESC LIMIT 1`,
    ),
    /** The commit's statements (commit-ops.ts), by name. */
    commit: Object.fromEntries(
      Object.entries(COMMIT_SQL).map(([name, sql]) => [name, prep(w, sql)]),
    ) as Record<CommitStatement, Statement>,
    head: prep<[string], { seq: number }>(r, 'SELECT seq FROM tenant_heads WHERE tenant = ?'),
    events: prep<[string, number, number], PackedEventRow>(
      r,
      `SELECT ${EVENT_COLUMNS}, packed FROM events WHERE tenant = ? AND seq > ? ORDER BY seq LIMIT ?`,
    ),
    getRecord: prep<[string, string, string], RecordRow>(
      r,
      `SELECT ${RECORD_COLUMNS} FROM records WHERE tenant = ? AND collection = ? AND id = ?`,
    ),
    collections: prep<[string], { name: string; settings: string }>(
      r,
      'SELECT name, settings FROM collections WHERE tenant = ? ORDER BY name',
    ),
    // A settings change bumps the tenant's collections version in the same transaction (TenantLock).
    bumpCollectionsVersion: prep(
      w,
      `INSERT INTO tenant_heads (tenant, seq, collections_version) VALUES (?, 0, 1)
       ON CONFLICT (tenant) DO UPDATE SET collections_version = collections_version + 1`,
    ),
    putCollection: prep(
      w,
      'INSERT INTO collections (tenant, name, settings) VALUES (?, ?, ?) ON CONFLICT (tenant, name) DO UPDATE SET settings = excluded.settings',
    ),
  };
}
