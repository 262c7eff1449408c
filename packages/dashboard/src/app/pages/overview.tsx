/**
 * Overview: live throughput (from the WebSocket), and at a glance what needs attention: open conflicts,
 * failing endpoints, platforms behind, connectors that are stale or failing.
 */
import { ThroughputChart } from '../chart.tsx';
import { useDashboard, useFeed, usePoll } from '../context.ts';
import { Badge, Card, duration, Empty, ErrorLine, Time } from '../ui.tsx';

export function Overview() {
  const { api, admin } = useDashboard();
  const feed = useFeed();
  const summary = usePoll(async () => {
    const [health, conflicts, webhooks, connections] = await Promise.all([
      api.health(),
      api.conflicts('open'),
      // Endpoints are for tenant admins: a user's session does not ask.
      admin ? api.webhooks().catch(() => ({ webhooks: [] })) : { webhooks: [] },
      api.connections(),
    ]);
    return { health, conflicts, webhooks, connections };
    // Read again as soon as the live socket opens, so the count includes it rather than lagging a poll.
  }, [api, admin, feed.state]);

  const s = summary.data;
  const platforms = feed.health ?? s?.health.health ?? [];
  const last = feed.buckets.slice(-10);
  const rate = last.length ? last.reduce((n, b) => n + b.records + b.events, 0) / last.length : 0;
  const failing =
    s?.webhooks.webhooks.filter((w) => w.status !== 'active' || w.consecutiveFailures > 0) ?? [];
  const connectors = s?.health.connectors ?? [];
  const badConnectors = connectors.filter((c) => c.stale || c.state !== 'running');
  const openConflicts = s ? s.conflicts.conflicts.length : null;
  const behind = platforms.filter((p) => p.status !== 'active' || p.failedEvents > 0);

  return (
    <section>
      <h1>Overview</h1>
      <ErrorLine error={summary.error} />
      <div class="cards">
        <Card label="events/s (10 s avg)" value={rate.toFixed(1)} />
        <Card label="log head (seq)" value={feed.head || '—'} />
        <Card label="connections" value={s ? s.connections.connections.length : '…'} href="#/connections" />
        <Card
          label="open conflicts"
          value={openConflicts ?? '…'}
          tone={openConflicts ? 'warn' : 'ok'}
          href="#/conflicts"
        />
        <Card
          label="failing endpoints"
          value={s ? failing.length : '…'}
          tone={failing.length ? 'bad' : 'ok'}
          href="#/webhooks"
        />
        <Card
          label="connectors needing care"
          value={s ? `${badConnectors.length} / ${connectors.length}` : '…'}
          tone={badConnectors.length ? 'warn' : 'ok'}
          href="#/connectors"
        />
      </div>

      <h2>Throughput (last 5 minutes, live)</h2>
      <ThroughputChart buckets={feed.buckets} />

      <div class="columns">
        <div>
          <h2>Platforms</h2>
          {platforms.length === 0 ? (
            <Empty>No webhook endpoints yet, so no platform to sync.</Empty>
          ) : (
            <table>
              <thead>
                <tr>
                  <th>platform</th>
                  <th>status</th>
                  <th class="num">pending</th>
                  <th class="num">failed</th>
                  <th class="num">lag p50</th>
                  <th>last sync</th>
                </tr>
              </thead>
              <tbody>
                {platforms.map((p) => (
                  <tr key={p.platform ?? '-'}>
                    <td>{p.platform ?? <span class="muted">(none)</span>}</td>
                    <td>
                      <Badge tone={p.status === 'active' ? 'ok' : p.status === 'degraded' ? 'bad' : 'muted'}>
                        {p.status}
                      </Badge>
                    </td>
                    <td class="num">{p.pendingEvents}</td>
                    <td class="num">{p.failedEvents}</td>
                    <td class="num">{duration(p.syncLagMs)}</td>
                    <td>
                      <Time iso={p.lastSyncAt} />
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          )}
          {behind.length > 0 && (
            <p class="hint">{behind.length} platform(s) need attention: see Platforms.</p>
          )}
        </div>
        <div>
          <h2>Latest activity</h2>
          {feed.recent.length === 0 ? (
            <Empty>Waiting for writes… (record changes and domain events appear here as they commit)</Empty>
          ) : (
            <table class="activity">
              <thead>
                <tr>
                  <th class="num">seq</th>
                  <th>what</th>
                  <th>actor</th>
                  <th>when</th>
                </tr>
              </thead>
              <tbody>
                {feed.recent.slice(0, 15).map((e) => (
                  <tr key={e.seq}>
                    <td class="num">{e.seq}</td>
                    <td>
                      {e.kind === 'record' ? (
                        <>
                          <Badge tone="muted">{e.op}</Badge> {e.collection}/{e.id}{' '}
                          <span class="muted">v{e.version}</span>
                        </>
                      ) : (
                        <>
                          <Badge tone="warn">event</Badge> {e.type}
                          {e.target ? <span class="muted"> → {e.target}</span> : null}
                        </>
                      )}
                    </td>
                    <td>{e.actor}</td>
                    <td>
                      <Time iso={e.ts} />
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          )}
        </div>
      </div>
    </section>
  );
}
