/**
 * Two clients against a real server: live writes seen by each other, optimistic writes and their
 * rollback, filtered rooms, domain events (live and replayed), acknowledged cursors, and the typed
 * errors of publish, resolve and invalid writes.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type StoreKind,
  startTestServer,
  storeKinds,
  type TestServer,
} from '../../server/test/helpers/server.ts';
import { TestWsClient } from '../../server/test/helpers/ws-client.ts';
import { type CollectionChange, type DomainEvent, SyncClient, SyncClientError } from '../src/index.ts';
import { cachedRecords, FAST_BACKOFF, mintToken, serverRecords, waitFor } from './helpers.ts';

interface Todo {
  title: string;
  done: boolean;
  tags?: string[];
}

const kinds = await storeKinds();

describe.each(kinds)('client against a live server (%s)', (kind: StoreKind) => {
  let srv: TestServer;
  const clients: SyncClient[] = [];
  let tenantCounter = 0;

  beforeAll(async () => {
    srv = await startTestServer(kind, {
      collections: {
        strict: {
          strategy: 'server_wins',
          schema: { type: 'object', properties: { title: { type: 'string' } }, required: ['title'] },
        },
      },
    });
  });
  afterAll(async () => {
    await Promise.all(clients.map((c) => c.close()));
    await srv?.close();
  });

  /** A fresh tenant per test, so tests never see each other's data. */
  async function tenantClients(
    count: number,
  ): Promise<{ tenant: string; token: string; clients: SyncClient[] }> {
    const tenant = `t${++tenantCounter}-${kind}`;
    const token = await mintToken(srv.url, tenant, 'alice');
    const made: SyncClient[] = [];
    for (let i = 0; i < count; i++) {
      const client = new SyncClient({
        url: srv.wsUrl,
        token,
        deviceId: `device-${i}`,
        backoff: FAST_BACKOFF,
      });
      clients.push(client);
      made.push(client);
    }
    await Promise.all(made.map((c) => c.whenOpen(5000)));
    return { tenant, token, clients: made };
  }

  it('shows each client the other one’s writes live, and both end equal to the server', async () => {
    const {
      token,
      clients: [a, b],
    } = await tenantClients(2);
    const todosA = a!.collection<Todo>('todos');
    const todosB = b!.collection<Todo>('todos');
    const seenByB: CollectionChange<Todo>[] = [];
    const offA = todosA.subscribe(() => undefined);
    const offB = todosB.subscribe((_records, change) => seenByB.push(change));
    await waitFor(() => seenByB.some((c) => c.source === 'snapshot'), 'B to load the snapshot');

    await todosA.put('t1', { title: 'write the SDK', done: false });
    await waitFor(() => todosB.get('t1')?.data.title === 'write the SDK', 'B to see A’s put');
    expect(seenByB.some((c) => c.source === 'remote' && c.changes.some((x) => x.id === 't1'))).toBe(true);

    await todosB.patch('t1', { done: true, tags: ['sdk'] });
    await waitFor(() => todosA.get('t1')?.data.done === true, 'A to see B’s patch');
    expect(todosA.get('t1')).toMatchObject({
      data: { title: 'write the SDK', done: true, tags: ['sdk'] },
      version: 2,
    });

    await todosB.put('t2', { title: 'second', done: false });
    await todosA.delete('t2');
    await waitFor(() => todosB.get('t2') === undefined, 'B to see A’s delete');

    const server = await serverRecords(srv.url, token, 'todos');
    expect(server).toEqual({ t1: { title: 'write the SDK', done: true, tags: ['sdk'] } });
    expect(cachedRecords(a!, 'todos')).toEqual(server);
    expect(cachedRecords(b!, 'todos')).toEqual(server);
    offA();
    offB();
  });

  it('shows a put in get() before the server answers, then confirms it with the server’s version', async () => {
    const {
      clients: [a],
    } = await tenantClients(1);
    const todos = a!.collection<Todo>('todos');
    const written = todos.put('t1', { title: 'optimistic', done: false });
    expect(todos.get('t1')).toEqual({
      id: 't1',
      data: { title: 'optimistic', done: false },
      version: null,
      pending: true,
    });
    expect(a!.pendingCount()).toBe(1);
    const result = await written;
    expect(result).toMatchObject({ status: 'applied', version: 1 });
    expect(todos.get('t1')).toEqual({
      id: 't1',
      data: { title: 'optimistic', done: false },
      version: 1,
      pending: false,
    });
    expect(a!.pendingCount()).toBe(0);
  });

  it('rolls back a rejected write and reports it, keeping other writes', async () => {
    const {
      clients: [a],
    } = await tenantClients(1);
    const strict = a!.collection<{ title?: string; note?: string }>('strict');
    const changes: CollectionChange[] = [];
    strict.subscribe((_r, change) => changes.push(change));
    const outcomes: string[] = [];
    a!.on('result', ({ result }) => outcomes.push(result.status));

    // The collection's schema requires a title: the server rejects this put.
    const bad = strict.put('s1', { note: 'no title' });
    expect(strict.get('s1')?.data).toEqual({ note: 'no title' });
    const good = strict.put('s2', { title: 'fine' });
    const badResult = await bad;
    expect(badResult).toMatchObject({ status: 'rejected', error: { code: 'BAD_REQUEST' } });
    expect(strict.get('s1')).toBeUndefined();
    expect(
      changes.some(
        (c) => c.source === 'rollback' && c.changes.some((x) => x.id === 's1' && x.after === undefined),
      ),
    ).toBe(true);
    expect((await good).status).toBe('applied');
    expect(strict.get('s2')?.data).toEqual({ title: 'fine' });

    // A delete of a record that does not exist is rejected NOT_FOUND.
    const missing = await strict.delete('nope');
    expect(missing).toMatchObject({ status: 'rejected', error: { code: 'NOT_FOUND' } });
    expect(outcomes).toEqual(['rejected', 'applied', 'rejected']);
    expect(a!.pendingCount()).toBe(0);
  });

  it('rolls a stale write back to the server’s record when the strategy keeps the server version', async () => {
    const {
      token,
      clients: [a],
    } = await tenantClients(1);
    const strict = a!.collection<{ title: string; n?: number }>('strict');
    await strict.put('s1', { title: 'v1' });
    // Changed behind this client's back (it has no subscription): its cache still holds version 1.
    const res = await fetch(`${srv.url}/v1/records/strict/s1`, {
      method: 'PUT',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ title: 'from REST' }),
    });
    expect(res.status).toBe(200);
    const patch = strict.patch('s1', { n: 1 });
    expect(strict.get('s1')?.data).toEqual({ title: 'v1', n: 1 });
    const result = await patch;
    expect(result).toMatchObject({ status: 'rejected', error: { code: 'CONFLICT' }, version: 2 });
    expect(strict.get('s1')).toEqual({ id: 's1', data: { title: 'from REST' }, version: 2, pending: false });
  });

  it('never shows its own write twice, though the server’s event for it comes before its result', async () => {
    const {
      clients: [a],
    } = await tenantClients(1);
    const counters = a!.collection<{ n: number }>('counters');
    const seen: number[] = [];
    let loaded = false;
    counters.subscribe((records, change) => {
      if (change.source === 'snapshot') loaded = true;
      const n = records.find((r) => r.id === 'c1')?.data.n;
      if (n !== undefined && seen.at(-1) !== n) seen.push(n);
    });
    await waitFor(() => loaded, 'the snapshot');
    for (let i = 0; i < 10; i++) await counters.increment('c1', { n: 1 });
    expect(seen).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
  });

  it('counts concurrent increments from two clients exactly once each', async () => {
    const {
      token,
      clients: [a, b],
    } = await tenantClients(2);
    const stockA = a!.collection<{ qty: number }>('stock');
    const stockB = b!.collection<{ qty: number }>('stock');
    stockA.subscribe(() => undefined);
    stockB.subscribe(() => undefined);
    const writes: Promise<unknown>[] = [];
    for (let i = 0; i < 20; i++) {
      writes.push(stockA.increment('sku', { qty: 1 }));
      writes.push(stockB.increment('sku', { qty: -2 }));
    }
    // Optimistically each client already shows its own increments.
    expect(stockA.get('sku')?.data.qty).toBe(20);
    await Promise.all(writes);
    await waitFor(
      () => stockA.get('sku')?.data.qty === -20 && stockB.get('sku')?.data.qty === -20,
      'both to show -20',
    );
    expect(await serverRecords(srv.url, token, 'stock')).toEqual({ sku: { qty: -20 } });
  });

  it('delivers published domain events to subscribers, and publish answers with seq and eventId', async () => {
    const {
      clients: [a, b],
    } = await tenantClients(2);
    const received: DomainEvent<{ id: string }>[] = [];
    // From the start of the (fresh) tenant's log: a subscription without `since` starts at the head the
    // server reads when it handles the subscribe, which may come after A's publish below.
    b!.events<{ id: string }>('trade_closed').subscribe((e) => received.push(e), { since: 0 });
    const all: DomainEvent[] = [];
    b!.events('*').subscribe((e) => all.push(e), { since: 0 });
    await b!.whenOpen(5000);
    await waitFor(() => b!.state === 'open', 'B open');
    await b!.collection('noop').put('x', { ok: true });
    const first = await a!.publish({ type: 'trade_closed', payload: { id: 'tr-1' } });
    const second = await a!.publish({ type: 'other', payload: { id: 'o-1' } });
    expect(first).toEqual({ seq: expect.any(Number), eventId: expect.any(String) });
    await waitFor(
      () => received.length === 1 && all.length === 2,
      'B to receive the events',
      10_000,
      () => ({ received: received.map((e) => e.seq), all: all.map((e) => e.seq), first, second }),
    );
    expect(received[0]).toMatchObject({
      seq: first.seq,
      eventId: first.eventId,
      type: 'trade_closed',
      payload: { id: 'tr-1' },
      actor: 'alice',
    });
    expect(all.map((e) => e.seq)).toEqual([first.seq, second.seq]);
    const again = await a!.publish({ type: 'trade_closed', payload: {}, idempotencyKey: 'k1' });
    const dup = await a!.publish({ type: 'trade_closed', payload: {}, idempotencyKey: 'k1' });
    expect(dup).toEqual({ seq: again.seq, eventId: again.eventId, duplicate: true });
  });

  it('keeps a filtered subscription to its room, and stops updating after unsubscribe', async () => {
    const {
      token,
      clients: [a, b],
    } = await tenantClients(2);
    const stockA = a!.collection<{ locationId: string; qty: number }>('stock_levels');
    const stockB = b!.collection<{ locationId: string; qty: number }>('stock_levels');
    await stockA.put('s1', { locationId: 'wh-1', qty: 5 });
    await stockA.put('s2', { locationId: 'wh-2', qty: 7 });
    const lists: string[][] = [];
    const off = stockB.subscribe((records) => lists.push(records.map((r) => r.id)), {
      filter: { locationId: 'wh-1' },
    });
    await waitFor(() => lists.length > 0, 'the room snapshot');
    expect(lists[0]).toEqual(['s1']);
    await stockA.put('s3', { locationId: 'wh-1', qty: 1 });
    await stockA.increment('s2', { qty: 1 });
    await waitFor(() => stockB.get('s3') !== undefined, 'B to see the new record in its room');
    expect(stockB.get('s2')).toBeUndefined();
    expect(stockB.list({ locationId: 'wh-1' }).map((r) => r.data.qty)).toEqual([5, 1]);

    off();
    await stockA.increment('s1', { qty: 100 });
    // A round trip of B's own after A's write: had B still been subscribed, the event would be here by now.
    await stockB.put('marker', { locationId: 'elsewhere', qty: 0 });
    await new Promise((r) => setTimeout(r, 50));
    expect(stockB.get('s1')?.data.qty).toBe(5);
    expect((await serverRecords(srv.url, token, 'stock_levels')).s1).toEqual({
      locationId: 'wh-1',
      qty: 105,
    });
  });

  it('drops a record from a filtered subscription when a change moves it out of the room', async () => {
    const {
      clients: [a, b],
    } = await tenantClients(2);
    const stockA = a!.collection<{ locationId: string; qty: number }>('stock_levels');
    const stockB = b!.collection<{ locationId: string; qty: number }>('stock_levels');
    await stockA.put('s1', { locationId: 'wh-1', qty: 5 });
    await stockA.put('s2', { locationId: 'wh-1', qty: 1 });
    const lists: string[][] = [];
    stockB.subscribe((records) => lists.push(records.map((r) => r.id)), { filter: { locationId: 'wh-1' } });
    await waitFor(() => lists.at(-1)?.length === 2, 'the room snapshot');
    await stockA.patch('s1', { locationId: 'wh-2' });
    await waitFor(() => lists.at(-1)?.join() === 's2', 'B to see s1 leave its room');
    expect(stockB.list({ locationId: 'wh-1' }).map((r) => r.id)).toEqual(['s2']);
  });

  it('replays an event stream from a given seq', async () => {
    const {
      clients: [a, b],
    } = await tenantClients(2);
    const seqs: number[] = [];
    for (let i = 0; i < 3; i++) seqs.push((await a!.publish({ type: 'audit', payload: { i } })).seq);
    const replayed: number[] = [];
    b!.events('audit').subscribe((e) => replayed.push(e.seq), { since: seqs[0]! });
    await waitFor(() => replayed.length === 2, 'the two events after the first');
    expect(replayed).toEqual(seqs.slice(1));
  });

  it('acknowledges processed seqs, so the server remembers the device’s cursor', async () => {
    const {
      token,
      clients: [a],
    } = await tenantClients(1);
    const tenantToken = token;
    const listener = new SyncClient({ url: srv.wsUrl, token: tenantToken, deviceId: 'tablet-7' });
    clients.push(listener);
    const seen: number[] = [];
    listener.events('audit').subscribe((e) => seen.push(e.seq));
    await listener.whenOpen(5000);
    await listener.collection('noop').put('x', {});
    let last = 0;
    for (let i = 0; i < 3; i++) last = (await a!.publish({ type: 'audit', payload: { i } })).seq;
    await waitFor(() => seen.includes(last), 'the listener to process the events');
    await new Promise((r) => setTimeout(r, 300)); // the ack is debounced
    await listener.close();
    const probe = await TestWsClient.connect(srv.wsUrl);
    const welcome = await probe.request({ type: 'hello', token: tenantToken, deviceId: 'tablet-7' });
    expect(welcome).toMatchObject({ type: 'welcome', cursor: last });
    await probe.close();
  });

  it('rejects publish with a typed error once closed, and the resolve of an unknown conflict with NOT_FOUND', async () => {
    const {
      clients: [a],
    } = await tenantClients(1);
    const resolving = a!.resolve('c-1', 'accept_server');
    await expect(resolving).rejects.toBeInstanceOf(SyncClientError);
    await expect(resolving).rejects.toMatchObject({ code: 'NOT_FOUND' });
    await a!.close();
    await expect(a!.publish({ type: 'x' })).rejects.toMatchObject({ code: 'CLOSED' });
    await expect(a!.collection('todos').put('t', { a: 1 })).rejects.toMatchObject({ code: 'CLOSED' });
  });

  it('refuses invalid writes locally with BAD_REQUEST, before anything is queued', async () => {
    const {
      clients: [a],
    } = await tenantClients(1);
    await expect(a!.collection('bad name!').put('x', {})).rejects.toMatchObject({ code: 'BAD_REQUEST' });
    await expect(a!.collection('todos').put('has/slash', {})).rejects.toMatchObject({ code: 'BAD_REQUEST' });
    expect(a!.pendingCount()).toBe(0);
  });
});
