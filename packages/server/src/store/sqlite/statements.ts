/**
 * The SQLite store's prepared statements for the log, records, conflicts and collections: writes on the
 * writer connection, reads on the reader (sqlite-store.ts says why there are two). Statements only: it
 * must never run one.
 */
import type Database from 'better-sqlite3';
import { EVENT_COLUMNS, type EventRow, LOGGED_RECORD_COLUMNS, type RecordRow } from '../rows.ts';
import { RECORD_COLUMNS } from './connection.ts';

export function prepareStatements(w: Database.Database, r: Database.Database) {
  return {
    lockHead: w.prepare<[string], { seq: number; hooks_version: number; collections_version: number }>(
      'SELECT seq, hooks_version, collections_version FROM tenant_heads WHERE tenant = ?',
    ),
    // The index is named: without statistics the planner picks the primary key (tenant, seq) and reads
    // the tenant's whole log for every base version a merge needs. A record's versions grow with its
    // seqs, so walking its entries newest first reaches a recent base version after a few steps.
    versionData: w.prepare<[string, string, string, number], { data: string }>(
      `SELECT data FROM events INDEXED BY events_by_record
       WHERE tenant = ? AND kind = 'record' AND collection = ? AND record_id = ? AND version = ?
       ORDER BY seq DESC LIMIT 1`,
    ),
    getConflictW: w.prepare<[string, string], { doc: string }>(
      'SELECT doc FROM conflicts WHERE tenant = ? AND id = ?',
    ),
    getConflict: r.prepare<[string, string], { doc: string }>(
      'SELECT doc FROM conflicts WHERE tenant = ? AND id = ?',
    ),
    putConflict: w.prepare(
      `INSERT INTO conflicts (tenant, id, collection, status, created_at, doc) VALUES (?, ?, ?, ?, ?, ?)
       ON CONFLICT (tenant, id) DO UPDATE SET status = excluded.status, doc = excluded.doc`,
    ),
    setHead: w.prepare(
      'INSERT INTO tenant_heads (tenant, seq) VALUES (?, ?) ON CONFLICT (tenant) DO UPDATE SET seq = excluded.seq',
    ),
    getResult: w.prepare<[string, string], { result: string }>(
      'SELECT result FROM mutation_results WHERE tenant = ? AND key = ?',
    ),
    // The record an applied mutation's stored result leaves out: its log entry (rows.ts, storedResult).
    loggedRecord: w.prepare<[string, number, number], RecordRow>(
      `SELECT ${LOGGED_RECORD_COLUMNS('events', "'{}'")} FROM events
       WHERE tenant = ? AND seq = ? AND kind = 'record' AND version = ?`,
    ),
    // One row per statement: in a group commit of 50, a 50-row VALUES statement cost 20–50% more CPU
    // per row than 50 runs of this one (better-sqlite3, measured; see docs/benchmarks.md).
    putResult: w.prepare(
      'INSERT INTO mutation_results (tenant, key, result, created_at) VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING',
    ),
    getRecordW: w.prepare<[string, string, string], RecordRow>(
      `SELECT ${RECORD_COLUMNS} FROM records WHERE tenant = ? AND collection = ? AND id = ?`,
    ),
    upsertRecord: w.prepare(
      `INSERT INTO records (tenant, ${RECORD_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
       ON CONFLICT (tenant, collection, id) DO UPDATE SET data = excluded.data, version = excluded.version,
       hlc = excluded.hlc, updated_at = excluded.updated_at, updated_by = excluded.updated_by, deleted = excluded.deleted`,
    ),
    insertEvent: w.prepare(
      `INSERT INTO events (tenant, ${EVENT_COLUMNS}) VALUES (${new Array(19).fill('?').join(', ')})`,
    ),
    head: r.prepare<[string], { seq: number }>('SELECT seq FROM tenant_heads WHERE tenant = ?'),
    events: r.prepare<[string, number, number], EventRow>(
      `SELECT ${EVENT_COLUMNS} FROM events WHERE tenant = ? AND seq > ? ORDER BY seq LIMIT ?`,
    ),
    getRecord: r.prepare<[string, string, string], RecordRow>(
      `SELECT ${RECORD_COLUMNS} FROM records WHERE tenant = ? AND collection = ? AND id = ?`,
    ),
    collections: r.prepare<[string], { name: string; settings: string }>(
      'SELECT name, settings FROM collections WHERE tenant = ? ORDER BY name',
    ),
    // A settings change bumps the tenant's collections version in the same transaction (TenantLock).
    bumpCollectionsVersion: w.prepare(
      `INSERT INTO tenant_heads (tenant, seq, collections_version) VALUES (?, 0, 1)
       ON CONFLICT (tenant) DO UPDATE SET collections_version = collections_version + 1`,
    ),
    putCollection: w.prepare(
      'INSERT INTO collections (tenant, name, settings) VALUES (?, ?, ?) ON CONFLICT (tenant, name) DO UPDATE SET settings = excluded.settings',
    ),
  };
}
