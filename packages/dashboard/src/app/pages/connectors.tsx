/**
 * Connectors: each scheduled pull, inbound feed or upstream stream with its state (running, backing
 * off, circuit open…), when it last succeeded, how stale its data is, its counters, and "run now" for
 * the kinds that run on demand (not the streaming ones, which cannot be triggered).
 */
import { useDashboard, usePoll } from '../context.ts';
import { Action, Badge, duration, Empty, ErrorLine, Time, type Tone } from '../ui.tsx';

function Circuit({ circuit }: { circuit: { state: string; retryAt: string | null } | null }) {
  if (!circuit) return <span class="muted">—</span>;
  const tone = circuit.state === 'closed' ? 'ok' : circuit.state === 'open' ? 'bad' : 'warn';
  return (
    <>
      <Badge tone={tone}>{circuit.state.replace('_', '-')}</Badge>
      {circuit.retryAt && (
        <span class="muted">
          {' '}
          probe <Time iso={circuit.retryAt} />
        </span>
      )}
    </>
  );
}

function stateTone(state: string, stale: boolean): Tone {
  if (state === 'circuit_open' || state === 'failed') return 'bad';
  if (state === 'backing_off' || stale) return 'warn';
  if (state === 'running') return 'ok';
  return 'muted';
}

/** A pull connector's provider circuit (`details.circuit`); feeds have none. */
function circuitOf(
  details: Record<string, unknown> | undefined,
): { state: string; retryAt: string | null } | null {
  const c = details?.['circuit'] as { state?: unknown; retryAt?: unknown } | undefined;
  if (!c || typeof c.state !== 'string') return null;
  return { state: c.state, retryAt: typeof c.retryAt === 'string' ? c.retryAt : null };
}

export function Connectors() {
  const { api } = useDashboard();
  const list = usePoll(() => api.connectors(), [api]);

  return (
    <section>
      <h1>Connectors</h1>
      <ErrorLine error={list.error} />
      {list.data && list.data.connectors.length === 0 ? (
        <Empty>No connector configured for this tenant (see docs/connectors.md).</Empty>
      ) : (
        <table>
          <thead>
            <tr>
              <th>name</th>
              <th>kind</th>
              <th>state</th>
              <th>circuit</th>
              <th>last success</th>
              <th class="num">staleness</th>
              <th>last error</th>
              <th>counters</th>
              <th />
            </tr>
          </thead>
          <tbody>
            {list.data?.connectors.map((c) => (
              <tr key={c.name} data-connector={c.name}>
                <td>
                  {c.name}
                  {!c.enabled && <Badge tone="muted">disabled</Badge>}
                </td>
                <td>{c.kind}</td>
                <td>
                  <Badge tone={stateTone(c.state, c.stale)}>{c.state.replace('_', ' ')}</Badge>
                  {c.stale && <Badge tone="warn">stale</Badge>}
                  {typeof c.details?.['warning'] === 'string' && <Badge tone="warn">WAL held</Badge>}
                </td>
                <td>
                  <Circuit circuit={circuitOf(c.details)} />
                </td>
                <td>
                  <Time iso={c.lastSuccessAt} />
                </td>
                <td class="num">{duration(c.stalenessMs)}</td>
                <td class="clip" title={c.lastError ?? c.startError ?? ''}>
                  {c.lastError ?? c.startError ?? '—'}
                </td>
                <td class="clip">
                  {Object.entries(c.metrics)
                    .map(([k, v]) => `${k} ${v}`)
                    .join(' · ') || '—'}
                </td>
                <td>
                  {c.triggerable && (
                    <Action
                      label="Run now"
                      run={async () => {
                        await api.triggerConnector(c.name);
                        await list.reload();
                        return 'started';
                      }}
                    />
                  )}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </section>
  );
}
