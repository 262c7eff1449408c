/**
 * Events: the tenant's recent log with filters, and the deliveries that are waiting or dead, each with
 * a retry.
 */
import { useState } from 'preact/hooks';
import { useDashboard, usePoll } from '../context.ts';
import { Action, Badge, Empty, ErrorLine, Json, Time } from '../ui.tsx';

interface Filter {
  type: string;
  kind: '' | 'record' | 'event';
  collection: string;
  actor: string;
  window: number;
}

// Deliveries are for tenant admins (they carry every record change): a user's session skips them.
function useFailed(admin: boolean) {
  const { api } = useDashboard();
  return usePoll(async () => {
    if (!admin) return [];
    const { webhooks } = await api.webhooks();
    const lists = await Promise.all(
      webhooks.map(async (w) => (await api.deliveries(w.id, 'failed', 50)).deliveries.map((d) => ({ d, w }))),
    );
    return lists.flat().sort((a, b) => b.d.seq - a.d.seq);
  }, [api, admin]);
}

function usePending(admin: boolean) {
  const { api } = useDashboard();
  return usePoll(async () => (admin ? api.pending() : null), [api, admin]);
}

type FailedPoll = ReturnType<typeof useFailed>;
type PendingPoll = ReturnType<typeof usePending>;

export function Events() {
  const { api, admin } = useDashboard();
  const [draft, setDraft] = useState<Filter>({ type: '', kind: '', collection: '', actor: '', window: 200 });
  const [filter, setFilter] = useState<Filter>(draft);
  const log = usePoll(async () => {
    const { head } = await api.events({ after: 0, limit: 1 });
    const after = Math.max(0, head - filter.window);
    const page = await api.events({
      after,
      limit: filter.window,
      type: filter.type || undefined,
      kind: filter.kind || undefined,
      collection: filter.collection || undefined,
      actor: filter.actor || undefined,
    });
    return { head, after, events: page.events.reverse() };
  }, [api, filter]);
  const failed = useFailed(admin);
  const pending = usePending(admin);
  const set = (patch: Partial<Filter>) => setDraft({ ...draft, ...patch });

  return (
    <section>
      <h1>Events</h1>
      <form
        class="filters"
        onSubmit={(e) => {
          e.preventDefault();
          setFilter(draft);
        }}
      >
        <label>
          kind
          <select value={draft.kind} onChange={(e) => set({ kind: e.currentTarget.value as Filter['kind'] })}>
            <option value="">any</option>
            <option value="record">record changes</option>
            <option value="event">domain events</option>
          </select>
        </label>
        <label>
          type
          <input
            value={draft.type}
            onInput={(e) => set({ type: e.currentTarget.value })}
            placeholder="trade_closed"
          />
        </label>
        <label>
          collection
          <input value={draft.collection} onInput={(e) => set({ collection: e.currentTarget.value })} />
        </label>
        <label>
          actor
          <input value={draft.actor} onInput={(e) => set({ actor: e.currentTarget.value })} />
        </label>
        <label>
          last
          <select
            value={String(draft.window)}
            onChange={(e) => set({ window: Number(e.currentTarget.value) })}
          >
            {[100, 200, 500, 1000].map((n) => (
              <option key={n} value={String(n)}>
                {n} entries
              </option>
            ))}
          </select>
        </label>
        <button type="submit" class="primary">
          Apply
        </button>
      </form>
      <ErrorLine error={log.error} />
      {log.data && (
        <p class="muted">
          Log head: seq {log.data.head}. Showing matches among seq {log.data.after + 1}–{log.data.head},
          newest first.
        </p>
      )}
      {log.data && log.data.events.length === 0 ? (
        <Empty>No entry matches.</Empty>
      ) : (
        <table class="log">
          <thead>
            <tr>
              <th class="num">seq</th>
              <th>kind</th>
              <th>what</th>
              <th>data / payload</th>
              <th>actor</th>
              <th>when</th>
            </tr>
          </thead>
          <tbody>
            {log.data?.events.map((e) => (
              <tr key={e.seq}>
                <td class="num">{e.seq}</td>
                <td>
                  <Badge tone={e.kind === 'record' ? 'muted' : 'warn'}>
                    {e.kind === 'record' ? e.op : 'event'}
                  </Badge>
                </td>
                <td>
                  {e.kind === 'record' ? `${e.collection}/${e.id} v${e.version}` : e.type}
                  {e.source && <span class="muted"> from {e.source}</span>}
                  {e.target && <span class="muted"> to {e.target}</span>}
                </td>
                <td class="clip">
                  <Json value={e.kind === 'record' ? e.data : e.payload} />
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

      {admin && <Deliveries failed={failed} pending={pending} />}
    </section>
  );
}

function Deliveries({ failed, pending }: { failed: FailedPoll; pending: PendingPoll }) {
  const { api } = useDashboard();
  return (
    <>
      <h2>Dead deliveries</h2>
      <ErrorLine error={failed.error} />
      {failed.data && failed.data.length === 0 ? (
        <Empty>No dead delivery.</Empty>
      ) : (
        <table>
          <thead>
            <tr>
              <th class="num">seq</th>
              <th>event</th>
              <th>endpoint</th>
              <th class="num">attempts</th>
              <th>last error</th>
              <th />
            </tr>
          </thead>
          <tbody>
            {failed.data?.map(({ d, w }) => (
              <tr key={d.id}>
                <td class="num">{d.seq}</td>
                <td>{d.eventType}</td>
                <td>{w.name}</td>
                <td class="num">{d.attempts}</td>
                <td class="clip">{d.responseStatus ? `HTTP ${d.responseStatus}` : (d.error ?? '—')}</td>
                <td>
                  <Action
                    label="Retry"
                    run={async () => {
                      await api.retryDelivery(w.id, d.id);
                      await failed.reload();
                      return 'queued';
                    }}
                  />
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}

      <h2>Pending deliveries {pending.data ? `(${pending.data.count})` : ''}</h2>
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
              <th>next attempt</th>
              <th />
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
                  <Time iso={e.nextAttemptAt} />
                </td>
                <td>
                  <Action
                    label="Retry now"
                    title="Every pending delivery of this endpoint becomes due at once"
                    run={async () => {
                      const r = await api.trigger({ webhookId: e.webhookId });
                      await pending.reload();
                      return r.message;
                    }}
                  />
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </>
  );
}
