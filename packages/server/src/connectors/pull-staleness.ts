/**
 * Staleness of pull connections: each connection's data must be younger than its limit (default 4 h);
 * crossing it raises an alert (`syncbridge.connector_stale` event, health and metrics), and the next
 * success clears it (`syncbridge.connector_fresh`). It must never raise the same alert twice in a row.
 */
import type { PullConnection, PullOptions } from './config.ts';
import type { PullRun } from './pull-delta.ts';

export const DEFAULT_STALENESS_MS = 4 * 60 * 60 * 1000;

/** What the staleness check reads and sets of one connection. */
export interface Freshness {
  lastSuccessAt: number | null;
  lastError: string | null;
  stale: boolean;
  staleSince: number | null;
}

export function stalenessLimit(options: PullOptions, connection: PullConnection): number {
  return connection.stalenessLimitMs ?? options.stalenessLimitMs ?? DEFAULT_STALENESS_MS;
}

/** How often to check: a quarter of the smallest limit, between 10 ms and a minute (or as configured). */
export function staleCheckEvery(options: PullOptions): number {
  const smallest = Math.min(
    ...options.connections.map((c) => stalenessLimit(options, c)),
    DEFAULT_STALENESS_MS,
  );
  return options.staleCheckMs ?? Math.max(10, Math.min(60_000, Math.floor(smallest / 4)));
}

/** Raises or clears each connection's staleness alert (`startedAt` stands in for a first success). */
export async function checkStaleness(
  run: PullRun,
  statuses: ReadonlyMap<string, Freshness>,
  startedAt: number,
): Promise<void> {
  const ctx = run.ctx;
  if (run.stopped()) return;
  const now = Date.now();
  for (const connection of run.options.connections) {
    const s = statuses.get(connection.id)!;
    const limit = stalenessLimit(run.options, connection);
    const since = s.lastSuccessAt ?? startedAt;
    const stale = now - since > limit;
    if (stale === s.stale) continue;
    s.stale = stale;
    const payload: Record<string, unknown> = {
      connector: run.name,
      connection: connection.id,
      lastSuccessAt: s.lastSuccessAt ? new Date(s.lastSuccessAt).toISOString() : null,
      stalenessLimitMs: limit,
    };
    if (stale) {
      s.staleSince = now;
      run.counts.alerts += 1;
      payload.lastError = s.lastError;
      ctx.logger.warn(payload, 'connection data is stale');
    } else {
      payload.staleForMs = s.staleSince === null ? 0 : now - s.staleSince;
      s.staleSince = null;
    }
    await ctx
      .publish(
        {
          type: stale ? 'syncbridge.connector_stale' : 'syncbridge.connector_fresh',
          source: run.provider,
          priority: stale ? 8 : 5,
          payload,
        },
        { system: true },
      )
      .catch((err: unknown) => ctx.logger.warn({ err }, 'could not publish a staleness alert'));
  }
}
