/**
 * The webhook health and statistics queries on SQLite (on the reader connection): delivery counts, lags and
 * period stats per platform. Read only: it must never write.
 */
import { platformCountsFromRow } from '../webhook-rows.ts';
import type { PeriodStats, PlatformCounts } from '../webhook-types.ts';
import type { SqliteAccess } from './webhook-store.ts';

export class SqliteWebhookReports {
  constructor(protected readonly db: SqliteAccess) {}

  async countsByPlatform(tenant: string, now: number): Promise<PlatformCounts[]> {
    return this.db.reader
      .prepare<
        [number, string],
        {
          platform: string | null;
          pending: number;
          failed: number;
          in_flight: number;
          oldest: number | null;
          last_success: number | null;
        }
      >(
        `SELECT platform,
           sum(status = 'pending') AS pending,
           sum(status = 'failed') AS failed,
           sum(status = 'pending' AND locked_until > ?) AS in_flight,
           min(CASE WHEN status = 'pending' THEN created_at END) AS oldest,
           max(CASE WHEN status = 'success' THEN completed_at END) AS last_success
         FROM webhook_deliveries WHERE tenant = ? GROUP BY platform`,
      )
      .all(now, tenant)
      .map(platformCountsFromRow);
  }

  async recentLags(
    tenant: string,
    since: number,
    limit: number,
  ): Promise<{ platform: string | null; lag: number }[]> {
    return this.db.reader
      .prepare<[string, number, number], { platform: string | null; lag: number }>(
        `SELECT platform, completed_at - created_at AS lag FROM webhook_deliveries
         WHERE tenant = ? AND created_at >= ? AND status = 'success'
         ORDER BY created_at DESC LIMIT ?`,
      )
      .all(tenant, since, limit)
      .map((r) => ({ platform: r.platform, lag: Number(r.lag) }));
  }

  async statsByPlatform(tenant: string, since: number): Promise<PeriodStats[]> {
    return this.db.reader
      .prepare<
        [string, number],
        {
          platform: string | null;
          completed: number;
          failed: number;
          pending: number;
          total: number | null;
          max: number | null;
        }
      >(
        `SELECT platform,
           sum(status = 'success') AS completed,
           sum(status = 'failed') AS failed,
           sum(status = 'pending') AS pending,
           sum(CASE WHEN status = 'success' THEN completed_at - created_at ELSE 0 END) AS total,
           max(CASE WHEN status = 'success' THEN completed_at - created_at END) AS max
         FROM webhook_deliveries WHERE tenant = ? AND created_at >= ? GROUP BY platform`,
      )
      .all(tenant, since)
      .map((r) => ({
        platform: r.platform,
        completed: Number(r.completed),
        failed: Number(r.failed),
        pending: Number(r.pending),
        totalSyncMs: Number(r.total ?? 0),
        maxSyncMs: r.max === null ? null : Number(r.max),
      }));
  }
}
