/**
 * Webhooks: the endpoints with their counters and state, and for the one selected its deliveries
 * (filtered by status, each with its attempts), retry of one delivery, replay since a time, pause and
 * resume.
 */
import type { Delivery, DeliveryStatus, Webhook } from '@syncbridge/protocol';
import { useState } from 'preact/hooks';
import { useDashboard, usePoll } from '../context.ts';
import { Action, Badge, duration, Empty, ErrorLine, Time, type Tone } from '../ui.tsx';

const STATUS_TONE: Record<string, Tone> = { success: 'ok', pending: 'warn', failed: 'bad' };

function endpointTone(w: Webhook): Tone {
  if (w.status !== 'active') return w.status === 'disabled' ? 'bad' : 'muted';
  return w.consecutiveFailures > 0 ? 'warn' : 'ok';
}

function Attempts({ delivery }: { delivery: Delivery }) {
  const log = delivery.attemptLog ?? [];
  if (log.length === 0) return <span class="muted">no attempt yet</span>;
  return (
    <ol class="attempts">
      {log.map((a) => (
        <li key={a.attempt}>
          #{a.attempt} <Time iso={a.startedAt} />: {a.success ? 'delivered' : 'failed'}
          {a.responseStatus !== null && ` · HTTP ${a.responseStatus}`} · {duration(a.durationMs)}
          {a.error && a.error !== `HTTP ${a.responseStatus}` && <span class="bad"> · {a.error}</span>}
        </li>
      ))}
    </ol>
  );
}

function Deliveries({ webhook }: { webhook: Webhook }) {
  const { api } = useDashboard();
  const [status, setStatus] = useState<'' | DeliveryStatus>('');
  const [open, setOpen] = useState<string | null>(null);
  const [since, setSince] = useState(() => new Date(Date.now() - 3600_000).toISOString().slice(0, 16));
  const [onlyFailed, setOnlyFailed] = useState(true);
  const list = usePoll(
    () => api.deliveries(webhook.id, status || undefined),
    [api, webhook.id, status],
    3000,
  );

  return (
    <div class="panel">
      <h2>
        Deliveries to {webhook.name} <span class="muted">{webhook.url}</span>
      </h2>
      <div class="toolbar">
        <label>
          status
          <select
            name="delivery-status"
            value={status}
            onChange={(e) => setStatus(e.currentTarget.value as '' | DeliveryStatus)}
          >
            <option value="">all</option>
            <option value="pending">pending</option>
            <option value="success">delivered</option>
            <option value="failed">dead (failed)</option>
          </select>
        </label>
        <span class="spacer" />
        <label>
          replay since
          <input type="datetime-local" value={since} onInput={(e) => setSince(e.currentTarget.value)} />
        </label>
        <label class="check">
          <input
            type="checkbox"
            checked={onlyFailed}
            onChange={(e) => setOnlyFailed(e.currentTarget.checked)}
          />
          only events not yet delivered
        </label>
        <Action
          label="Replay"
          run={async () => {
            const r = await api.replay(webhook.id, new Date(since).toISOString(), onlyFailed);
            await list.reload();
            return `${r.queued} queued`;
          }}
        />
      </div>
      <ErrorLine error={list.error} />
      {list.data && list.data.deliveries.length === 0 ? (
        <Empty>No delivery{status ? ` with status ${status}` : ''}.</Empty>
      ) : (
        <table class="deliveries">
          <thead>
            <tr>
              <th class="num">seq</th>
              <th>event</th>
              <th>status</th>
              <th class="num">attempts</th>
              <th>answer</th>
              <th>created</th>
              <th>delivered / next</th>
              <th />
            </tr>
          </thead>
          <tbody>
            {list.data?.deliveries.map((d) => [
              <tr key={d.id} data-delivery={d.id} data-status={d.status}>
                <td class="num">
                  <button
                    type="button"
                    class="plain"
                    title="Show the attempts"
                    onClick={() => setOpen(open === d.id ? null : d.id)}
                  >
                    {open === d.id ? '▾' : '▸'} {d.seq}
                  </button>
                </td>
                <td>{d.eventType}</td>
                <td>
                  <Badge tone={STATUS_TONE[d.status] ?? 'muted'}>
                    {d.status === 'failed' ? 'dead' : d.status}
                  </Badge>
                  {d.inFlight && <Badge tone="muted">in flight</Badge>}
                </td>
                <td class="num">{d.attempts}</td>
                <td class="clip">
                  {d.responseStatus !== null ? `HTTP ${d.responseStatus}` : (d.error ?? '—')}
                  {d.durationMs !== null && <span class="muted"> · {duration(d.durationMs)}</span>}
                </td>
                <td>
                  <Time iso={d.createdAt} />
                </td>
                <td>
                  <Time iso={d.deliveredAt ?? d.nextAttemptAt} />
                </td>
                <td>
                  {d.status !== 'success' && (
                    <Action
                      label="Retry"
                      run={async () => {
                        await api.retryDelivery(webhook.id, d.id);
                        await list.reload();
                        return 'queued';
                      }}
                    />
                  )}
                </td>
              </tr>,
              open === d.id && (
                <tr key={`${d.id}-attempts`} class="details">
                  <td colSpan={8}>
                    <Attempts delivery={d} />
                  </td>
                </tr>
              ),
            ])}
          </tbody>
        </table>
      )}
    </div>
  );
}

export function Webhooks() {
  const { api } = useDashboard();
  const list = usePoll(() => api.webhooks(), [api]);
  const [selected, setSelected] = useState<string | null>(null);
  const webhooks = list.data?.webhooks ?? [];
  const current = webhooks.find((w) => w.id === selected) ?? webhooks[0] ?? null;

  return (
    <section>
      <h1>Webhooks</h1>
      <ErrorLine error={list.error} />
      {list.data && webhooks.length === 0 ? (
        <Empty>No endpoint registered (POST /v1/webhooks).</Empty>
      ) : (
        <table class="endpoints">
          <thead>
            <tr>
              <th>name</th>
              <th>platform</th>
              <th>url</th>
              <th>status</th>
              <th class="num">calls</th>
              <th class="num">failed</th>
              <th class="num">failing streak</th>
              <th>last success</th>
              <th>last failure</th>
              <th />
            </tr>
          </thead>
          <tbody>
            {webhooks.map((w) => (
              <tr key={w.id} data-webhook={w.id} class={current?.id === w.id ? 'selected' : ''}>
                <td>
                  <button
                    type="button"
                    class="plain"
                    title="Show its deliveries"
                    onClick={() => setSelected(w.id)}
                  >
                    {w.name}
                  </button>
                </td>
                <td>{w.platform ?? '—'}</td>
                <td class="clip">{w.url}</td>
                <td>
                  <Badge tone={endpointTone(w)}>{w.status}</Badge>
                  {w.statusReason && <span class="muted"> {w.statusReason}</span>}
                </td>
                <td class="num">{w.totalCalls}</td>
                <td class="num">{w.failedCalls}</td>
                <td class="num">{w.consecutiveFailures}</td>
                <td>
                  <Time iso={w.lastSuccessAt} />
                </td>
                <td>
                  <Time iso={w.lastFailureAt} />
                </td>
                <td>
                  {w.status === 'active' ? (
                    <Action
                      label="Pause"
                      run={async () => {
                        await api.setWebhookStatus(w.id, 'paused');
                        await list.reload();
                      }}
                    />
                  ) : (
                    <Action
                      label="Activate"
                      run={async () => {
                        await api.setWebhookStatus(w.id, 'active');
                        await list.reload();
                      }}
                    />
                  )}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      {current && <Deliveries key={current.id} webhook={current} />}
    </section>
  );
}
