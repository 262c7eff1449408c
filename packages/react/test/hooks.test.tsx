/**
 * The hooks against a real server (SQLite), rendered by React 19 into a happy-dom document: what a
 * component shows as records arrive, change, are written offline and conflict; how often each
 * component renders (a row re-renders only for its own record); that snapshots keep their identity
 * while nothing changed; that hooks on the same collection share one subscription, also under
 * StrictMode; and that one render never shows two states of the cache (no tearing).
 */
import type { CachedRecord } from '@syncbridge/client';
import { act, Component, memo, Profiler, type ReactNode, startTransition, useState } from 'react';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SyncClient } from '../../client/src/index.ts';
import { FAST_BACKOFF, waitFor } from '../../client/test/helpers.ts';
import { startTestServer, type TestServer } from '../../server/test/helpers/server.ts';
import {
  SyncProvider,
  useCollection,
  useConflicts,
  useEvents,
  usePendingCount,
  useRecord,
  useStatus,
  useTopic,
} from '../src/index.ts';
import { render, until } from './dom.tsx';
import { TestFeed } from './feed.ts';

interface Todo {
  title: string;
  done: boolean;
}

const feed = new TestFeed('desk');
let srv: TestServer;
const clients: SyncClient[] = [];
const reactErrors: string[] = [];
const originalConsoleError = console.error;
let tenants = 0;

beforeAll(async () => {
  srv = await startTestServer('sqlite', { collections: { stock: { strategy: 'manual' } } }, undefined, {
    connectors: [feed],
  });
  // React reports uncached snapshots, updates outside act and key mistakes here: none may happen.
  console.error = (...args: unknown[]) => {
    reactErrors.push(args.map(String).join(' '));
    originalConsoleError(...args);
  };
});
afterAll(async () => {
  console.error = originalConsoleError;
  await Promise.all(clients.map((c) => c.close()));
  await srv?.close();
  expect(reactErrors).toEqual([]);
});

/** A fresh tenant, and a client in it for each user given (all open). */
async function devices(...users: string[]): Promise<SyncClient[]> {
  const tenant = `react-${++tenants}`;
  const made = await Promise.all(
    users.map(async (user, i) => {
      const token = await srv.token(tenant, user);
      const client = new SyncClient({ url: srv.wsUrl, token, deviceId: `d${i}`, backoff: FAST_BACKOFF });
      clients.push(client);
      return client;
    }),
  );
  await Promise.all(made.map((c) => c.whenOpen(5000)));
  return made;
}

/** Counts the renders of each named component. */
function renderCounter() {
  const counts = new Map<string, number>();
  return {
    count: (name: string) => counts.set(name, (counts.get(name) ?? 0) + 1),
    of: (name: string) => counts.get(name) ?? 0,
    reset: () => counts.clear(),
  };
}

/** Shows the code of the error its children threw (as an app's error boundary would). */
class ShowError extends Component<{ children: ReactNode }, { code: string | null }> {
  override state = { code: null as string | null };
  static getDerivedStateFromError(error: unknown) {
    return { code: String((error as { code?: string }).code ?? error) };
  }
  override render() {
    return this.state.code ? <p>{`error ${this.state.code}`}</p> : this.props.children;
  }
}

function withClient(client: SyncClient, tree: ReactNode) {
  return <SyncProvider client={client}>{tree}</SyncProvider>;
}

describe('useCollection and useRecord', () => {
  it("shows the server's records and another device's changes, keeping the array while nothing changed", async () => {
    const [writer, reader] = await devices('alice', 'alice');
    const todos = writer.collection<Todo>('todos');
    await todos.put('t1', { title: 'milk', done: false });
    await todos.put('t2', { title: 'bread', done: false });

    const seen: (readonly CachedRecord<Todo>[])[] = [];
    let rerender: () => void = () => undefined;
    function Titles() {
      const list = useCollection<Todo>('todos');
      const [, setTick] = useState(0);
      rerender = () => setTick((n) => n + 1);
      seen.push(list);
      return <p>{list.map((t) => t.data.title).join(',')}</p>;
    }
    const view = await render(withClient(reader, <Titles />));
    await until(() => view.text() === 'milk,bread', 'the records');

    // A render for another reason returns the very same array.
    const before = seen.at(-1)!;
    await act(async () => rerender());
    expect(seen.at(-1)).toBe(before);

    await act(async () => {
      await todos.patch('t2', { title: 'rye bread' });
    });
    await until(() => view.text() === 'milk,rye bread', 'the change from the other device');
    const after = seen.at(-1)!;
    expect(after).not.toBe(before);
    // The record that did not change is the same object as before.
    expect(after[0]).toBe(before[0]);
    expect(after[1]).not.toBe(before[1]);
    await view.unmount();
  });

  it('re-renders only the row whose record changed, for remote and local writes', async () => {
    const [writer, reader] = await devices('alice', 'alice');
    for (const id of ['r1', 'r2', 'r3'])
      await writer.collection<Todo>('todos').put(id, { title: id, done: false });
    const renders = renderCounter();
    const Row = memo(function Row({ id }: { id: string }) {
      const todo = useRecord<Todo>('todos', id);
      renders.count(id);
      return <li>{`${id}:${todo?.data.title}${todo?.pending ? '*' : ''}`}</li>;
    });
    function List() {
      const list = useCollection<Todo>('todos');
      renders.count('list');
      return (
        <ul>
          {list.map((t) => (
            <Row key={t.id} id={t.id} />
          ))}
        </ul>
      );
    }
    function Lone() {
      const todo = useRecord<Todo>('todos', 'r1');
      renders.count('lone');
      return <p>{todo?.data.title}</p>;
    }
    const view = await render(
      withClient(
        reader,
        <>
          <List />
          <Lone />
        </>,
      ),
    );
    await until(() => view.text() === 'r1:r1r2:r2r3:r3r1', 'the three rows');
    renders.reset();

    await act(async () => {
      await writer.collection<Todo>('todos').patch('r2', { title: 'two' });
    });
    await until(() => view.text().includes('r2:two'), 'the remote change');
    expect([renders.of('r1'), renders.of('r2'), renders.of('r3'), renders.of('lone')]).toEqual([0, 1, 0, 0]);

    renders.reset();
    await act(async () => {
      const write = reader.collection<Todo>('todos').patch('r3', { title: 'three' });
      // Shown at once, as pending.
      expect(reader.collection('todos').get('r3')?.pending).toBe(true);
      await write;
    });
    await until(() => view.text().includes('r3:three') && !view.text().includes('*'), 'the local write');
    expect(renders.of('r1')).toBe(0);
    expect(renders.of('r2')).toBe(0);
    expect(renders.of('lone')).toBe(0);
    expect(renders.of('r3')).toBeGreaterThanOrEqual(1);
    await view.unmount();
  });

  it('re-renders a filtered list for records entering or leaving it, not for changes outside it', async () => {
    const [writer, reader] = await devices('alice', 'alice');
    const todos = writer.collection<Todo>('todos');
    await todos.put('a', { title: 'open one', done: false });
    await todos.put('b', { title: 'closed one', done: true });
    const renders = renderCounter();
    function Open() {
      const open = useCollection<Todo>('todos', { filter: { done: false } });
      renders.count('open');
      return <p>{`open:${open.map((t) => t.id).join(',')}`}</p>;
    }
    // Reads `b` over the whole collection's channel: proof that its change reached this client.
    function Witness() {
      const b = useRecord<Todo>('todos', 'b');
      return <p>{`b:${b?.data.title}`}</p>;
    }
    const view = await render(
      withClient(
        reader,
        <>
          <Open />
          <Witness />
        </>,
      ),
    );
    await until(() => view.text() === 'open:ab:closed one', 'the filtered list and the witness');
    renders.reset();

    await act(async () => {
      await todos.patch('b', { title: 'closed, renamed' });
    });
    await until(() => view.text().includes('b:closed, renamed'), 'the change outside the filter');
    expect(renders.of('open')).toBe(0);

    await act(async () => {
      await todos.patch('a', { done: true });
    });
    await until(() => view.text().startsWith('open:b:'), 'a to leave the filtered list');
    expect(renders.of('open')).toBe(1);
    await view.unmount();
  });

  it('opens one subscription for every hook on the same collection, also under StrictMode, and ends it on unmount', async () => {
    const [writer, reader] = await devices('alice', 'alice');
    for (let i = 0; i < 20; i++)
      await writer.collection<Todo>('todos').put(`n${i}`, { title: `${i}`, done: false });
    const collection = reader.collection<Todo>('todos');
    const subscribe = collection.subscribe.bind(collection);
    let opened = 0;
    let active = 0;
    collection.subscribe = (listener, options) => {
      opened++;
      active++;
      const off = subscribe(listener, options);
      return () => {
        active--;
        off();
      };
    };
    const ids = Array.from({ length: 20 }, (_, i) => `n${i}`);
    function Cell({ id }: { id: string }) {
      return <span>{useRecord<Todo>('todos', id)?.data.title ?? '-'}</span>;
    }
    function Count() {
      return <b>{useCollection<Todo>('todos').length}</b>;
    }
    const view = await render(
      withClient(
        reader,
        <>
          <Count />
          {ids.map((id) => (
            <Cell key={id} id={id} />
          ))}
        </>,
      ),
      { strict: true },
    );
    await until(() => view.text().startsWith('20'), 'the records');
    expect(opened).toBe(1);
    expect(active).toBe(1);
    await view.unmount();
    await waitFor(() => active === 0, 'the subscription to end after the unmount');
  });

  it('never commits a render that shows two states of the cache (no tearing)', async () => {
    const [reader] = await devices('alice');
    const todos = reader.collection<Todo>('todos');
    reader.disconnect();
    void todos.put('x', { title: 'v1', done: false }).catch(() => undefined);
    // A slow cell: 20 of them take ~60 ms to render, so a transition yields to the event loop between them.
    function Cell() {
      const x = useRecord<Todo>('todos', 'x');
      const until = performance.now() + 3;
      while (performance.now() < until) {}
      return <i>{x?.data.title}</i>;
    }
    const cells = Array.from({ length: 20 }, (_, i) => `c${i}`);
    const commits: string[] = [];
    let container: HTMLElement | null = null;
    let bump: () => void = () => undefined;
    function App() {
      const [generation, setGeneration] = useState(0);
      bump = () => startTransition(() => setGeneration((g) => g + 1));
      return (
        <Profiler id="grid" onRender={() => commits.push(container?.textContent ?? '')}>
          <div data-generation={generation}>
            {cells.map((id) => (
              <Cell key={id} />
            ))}
          </div>
        </Profiler>
      );
    }
    const view = await render(withClient(reader, <App />));
    container = view.container;
    expect(view.text()).toBe('v1'.repeat(20));
    commits.length = 0;
    // Outside act, React renders the transition in time slices on its own scheduler: the write below
    // lands between two slices, as a socket message would.
    (globalThis as Record<string, unknown>).IS_REACT_ACT_ENVIRONMENT = false;
    try {
      bump();
      setTimeout(() => void todos.patch('x', { title: 'v2' }).catch(() => undefined), 15);
      await waitFor(() => view.text() === 'v2'.repeat(20), 'every cell to show v2');
      await new Promise((r) => setTimeout(r, 50));
    } finally {
      (globalThis as Record<string, unknown>).IS_REACT_ACT_ENVIRONMENT = true;
    }
    expect(commits.length).toBeGreaterThan(0);
    for (const shown of commits) expect(['v1'.repeat(20), 'v2'.repeat(20)]).toContain(shown);
    reader.connect();
    await view.unmount();
  });
});

describe('useStatus, usePendingCount and useConflicts', () => {
  it('shows the connection state and the queued writes, offline and back', async () => {
    const [reader] = await devices('alice');
    const renders = renderCounter();
    function Status() {
      const status = useStatus();
      const pending = usePendingCount();
      renders.count('status');
      return <p>{`${status} ${pending}`}</p>;
    }
    const view = await render(withClient(reader, <Status />));
    expect(view.text()).toBe('open 0');
    await act(async () => reader.disconnect());
    expect(view.text()).toBe('offline 0');
    const todos = reader.collection<Todo>('todos');
    let write: Promise<unknown> = Promise.resolve();
    await act(async () => {
      write = todos.put('q1', { title: 'queued', done: false });
      void todos.put('q2', { title: 'queued too', done: false });
    });
    expect(view.text()).toBe('offline 2');
    await act(async () => reader.connect());
    await until(() => view.text() === 'open 0', 'the queue to drain');
    await expect(write).resolves.toMatchObject({ status: 'applied' });
    // Nothing else renders it: a state-only component does not care about records arriving.
    renders.reset();
    await act(async () => {
      await todos.put('q3', { title: 'online', done: false });
    });
    expect(renders.of('status')).toBeLessThanOrEqual(2); // 0 → 1 → 0 queued
    await view.unmount();
  });

  it('lists the open conflicts of this user and drops one once resolved', async () => {
    const [a, b] = await devices('alice', 'alice');
    b.collection('stock').subscribe(() => undefined);
    await a.collection('stock').put('p1', { qty: 5 });
    await waitFor(() => b.collection('stock').get('p1')?.version === 1, 'b to see p1');
    function Conflicts() {
      const conflicts = useConflicts();
      return <p>{conflicts.map((c) => `${c.recordId}:${JSON.stringify(c.client)}`).join(';') || 'none'}</p>;
    }
    const view = await render(withClient(b, <Conflicts />));
    expect(view.text()).toBe('none');
    b.disconnect();
    await a.collection('stock').patch('p1', { qty: 7 });
    const write = b.collection('stock').patch('p1', { qty: 3 });
    b.connect();
    await act(async () => {
      await write;
    });
    await until(() => view.text() === 'p1:{"qty":3}', 'the conflict');
    const [conflict] = b.conflicts();
    await act(async () => {
      await b.resolve(conflict!.id, 'accept_local');
    });
    await until(() => view.text() === 'none', 'the conflict to be resolved');
    await view.unmount();
  });
});

describe('bad input', () => {
  it('reports an invalid collection, event type or topic name to the nearest error boundary', async () => {
    const [reader] = await devices('alice');
    function BadCollection() {
      return <p>{useCollection('no such collection').length}</p>;
    }
    function BadRecord() {
      return <p>{useRecord('bad/name', 'x')?.id}</p>;
    }
    function BadEvents() {
      return <p>{useEvents('no such type').length}</p>;
    }
    function BadTopic() {
      return <p>{String(useTopic('bad topic').ready)}</p>;
    }
    const caught: unknown[] = [];
    for (const Bad of [BadCollection, BadRecord, BadEvents, BadTopic]) {
      const view = await render(
        withClient(
          reader,
          <ShowError>
            <Bad />
          </ShowError>,
        ),
        { root: { onCaughtError: (error) => caught.push(error) } },
      );
      await until(() => view.text() === 'error BAD_REQUEST', `${Bad.name} to show BAD_REQUEST`);
      await view.unmount();
    }
    expect(caught).toHaveLength(4);
    // The client is unaffected: a valid collection still loads.
    await reader.collection('todos').put('ok', { title: 'still fine', done: false });
    function Fine() {
      return <p>{useRecord<Todo>('todos', 'ok')?.data.title}</p>;
    }
    const view = await render(withClient(reader, <Fine />));
    await until(() => view.text() === 'still fine', 'a valid collection');
    await view.unmount();
  });
});

describe('useEvents and useTopic', () => {
  it('shows the latest domain events of a type, bounded by limit', async () => {
    const [reader] = await devices('alice');
    for (let i = 1; i <= 3; i++) await reader.publish({ type: 'trade_closed', payload: { n: i } });
    await reader.publish({ type: 'other', payload: { n: 99 } });
    function Trades() {
      const trades = useEvents<{ n: number }>('trade_closed', { limit: 2, since: 0 });
      return <p>{trades.map((e) => e.payload.n).join(',')}</p>;
    }
    const view = await render(withClient(reader, <Trades />));
    await until(() => view.text() === '2,3', 'the replayed events');
    await act(async () => {
      await reader.publish({ type: 'trade_closed', payload: { n: 4 } });
    });
    await until(() => view.text() === '3,4', 'the live event');
    await view.unmount();
  });

  it("shows each symbol's latest tick and re-renders only the rows whose symbol ticked", async () => {
    feed.tick('EURUSD', 1.08);
    feed.tick('GBPUSD', 1.26);
    const token = await srv.token('desk', 'trader');
    const reader = new SyncClient({ url: srv.wsUrl, token, backoff: FAST_BACKOFF });
    clients.push(reader);
    const renders = renderCounter();
    const Price = memo(function Price({ symbol, price }: { symbol: string; price: number | undefined }) {
      renders.count(symbol);
      return <span>{`${symbol}=${price}`}</span>;
    });
    function Board() {
      const { ticks, ready } = useTopic('prices', ['GBPUSD', 'EURUSD']);
      if (!ready) return <p>loading</p>;
      return (
        <p>
          <Price symbol="EURUSD" price={ticks.EURUSD?.price} />
          <Price symbol="GBPUSD" price={ticks.GBPUSD?.price} />
        </p>
      );
    }
    const view = await render(withClient(reader, <Board />));
    await until(() => view.text() === 'EURUSD=1.08GBPUSD=1.26', 'the snapshot');
    renders.reset();
    await act(async () => {
      feed.tick('EURUSD', 1.09);
    });
    await until(() => view.text() === 'EURUSD=1.09GBPUSD=1.26', 'the live tick');
    expect(renders.of('EURUSD')).toBe(1);
    expect(renders.of('GBPUSD')).toBe(0);
    await view.unmount();
  });
});
