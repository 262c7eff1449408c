/**
 * Connections & devices: who is connected now (with their channels and node), and the registered
 * devices with how far each is behind the log (its acknowledged cursor against the head).
 */
import { useDashboard, usePoll } from '../context.ts';
import { Badge, Empty, ErrorLine, Time } from '../ui.tsx';

/** Devices whose lag is read (one request each); the rest show without it. */
const LAG_LIMIT = 25;

export function Connections() {
  const { api } = useDashboard();
  const connections = usePoll(() => api.connections(), [api]);
  const devices = usePoll(
    async () => {
      const { devices } = await api.devices();
      const sorted = devices.sort((a, b) => (b.lastSeenAt ?? '').localeCompare(a.lastSeenAt ?? ''));
      const withLag = await Promise.all(
        sorted.map(async (d, i) => {
          if (i >= LAG_LIMIT) return { device: d, pending: null };
          const full = await api.device(d.user, d.id).catch(() => null);
          return { device: d, pending: full?.pending ?? null };
        }),
      );
      return withLag;
    },
    [api],
    10_000,
  );
  const online = new Set(connections.data?.connections.map((c) => `${c.user}\u0000${c.deviceId ?? ''}`));

  return (
    <section>
      <h1>Connections &amp; devices</h1>
      <h2>Connected now {connections.data ? `(${connections.data.connections.length})` : ''}</h2>
      <ErrorLine error={connections.error} />
      {connections.data && connections.data.connections.length === 0 ? (
        <Empty>Nobody is connected.</Empty>
      ) : (
        <table>
          <thead>
            <tr>
              <th>user</th>
              <th>device</th>
              <th>connected</th>
              <th>channels</th>
              <th>node</th>
              <th>address</th>
            </tr>
          </thead>
          <tbody>
            {connections.data?.connections.map((c) => (
              <tr key={c.connectionId}>
                <td>{c.user}</td>
                <td>{c.deviceId ?? <span class="muted">—</span>}</td>
                <td>
                  <Time iso={c.connectedAt} />
                </td>
                <td class="clip" title={c.channels.join(', ')}>
                  {c.channels.length === 0 ? <span class="muted">none</span> : c.channels.join(', ')}
                </td>
                <td>{c.node ?? '—'}</td>
                <td>{c.remoteAddress ?? '—'}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}

      <h2>Devices {devices.data ? `(${devices.data.length})` : ''}</h2>
      <ErrorLine error={devices.error} />
      {devices.data && devices.data.length === 0 ? (
        <Empty>No registered device.</Empty>
      ) : (
        <table>
          <thead>
            <tr>
              <th>device</th>
              <th>user</th>
              <th>kind</th>
              <th>app</th>
              <th>syncs</th>
              <th>state</th>
              <th class="num">cursor</th>
              <th class="num">behind (records)</th>
              <th class="num">behind (events)</th>
              <th>last seen</th>
            </tr>
          </thead>
          <tbody>
            {devices.data?.map(({ device: d, pending }) => (
              <tr key={`${d.user}/${d.id}`}>
                <td>{d.name ? `${d.name} (${d.id})` : d.id}</td>
                <td>{d.user}</td>
                <td>{[d.type, d.platform].filter(Boolean).join(' · ') || '—'}</td>
                <td>{d.appVersion ?? '—'}</td>
                <td class="clip">{d.categories ? d.categories.join(', ') : 'everything'}</td>
                <td>
                  {online.has(`${d.user}\u0000${d.id}`) ? (
                    <Badge tone="ok">online</Badge>
                  ) : (
                    <Badge tone="muted">offline</Badge>
                  )}
                </td>
                <td class="num">{pending ? `${pending.cursor} / ${pending.head}` : '—'}</td>
                <td class={`num ${pending && pending.count > 0 ? 'warn' : ''}`}>
                  {pending ? pending.count : '—'}
                </td>
                <td class="num">{pending ? pending.events : '—'}</td>
                <td>
                  <Time iso={d.lastSeenAt} />
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </section>
  );
}
