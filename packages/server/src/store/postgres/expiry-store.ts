/**
 * PostgreSQL side of the retention job: deletes expired webhook deliveries (with their attempts),
 * resolved conflicts, devices (with their cursors) and orphan cursors, a bounded batch per statement.
 * It never touches a pending delivery, an open conflict or a record.
 */
import type { ExpiryStore } from '../types.ts';

export type QueryFn = <R extends Record<string, unknown>>(sql: string, params?: unknown[]) => Promise<R[]>;

async function count(query: QueryFn, sql: string, params: unknown[]): Promise<number> {
  const rows = await query<{ n: string }>(sql, params);
  return Number(rows[0]?.n ?? 0);
}

export class PostgresExpiryStore implements ExpiryStore {
  constructor(private readonly query: QueryFn) {}

  pruneDeliveries(status: 'success' | 'failed', beforeMs: number, limit: number): Promise<number> {
    // One statement: every data-modifying CTE runs, so attempts go with their deliveries. The status is a
    // literal (one of two) and the condition of the partial index webhook_deliveries_finished (migration
    // 13) is repeated, so that the planner can use it.
    return count(
      this.query,
      `WITH gone AS (
         DELETE FROM webhook_deliveries WHERE id IN (
           SELECT id FROM webhook_deliveries WHERE status <> 'pending' AND status = '${status}' AND completed_at < $1
           ORDER BY completed_at LIMIT $2)
         RETURNING id),
       attempts AS (DELETE FROM webhook_attempts WHERE delivery_id IN (SELECT id FROM gone))
       SELECT count(*) AS n FROM gone`,
      [beforeMs, limit],
    );
  }

  pruneResolvedConflicts(tenant: string, before: string, limit: number): Promise<number> {
    // conflicts_by_status (tenant, status, created_at) bounds the search: a conflict resolved before the
    // cutoff was created before it.
    return count(
      this.query,
      `WITH gone AS (
         DELETE FROM conflicts WHERE tenant = $1 AND id IN (
           SELECT id FROM conflicts WHERE tenant = $1 AND status = 'resolved' AND created_at < $2
             AND coalesce(doc->>'resolvedAt', created_at) < $2 LIMIT $3)
         RETURNING 1)
       SELECT count(*) AS n FROM gone`,
      [tenant, before, limit],
    );
  }

  pruneDevices(before: string, limit: number): Promise<number> {
    return count(
      this.query,
      `WITH gone AS (
         DELETE FROM devices WHERE (tenant, user_id, id) IN (
           SELECT tenant, user_id, id FROM devices
           WHERE coalesce(doc->>'lastSeenAt', doc->>'updatedAt') < $1 LIMIT $2)
         RETURNING tenant, user_id, id),
       cursors AS (
         DELETE FROM cursors c USING gone g
         WHERE c.tenant = g.tenant AND c.user_id = g.user_id AND c.device_id = g.id)
       SELECT count(*) AS n FROM gone`,
      [before, limit],
    );
  }

  pruneCursors(before: string, limit: number): Promise<number> {
    return count(
      this.query,
      `WITH gone AS (
         DELETE FROM cursors WHERE (tenant, user_id, device_id) IN (
           SELECT tenant, user_id, device_id FROM cursors c WHERE updated_at < $1::timestamptz
             AND NOT EXISTS (SELECT 1 FROM devices d
               WHERE d.tenant = c.tenant AND d.user_id = c.user_id AND d.id = c.device_id)
           LIMIT $2)
         RETURNING 1)
       SELECT count(*) AS n FROM gone`,
      [before, limit],
    );
  }
}
