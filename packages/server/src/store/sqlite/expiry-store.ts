/**
 * SQLite side of the retention job: deletes expired webhook deliveries (with their attempts), resolved
 * conflicts, devices (with their cursors) and orphan cursors, a bounded batch per call, in one write
 * transaction each. It never touches a pending delivery, an open conflict or a record.
 */
import type Database from 'better-sqlite3';
import type { ExpiryStore } from '../types.ts';

export interface SqliteExpiryStoreOptions {
  writer: Database.Database;
  /** Runs fn as one write transaction on the writer connection, serialized with every other write. */
  write: <T>(fn: () => T) => Promise<T>;
}

/** The two deletions of a batch of finished deliveries of one status: their attempts, then them. */
function finishedStatements(w: Database.Database, status: 'success' | 'failed') {
  const batch = `SELECT id FROM webhook_deliveries WHERE status <> 'pending' AND status = '${status}' AND completed_at < ?
    ORDER BY completed_at LIMIT ?`;
  return {
    attempts: w.prepare<[number, number]>(`DELETE FROM webhook_attempts WHERE delivery_id IN (${batch})`),
    deliveries: w.prepare<[number, number]>(`DELETE FROM webhook_deliveries WHERE id IN (${batch})`),
  };
}

export class SqliteExpiryStore implements ExpiryStore {
  private readonly stmts;

  constructor(private readonly options: SqliteExpiryStoreOptions) {
    const w = options.writer;
    this.stmts = {
      // The partial index webhook_deliveries_finished (migration 13) finds them oldest first without a
      // scan (SQLite uses a partial index only where the query repeats its condition, status <> 'pending';
      // without it every batch scanned the table: 5x slower at 100,000 rows). Both statements of a batch
      // run in one write transaction, so their subqueries select the same deliveries.
      finished: {
        success: finishedStatements(w, 'success'),
        failed: finishedStatements(w, 'failed'),
      },
      // conflicts_by_status (tenant, status, created_at) bounds the search: a conflict resolved before the
      // cutoff was created before it.
      conflicts: w.prepare<[string, string, string, string, number]>(
        `DELETE FROM conflicts WHERE tenant = ? AND id IN (
           SELECT id FROM conflicts WHERE tenant = ? AND status = 'resolved' AND created_at < ?
             AND coalesce(json_extract(doc, '$.resolvedAt'), created_at) < ? LIMIT ?)`,
      ),
      devices: w.prepare<[string, number], { tenant: string; user_id: string; id: string }>(
        `SELECT tenant, user_id, id FROM devices
         WHERE coalesce(json_extract(doc, '$.lastSeenAt'), json_extract(doc, '$.updatedAt')) < ? LIMIT ?`,
      ),
      deleteDevice: w.prepare<[string, string, string]>(
        'DELETE FROM devices WHERE tenant = ? AND user_id = ? AND id = ?',
      ),
      deleteCursor: w.prepare<[string, string, string]>(
        'DELETE FROM cursors WHERE tenant = ? AND user_id = ? AND device_id = ?',
      ),
      orphanCursors: w.prepare<[string, number], { tenant: string; user_id: string; device_id: string }>(
        `SELECT tenant, user_id, device_id FROM cursors c WHERE updated_at < ?
           AND NOT EXISTS (SELECT 1 FROM devices d
             WHERE d.tenant = c.tenant AND d.user_id = c.user_id AND d.id = c.device_id)
         LIMIT ?`,
      ),
    };
  }

  pruneDeliveries(status: 'success' | 'failed', beforeMs: number, limit: number): Promise<number> {
    const { attempts, deliveries } = this.stmts.finished[status];
    return this.options.write(() => {
      attempts.run(beforeMs, limit);
      return deliveries.run(beforeMs, limit).changes;
    });
  }

  pruneResolvedConflicts(tenant: string, before: string, limit: number): Promise<number> {
    return this.options.write(() => this.stmts.conflicts.run(tenant, tenant, before, before, limit).changes);
  }

  pruneDevices(before: string, limit: number): Promise<number> {
    return this.options.write(() => {
      const rows = this.stmts.devices.all(before, limit);
      for (const row of rows) {
        this.stmts.deleteCursor.run(row.tenant, row.user_id, row.id);
        this.stmts.deleteDevice.run(row.tenant, row.user_id, row.id);
      }
      return rows.length;
    });
  }

  pruneCursors(before: string, limit: number): Promise<number> {
    return this.options.write(() => {
      const rows = this.stmts.orphanCursors.all(before, limit);
      for (const row of rows) this.stmts.deleteCursor.run(row.tenant, row.user_id, row.device_id);
      return rows.length;
    });
  }
}
