/**
 * Conflicts: the manual queue. For the conflict selected, a side-by-side view of the record at the
 * writer's base version, the server's version and the writer's, field by field, with what changed on
 * each side marked; resolve by taking the server's, the client's, or an edited merge.
 */
import type { Conflict } from '@syncbridge/protocol';
import { useEffect, useState } from 'preact/hooks';
import { useDashboard, useFeed, usePoll } from '../context.ts';
import { Action, Badge, Empty, ErrorLine, Time } from '../ui.tsx';

type Obj = Record<string, unknown>;

const same = (a: unknown, b: unknown) => JSON.stringify(a) === JSON.stringify(b);

/** The server's data with the fields only the client changed (since the base) taken from the client. */
export function proposeMerge(c: Conflict): Obj {
  const base: Obj = c.base ?? {};
  const client: Obj = c.client ?? {};
  const merged: Obj = { ...c.server };
  for (const key of new Set([...Object.keys(base), ...Object.keys(client)])) {
    const clientChanged = !same(base[key], client[key]);
    const serverChanged = !same(base[key], c.server[key]);
    if (clientChanged && !serverChanged) {
      if (key in client) merged[key] = client[key];
      else delete merged[key];
    }
  }
  return merged;
}

function Cell({ value, present, changed }: { value: unknown; present: boolean; changed: boolean }) {
  return (
    <td class={changed ? 'changed' : ''}>
      {present ? <code>{JSON.stringify(value)}</code> : <span class="muted">absent</span>}
    </td>
  );
}

function Diff({ conflict }: { conflict: Conflict }) {
  const base: Obj = conflict.base ?? {};
  const server: Obj = conflict.server;
  const client: Obj | null = conflict.client;
  const keys = [
    ...new Set([...Object.keys(base), ...Object.keys(server), ...Object.keys(client ?? {})]),
  ].sort();
  return (
    <table class="diff">
      <thead>
        <tr>
          <th>field</th>
          <th>base (v{conflict.baseVersion})</th>
          <th>server (v{conflict.serverVersion})</th>
          <th>client ({conflict.actor})</th>
        </tr>
      </thead>
      <tbody>
        {keys.map((k) => {
          const serverChanged = !same(base[k], server[k]);
          const clientChanged = client !== null && !same(base[k], client[k]);
          const both = serverChanged && clientChanged && !same(server[k], client?.[k]);
          return (
            <tr key={k} class={both ? 'both' : ''}>
              <th>
                {k}
                {both && <Badge tone="bad">both changed</Badge>}
              </th>
              <Cell value={base[k]} present={k in base} changed={false} />
              <Cell value={server[k]} present={k in server} changed={serverChanged} />
              {client === null ? (
                <td class="changed">
                  <span class="muted">deleted</span>
                </td>
              ) : (
                <Cell value={client[k]} present={k in client} changed={clientChanged} />
              )}
            </tr>
          );
        })}
      </tbody>
    </table>
  );
}

function Resolve({ conflict, onDone }: { conflict: Conflict; onDone: () => Promise<void> }) {
  const { api } = useDashboard();
  const [merged, setMerged] = useState(() => JSON.stringify(proposeMerge(conflict), null, 2));
  const [editing, setEditing] = useState(false);
  useEffect(() => setMerged(JSON.stringify(proposeMerge(conflict), null, 2)), [conflict]);
  const resolve = async (resolution: 'accept_server' | 'accept_local' | 'merge', data?: unknown) => {
    const r = await api.resolve(conflict.id, resolution, data);
    await onDone();
    return `resolved (${r.conflict.resolution ?? resolution})`;
  };
  return (
    <div class="resolve">
      <div class="toolbar">
        <Action label="Take server" run={() => resolve('accept_server')} title="Keep the server's version" />
        <Action
          label="Take client"
          kind="primary"
          run={() => resolve('accept_local')}
          title="Apply the writer's change over the server's version"
        />
        <button type="button" class="secondary" onClick={() => setEditing(!editing)}>
          {editing ? 'Hide merge editor' : 'Edit merged'}
        </button>
      </div>
      {editing && (
        <div class="merge-editor">
          <p class="muted">
            Proposed: the server's version with the fields only the client changed. Edit the JSON, then
            resolve.
          </p>
          <textarea
            name="merged"
            rows={12}
            value={merged}
            onInput={(e) => setMerged(e.currentTarget.value)}
          />
          <Action
            label="Resolve with merged"
            kind="primary"
            run={() => {
              let data: unknown;
              try {
                data = JSON.parse(merged);
              } catch {
                throw new Error('the merged data is not valid JSON');
              }
              if (typeof data !== 'object' || data === null || Array.isArray(data)) {
                throw new Error('the merged data must be a JSON object');
              }
              return resolve('merge', data);
            }}
          />
        </div>
      )}
    </div>
  );
}

export function Conflicts() {
  const { api } = useDashboard();
  const feed = useFeed();
  const [status, setStatus] = useState<'open' | 'resolved'>('open');
  const [selected, setSelected] = useState<string | null>(null);
  const list = usePoll(() => api.conflicts(status), [api, status]);
  // Conflicts pushed over the WebSocket are merged in at once; the poll catches up with the rest.
  const byId = new Map((list.data?.conflicts ?? []).map((c) => [c.id, c]));
  for (const c of feed.conflicts.values()) {
    if (c.status === status) byId.set(c.id, c);
    else byId.delete(c.id);
  }
  const conflicts = [...byId.values()].sort((a, b) => a.createdAt.localeCompare(b.createdAt));
  const current = conflicts.find((c) => c.id === selected) ?? conflicts[0] ?? null;

  return (
    <section>
      <h1>Conflicts</h1>
      <div class="toolbar">
        <label>
          show
          <select value={status} onChange={(e) => setStatus(e.currentTarget.value as 'open' | 'resolved')}>
            <option value="open">open</option>
            <option value="resolved">resolved</option>
          </select>
        </label>
      </div>
      <ErrorLine error={list.error} />
      {list.data && conflicts.length === 0 ? (
        <Empty>{status === 'open' ? 'No open conflict. All clear.' : 'No resolved conflict yet.'}</Empty>
      ) : (
        <div class="split">
          <ul class="picker">
            {conflicts.map((c) => (
              <li key={c.id}>
                <button
                  type="button"
                  class={current?.id === c.id ? 'selected' : ''}
                  data-conflict={c.id}
                  onClick={() => setSelected(c.id)}
                >
                  <b>
                    {c.collection}/{c.recordId}
                  </b>
                  <span class="muted">
                    {c.op} by {c.actor} · <Time iso={c.createdAt} />
                  </span>
                </button>
              </li>
            ))}
          </ul>
          {current && (
            <div class="panel" data-conflict-detail={current.id}>
              <h2>
                {current.collection}/{current.recordId}{' '}
                <Badge tone={current.status === 'open' ? 'warn' : 'ok'}>{current.status}</Badge>
              </h2>
              <p class="muted">
                {current.reason} · strategy {current.strategy} · mutation {current.mid}
                {current.deviceId && ` from device ${current.deviceId}`}
              </p>
              <Diff conflict={current} />
              {current.status === 'open' ? (
                <Resolve conflict={current} onDone={list.reload} />
              ) : (
                <p>
                  Resolved with <b>{current.resolution}</b> by {current.resolvedBy}{' '}
                  <Time iso={current.resolvedAt} />
                  {current.resolvedSeq !== undefined && ` (seq ${current.resolvedSeq})`}.
                </p>
              )}
            </div>
          )}
        </div>
      )}
    </section>
  );
}
