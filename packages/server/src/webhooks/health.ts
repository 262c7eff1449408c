/**
 * Per-platform sync health and statistics, from the delivery outbox: a platform is the `platform` of
 * the endpoints that deliver to it. Pending counts queued and retrying deliveries, failed counts dead
 * letters, in-flight the ones leased to a sender right now; lag is the time from an event's commit to
 * its successful delivery, over the last hour.
 */
import type { PlatformHealth } from '@syncbridge/protocol';
import type { Store } from '../store/types.ts';
import type { WebhookDispatcher } from './dispatcher.ts';
import type { WebhookRegistry } from './registry.ts';
import type { PeriodStats } from './types.ts';

const HOUR = 3_600_000;

function percentile(sorted: number[], p: number): number | null {
  if (sorted.length === 0) return null;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return Math.round(sorted[i]!);
}

const iso = (ms: number | null): string | null => (ms === null ? null : new Date(ms).toISOString());

export class SyncHealth {
  constructor(
    private readonly store: Store,
    private readonly registry: WebhookRegistry,
    private readonly dispatcher: WebhookDispatcher,
  ) {}

  async health(tenant: string): Promise<PlatformHealth[]> {
    const now = Date.now();
    const [counts, lags, endpoints] = await Promise.all([
      this.store.webhooks.countsByPlatform(tenant, now),
      this.store.webhooks.recentLags(tenant, now - HOUR, 10_000),
      this.store.webhooks.listEndpoints(tenant),
    ]);
    const platforms = new Map<string | null, PlatformHealth>();
    const entry = (platform: string | null): PlatformHealth => {
      let h = platforms.get(platform);
      if (!h) {
        h = {
          platform,
          status: 'active',
          webhooks: 0,
          pendingEvents: 0,
          failedEvents: 0,
          inFlight: 0,
          syncLagMs: null,
          lagP50Ms: null,
          lagP95Ms: null,
          lagMaxMs: null,
          lastSyncAt: null,
          oldestPendingAt: null,
        };
        platforms.set(platform, h);
      }
      return h;
    };
    const byPlatform = new Map<string | null, typeof endpoints>();
    for (const e of endpoints) {
      entry(e.platform).webhooks += 1;
      byPlatform.set(e.platform, [...(byPlatform.get(e.platform) ?? []), e]);
    }
    for (const c of counts) {
      const h = entry(c.platform);
      h.pendingEvents = c.pending;
      h.failedEvents = c.failed;
      h.inFlight = c.inFlight;
      h.lastSyncAt = iso(c.lastSuccessAt);
      h.oldestPendingAt = iso(c.oldestPendingAt);
    }
    const lagLists = new Map<string | null, number[]>();
    for (const { platform, lag } of lags) lagLists.set(platform, [...(lagLists.get(platform) ?? []), lag]);
    for (const [platform, list] of lagLists) {
      const h = entry(platform);
      list.sort((a, b) => a - b);
      h.lagP50Ms = percentile(list, 50);
      h.lagP95Ms = percentile(list, 95);
      h.lagMaxMs = list.length ? Math.round(list[list.length - 1]!) : null;
      h.syncLagMs = h.lagP50Ms;
    }
    for (const [platform, h] of platforms) {
      const list = byPlatform.get(platform) ?? [];
      const live = list.filter((e) => e.status !== 'disabled');
      if (list.length > 0 && live.length === 0) h.status = 'disabled';
      else if (live.length > 0 && live.every((e) => e.status === 'paused')) h.status = 'paused';
      else if (
        list.some((e) => e.status === 'disabled' || e.consecutiveFailures > 0) ||
        (h.oldestPendingAt !== null && now - Date.parse(h.oldestPendingAt) > 60_000)
      ) {
        h.status = 'degraded';
      }
    }
    return [...platforms.values()].sort((a, b) => (a.platform ?? '').localeCompare(b.platform ?? ''));
  }

  async pending(tenant: string, platform: string | undefined, limit: number) {
    const [rows, counts] = await Promise.all([
      this.store.webhooks.pendingDeliveries(tenant, platform, limit),
      this.store.webhooks.countsByPlatform(tenant, Date.now()),
    ]);
    const count = counts
      .filter((c) => platform === undefined || c.platform === platform)
      .reduce((n, c) => n + c.pending, 0);
    return {
      count,
      events: rows.map((d) => ({
        eventId: d.eventId,
        eventType: d.eventType,
        seq: d.seq,
        platform: d.platform,
        webhookId: d.webhookId,
        deliveryId: d.id,
        priority: d.priority,
        attempts: d.attempts,
        createdAt: new Date(d.createdAt).toISOString(),
        nextAttemptAt: new Date(d.nextAttemptAt).toISOString(),
      })),
    };
  }

  /** Makes pending deliveries due now (retry now); returns how many. */
  async trigger(tenant: string, filter: { platform?: string; webhookId?: string }): Promise<number> {
    const n = await this.store.webhooks.trigger(tenant, filter, Date.now());
    const endpoints = this.registry
      .list(tenant)
      .filter((e) => filter.platform === undefined || e.platform === filter.platform)
      .filter((e) => filter.webhookId === undefined || e.id === filter.webhookId);
    this.dispatcher.touch(endpoints);
    return n;
  }

  async stats(tenant: string, days: number, platform?: string) {
    const rows = await this.store.webhooks.statsByPlatform(tenant, Date.now() - days * 86_400_000);
    const selected = rows.filter((r) => platform === undefined || r.platform === platform);
    const total: PeriodStats = {
      platform: null,
      completed: 0,
      failed: 0,
      pending: 0,
      totalSyncMs: 0,
      maxSyncMs: null,
    };
    for (const r of selected) {
      total.completed += r.completed;
      total.failed += r.failed;
      total.pending += r.pending;
      total.totalSyncMs += r.totalSyncMs;
      if (r.maxSyncMs !== null) total.maxSyncMs = Math.max(total.maxSyncMs ?? 0, r.maxSyncMs);
    }
    return {
      days,
      stats: summarize(total),
      platforms: selected.map((r) => ({ platform: r.platform, stats: summarize(r) })),
    };
  }
}

function summarize(s: PeriodStats) {
  const finished = s.completed + s.failed;
  return {
    completedEvents: s.completed,
    failedEvents: s.failed,
    pendingEvents: s.pending,
    avgSyncTimeMs: s.completed > 0 ? Math.round(s.totalSyncMs / s.completed) : null,
    maxSyncTimeMs: s.maxSyncMs === null ? null : Math.round(s.maxSyncMs),
    successRate: finished > 0 ? ((s.completed / finished) * 100).toFixed(2) : null,
  };
}
