/**
 * The webhook health and statistics queries on PostgreSQL: delivery counts, lags and
 * period stats per platform. Read only: it must never write.
 */
import { platformCountsFromRow } from '../webhook-rows.ts';
import type { PeriodStats, PlatformCounts } from '../webhook-types.ts';
import type { PostgresAccess } from './webhook-store.ts';

export class PostgresWebhookReports {
  constructor(protected readonly db: PostgresAccess) {}

  async countsByPlatform(tenant: string, now: number): Promise<PlatformCounts[]> {
    const rows = await this.db.query<{
      platform: string | null;
      pending: string;
      failed: string;
      in_flight: string;
      oldest: string | null;
      last_success: string | null;
    }>(
      `SELECT platform,
         count(*) FILTER (WHERE status = 'pending') AS pending,
         count(*) FILTER (WHERE status = 'failed') AS failed,
         count(*) FILTER (WHERE status = 'pending' AND locked_until > $2) AS in_flight,
         min(created_at) FILTER (WHERE status = 'pending') AS oldest,
         max(completed_at) FILTER (WHERE status = 'success') AS last_success
       FROM webhook_deliveries WHERE tenant = $1 GROUP BY platform`,
      [tenant, now],
    );
    return rows.map(platformCountsFromRow);
  }

  async recentLags(
    tenant: string,
    since: number,
    limit: number,
  ): Promise<{ platform: string | null; lag: number }[]> {
    const rows = await this.db.query<{ platform: string | null; lag: string }>(
      `SELECT platform, completed_at - created_at AS lag FROM webhook_deliveries
       WHERE tenant = $1 AND created_at >= $2 AND status = 'success'
       ORDER BY created_at DESC LIMIT $3`,
      [tenant, since, limit],
    );
    return rows.map((r) => ({ platform: r.platform, lag: Number(r.lag) }));
  }

  async statsByPlatform(tenant: string, since: number): Promise<PeriodStats[]> {
    const rows = await this.db.query<{
      platform: string | null;
      completed: string;
      failed: string;
      pending: string;
      total: string | null;
      max: string | null;
    }>(
      `SELECT platform,
         count(*) FILTER (WHERE status = 'success') AS completed,
         count(*) FILTER (WHERE status = 'failed') AS failed,
         count(*) FILTER (WHERE status = 'pending') AS pending,
         sum(completed_at - created_at) FILTER (WHERE status = 'success') AS total,
         max(completed_at - created_at) FILTER (WHERE status = 'success') AS max
       FROM webhook_deliveries WHERE tenant = $1 AND created_at >= $2 GROUP BY platform`,
      [tenant, since],
    );
    return rows.map((r) => ({
      platform: r.platform,
      completed: Number(r.completed),
      failed: Number(r.failed),
      pending: Number(r.pending),
      totalSyncMs: Number(r.total ?? 0),
      maxSyncMs: r.max === null ? null : Number(r.max),
    }));
  }
}
