/**
 * Platforms & sync health: per platform, its endpoints' pending, failed and in-flight deliveries and
 * lag (pushed live by the server as `health` frames, else polled), "retry now", the last day's
 * statistics, and what is waiting.
 */
import { useDashboard, useFeed, usePoll } from '../context.ts';
import { Action, Badge, duration, Empty, ErrorLine, Time } from '../ui.tsx';

export function Platforms() {
  const { api, admin } = useDashboard();
  const feed = useFeed();
  const health = usePoll(() => api.health(), [api]);
  const stats = usePoll(() => api.stats(1), [api], 15_000);
  // What waits, and retrying it, are for tenant admins: a user's session sees the health counts only.
  const pending = usePoll(async () => (admin ? api.pending() : null), [api, admin]);
  const platforms = feed.health ?? health.data?.health ?? [];
  const statsFor = (platform: string | null) =>
    stats.data?.platforms.find((p) => p.platform === platform)?.stats ?? null;
  const retry = async (platform?: string) => {
    const r = await api.trigger(platform ? { platform } : {});
    await Promise.all([health.reload(), pending.reload()]);
    return r.message;
  };

  return (
    <section>
      <h1>Platforms &amp; sync health</h1>
      <ErrorLine error={health.error} />
      <p class="toolbar">
        <span class="muted">
          {feed.health ? 'Live: pushed by the server when it changes.' : 'Polled every 5 s.'}
        </span>
        {admin && <Action label="Retry all now" kind="primary" run={() => retry()} />}
      </p>
      {platforms.length === 0 ? (
        <Empty>No platform yet: register a webhook endpoint with a platform name.</Empty>
      ) : (
        <table>
          <thead>
            <tr>
              <th>platform</th>
              <th>status</th>
              <th class="num">endpoints</th>
              <th class="num">pending</th>
              <th class="num">in flight</th>
              <th class="num">failed</th>
              <th class="num">lag p50</th>
              <th class="num">p95</th>
              <th class="num">max</th>
              <th>last sync</th>
              <th>oldest pending</th>
              <th class="num">delivered 24 h</th>
              <th class="num">success</th>
              <th />
            </tr>
          </thead>
          <tbody>
            {platforms.map((p) => {
              const s = statsFor(p.platform);
              return (
                <tr key={p.platform ?? '-'} data-platform={p.platform ?? ''}>
                  <td>{p.platform ?? <span class="muted">(no platform)</span>}</td>
                  <td>
                    <Badge tone={p.status === 'active' ? 'ok' : p.status === 'degraded' ? 'bad' : 'muted'}>
                      {p.status}
                    </Badge>
                  </td>
                  <td class="num">{p.webhooks}</td>
                  <td class="num">{p.pendingEvents}</td>
                  <td class="num">{p.inFlight}</td>
                  <td class={`num ${p.failedEvents ? 'bad' : ''}`}>{p.failedEvents}</td>
                  <td class="num">{duration(p.lagP50Ms)}</td>
                  <td class="num">{duration(p.lagP95Ms)}</td>
                  <td class="num">{duration(p.lagMaxMs)}</td>
                  <td>
                    <Time iso={p.lastSyncAt} />
                  </td>
                  <td>
                    <Time iso={p.oldestPendingAt} />
                  </td>
                  <td class="num">{s ? s.completedEvents : '—'}</td>
                  <td class="num">{s?.successRate ? `${s.successRate} %` : '—'}</td>
                  <td>
                    {admin && p.platform && <Action label="Retry now" run={() => retry(p.platform!)} />}
                  </td>
                </tr>
              );
            })}
          </tbody>
        </table>
      )}

      {admin && (
        <>
          <h2>Waiting for delivery {pending.data ? `(${pending.data.count})` : ''}</h2>
          <ErrorLine error={pending.error} />
          {pending.data && pending.data.events.length === 0 ? (
            <Empty>Nothing waiting.</Empty>
          ) : (
            <table>
              <thead>
                <tr>
                  <th class="num">seq</th>
                  <th>event</th>
                  <th>platform</th>
                  <th class="num">attempts</th>
                  <th>queued</th>
                  <th>next attempt</th>
                </tr>
              </thead>
              <tbody>
                {pending.data?.events.map((e) => (
                  <tr key={e.deliveryId}>
                    <td class="num">{e.seq}</td>
                    <td>{e.eventType}</td>
                    <td>{e.platform ?? '—'}</td>
                    <td class="num">{e.attempts}</td>
                    <td>
                      <Time iso={e.createdAt} />
                    </td>
                    <td>
                      <Time iso={e.nextAttemptAt} />
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          )}
        </>
      )}
    </section>
  );
}
