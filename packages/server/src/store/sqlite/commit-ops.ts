/**
 * A SQLite log commit as data: the statements that write a tenant's batch (records, log entries,
 * idempotency results, conflicts, outbox rows, the head) and the checks a commit computed ahead of its
 * transaction must pass under the write lock, each a statement name and its parameters. The in-thread
 * transaction and the commit thread (commit-thread.ts) run the same list against statements prepared
 * from the same SQL, so both write the same rows; the list is what crosses to the thread (primitives
 * only, cheap to copy). It must never run a statement itself.
 */

import type { OneCall } from '../postgres/one-call-commit.ts';
import { EVENT_COLUMNS, eventColumns, jsonOnce, storedResult } from '../rows.ts';
import type { TenantBatch } from '../types.ts';
import { COMMITTED_DELIVERY_COLUMNS } from '../webhook-rows.ts';
import { RECORD_COLUMNS } from './connection.ts';
import { committedDeliveryValues, PLACEHOLDERS_15 } from './webhook-store.ts';

/** The SQL of every statement a commit runs, by name (prepared once per connection). */
export const COMMIT_SQL = {
  putConflict: `INSERT INTO conflicts (tenant, id, collection, status, created_at, doc) VALUES (?, ?, ?, ?, ?, ?)
    ON CONFLICT (tenant, id) DO UPDATE SET status = excluded.status, doc = excluded.doc`,
  upsertRecord: `INSERT INTO records (tenant, ${RECORD_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
    ON CONFLICT (tenant, collection, id) DO UPDATE SET data = excluded.data, version = excluded.version,
    hlc = excluded.hlc, updated_at = excluded.updated_at, updated_by = excluded.updated_by, deleted = excluded.deleted`,
  insertEvent: `INSERT INTO events (tenant, ${EVENT_COLUMNS}) VALUES (${new Array(19).fill('?').join(', ')})`,
  // One row per statement: in a group commit of 50, a 50-row VALUES statement cost 20–50% more CPU
  // per row than 50 runs of this one (better-sqlite3, measured; see docs/benchmarks.md).
  putResult:
    'INSERT INTO mutation_results (tenant, key, result, created_at) VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING',
  insertDelivery: `INSERT INTO webhook_deliveries (${COMMITTED_DELIVERY_COLUMNS}) VALUES (${PLACEHOLDERS_15})`,
  setHead:
    'INSERT INTO tenant_heads (tenant, seq) VALUES (?, ?) ON CONFLICT (tenant) DO UPDATE SET seq = excluded.seq',
  // Checks (one value each, compared with the expected one; no row reads as null).
  headIs: `SELECT 1 FROM tenant_heads
    WHERE tenant = ? AND seq = ? AND hooks_version = ? AND collections_version = ?`,
  lastIs: 'SELECT 1 FROM events WHERE tenant = ? AND seq = ? AND event_id = ?',
  resultStored: 'SELECT 1 FROM mutation_results WHERE tenant = ? AND key = ?',
  recordVersion: `SELECT coalesce((SELECT version FROM records WHERE tenant = ? AND collection = ? AND id = ?), 0)`,
} as const;

export type CommitStatement = keyof typeof COMMIT_SQL;
/** A statement to run: its name, then its parameters. */
export type CommitOp = [CommitStatement, ...unknown[]];
/** A check: the value expected (null: no row), the statement's name, then its parameters. */
export type CommitCheck = [number | null, CommitStatement, ...unknown[]];

/** The statements writing one tenant's batch, in the order the transaction runs them. */
export function batchOps(tenant: string, batch: TenantBatch, now = new Date().toISOString()): CommitOp[] {
  const ops: CommitOp[] = [];
  for (const c of batch.conflicts ?? []) {
    ops.push(['putConflict', tenant, c.id, c.collection, c.status, c.createdAt, JSON.stringify(c)]);
  }
  const json = jsonOnce();
  for (const r of batch.records) {
    ops.push([
      'upsertRecord',
      tenant,
      r.collection,
      r.id,
      json(r.data),
      r.version,
      r.hlc,
      r.updatedAt,
      r.updatedBy,
      r.deleted ? 1 : 0,
    ]);
  }
  for (const e of batch.events) ops.push(['insertEvent', ...eventColumns(tenant, e, json)]);
  for (const { key, result } of batch.results)
    ops.push(['putResult', tenant, key, storedResult(result), now]);
  for (const d of batch.deliveries ?? []) ops.push(['insertDelivery', ...committedDeliveryValues(d)]);
  ops.push(['setHead', tenant, batch.head]);
  return ops;
}

/**
 * What a commit computed ahead of its transaction assumed, as checks (the same ones PostgreSQL's
 * `syncbridge_commit` makes): the head row and its versions, the earlier in-flight commit's last event
 * at the head, no stored result for a key taken for new, each record at its assumed version.
 */
export function commitChecks(commit: OneCall): CommitCheck[] {
  const { tenant, lock } = commit;
  const checks: CommitCheck[] = [
    [1, 'headIs', tenant, lock.head, lock.hooksVersion, lock.collectionsVersion],
  ];
  if (commit.last !== null) checks.push([1, 'lastIs', tenant, lock.head, commit.last]);
  for (const key of commit.absent) checks.push([null, 'resultStored', tenant, key]);
  for (const k of commit.expect) checks.push([k.version, 'recordVersion', tenant, k.collection, k.id]);
  return checks;
}
