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

export class SqliteExpiryStore implements ExpiryStore {
  private readonly stmts;

  constructor(private readonly options: SqliteExpiryStoreOptions) {
    const w = options.writer;
    this.stmts = {
      // The partial index webhook_deliveries_finished (migration 13) finds them oldest first without a
      // scan; the status is a literal so that the planner can prove the index applies.
      finished: {
        success: w.prepare<[number, number], { id: string }>(
          `SELECT id FROM webhook_deliveries WHERE status = 'success' AND completed_at < ?
           ORDER BY completed_at LIMIT ?`,
        ),
        failed: w.prepare<[number, number], { id: string }>(
          `SELECT id FROM webhook_deliveries WHERE status = 'failed' AND completed_at < ?
           ORDER BY completed_at LIMIT ?`,
        ),
      },
      deleteAttempts: w.prepare<[string]>('DELETE FROM webhook_attempts WHERE delivery_id = ?'),
      deleteDelivery: w.prepare<[string]>('DELETE FROM webhook_deliveries WHERE id = ?'),
      conflicts: w.prepare<[string, number]>(
        `DELETE FROM conflicts WHERE (tenant, id) IN (
           SELECT tenant, id FROM conflicts WHERE status = 'resolved'
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
    return this.options.write(() => {
      const ids = this.stmts.finished[status].all(beforeMs, limit);
      for (const { id } of ids) {
        this.stmts.deleteAttempts.run(id);
        this.stmts.deleteDelivery.run(id);
      }
      return ids.length;
    });
  }

  pruneResolvedConflicts(before: string, limit: number): Promise<number> {
    return this.options.write(() => this.stmts.conflicts.run(before, limit).changes);
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
