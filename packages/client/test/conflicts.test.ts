/**
 * Conflicts through the SDK against a real server: a `manual` collection stores the conflict of a
 * stale write made offline, the client reports it (with base, server and client data) and resolves it,
 * the caches of both devices converging on the result; a stale resolve shows the conflict again; a
 * handler resolves conflicts on its own; a conflict whose frame the client missed is read over REST;
 * and a `merge` collection answers a stale write `merged`, the caches converging on the server's record.
 */
import type { Conflict } from '@syncbridge/protocol';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type StoreKind,
  startTestServer,
  storeKinds,
  type TestServer,
} from '../../server/test/helpers/server.ts';
import { MemoryStorage, SyncClient } from '../src/index.ts';
import { cachedRecords, FAST_BACKOFF, mintToken, serverRecords, waitFor } from './helpers.ts';

const kinds = await storeKinds();

describe.each(kinds)('conflicts through the SDK (%s)', (kind: StoreKind) => {
  let srv: TestServer;
  const clients: SyncClient[] = [];
  let tenants = 0;

  beforeAll(async () => {
    srv = await startTestServer(kind, {
      collections: {
        stock: { strategy: 'manual' },
        docs: { strategy: 'merge', textFields: ['body'] },
      },
    });
  });
  afterAll(async () => {
    await Promise.all(clients.map((c) => c.close()));
    await srv?.close();
  });

  /** Two devices of one user in a fresh tenant, both subscribed to `collection`, both open. */
  async function twoDevices(collection: string) {
    const token = await mintToken(srv.url, `c${++tenants}-${kind}`, 'alice');
    const make = (deviceId: string) => {
      const client = new SyncClient({ url: srv.wsUrl, token, deviceId, backoff: FAST_BACKOFF });
      clients.push(client);
      client.collection(collection).subscribe(() => undefined);
      return client;
    };
    const a = make('laptop');
    const b = make('phone');
    await Promise.all([a.whenOpen(5000), b.whenOpen(5000)]);
    return { token, a, b };
  }

  function recordConflicts(client: SyncClient) {
    const opened: Conflict[] = [];
    const resolved: Conflict[] = [];
    client.on('conflict', (c) => opened.push(c));
    client.on('conflictResolved', (c) => resolved.push(c));
    return { opened, resolved };
  }

  it('reports a stale offline write of a manual collection as a conflict and resolves it with merged data', async () => {
    const { token, a, b } = await twoDevices('stock');
    const atA = recordConflicts(a);
    const atB = recordConflicts(b);
    await a.collection('stock').put('p1', { qty: 5, sku: 'p1' });
    await waitFor(() => b.collection('stock').get('p1')?.version === 1, 'B to see p1');

    b.disconnect();
    expect(b.state).toBe('offline');
    await a.collection('stock').patch('p1', { qty: 7 });
    const write = b.collection('stock').patch('p1', { qty: 3 });
    expect(b.collection('stock').get('p1')?.data.qty).toBe(3); // optimistic while offline
    b.connect();
    const result = await write;
    expect(result).toMatchObject({ status: 'conflict', version: 2, error: { code: 'CONFLICT' } });
    // The conflict event came with the three versions; the cache shows the server's again.
    expect(atB.opened).toHaveLength(1);
    const conflict = atB.opened[0]!;
    expect(conflict).toMatchObject({
      id: result.conflictId,
      collection: 'stock',
      recordId: 'p1',
      status: 'open',
      base: { qty: 5, sku: 'p1' },
      server: { qty: 7, sku: 'p1' },
      client: { qty: 3, sku: 'p1' },
      deviceId: 'phone',
    });
    expect(b.collection('stock').get('p1')).toMatchObject({ data: { qty: 7 }, version: 2, pending: false });
    expect(b.conflicts().map((c) => c.id)).toEqual([conflict.id]);
    // The writer's other device hears of it too (conflicts go to the writer's connections).
    await waitFor(() => atA.opened.length === 1, 'A to hear of the conflict');

    const resolution = await b.resolve(conflict.id, 'merge', { qty: 4, sku: 'p1' });
    expect(resolution).toMatchObject({
      status: 'applied',
      version: 3,
      record: { data: { qty: 4, sku: 'p1' } },
    });
    // The cache took the resolution's record at once, and the other device converges.
    expect(b.collection('stock').get('p1')).toMatchObject({ data: { qty: 4 }, version: 3 });
    await waitFor(() => a.collection('stock').get('p1')?.version === 3, 'A to see the resolution');
    await waitFor(
      () => atA.resolved.length === 1 && atB.resolved.length === 1,
      'both to hear it was resolved',
    );
    expect(atB.resolved[0]).toMatchObject({ id: conflict.id, status: 'resolved', resolution: 'merge' });
    expect(b.conflicts()).toEqual([]);
    const server = await serverRecords(srv.url, token, 'stock');
    expect(server).toEqual({ p1: { qty: 4, sku: 'p1' } });
    expect(cachedRecords(a, 'stock')).toEqual(server);
    expect(cachedRecords(b, 'stock')).toEqual(server);
    // Resolving twice is refused with a typed error.
    await expect(b.resolve(conflict.id, 'accept_server')).rejects.toMatchObject({ code: 'CONFLICT' });
    await expect(b.resolve('no-such-conflict', 'accept_server')).rejects.toMatchObject({ code: 'NOT_FOUND' });
  });

  it('shows a conflict again when the record moved on before the resolve, and a handler resolves it', async () => {
    const { token, a, b } = await twoDevices('stock');
    const atB = recordConflicts(b);
    await a.collection('stock').put('p1', { qty: 1 });
    await waitFor(() => b.collection('stock').get('p1')?.version === 1, 'B to see p1');
    b.disconnect();
    await a.collection('stock').put('p1', { qty: 2 });
    const write = b.collection('stock').put('p1', { qty: 10 });
    b.connect();
    const { conflictId } = await write;
    // The record moves on again before B decides: B's resolve is refused and the conflict comes back.
    await a.collection('stock').put('p1', { qty: 3 });
    await waitFor(() => b.collection('stock').get('p1')?.version === 3, 'B to see version 3');
    const stale = await b.resolve(conflictId!, 'accept_local');
    expect(stale).toMatchObject({ status: 'rejected', error: { code: 'CONFLICT' } });
    await waitFor(() => atB.opened.length === 2, 'the conflict to be shown again');
    expect(atB.opened[1]).toMatchObject({ id: conflictId, serverVersion: 3, server: { qty: 3 } });

    // A handler added now gets the open conflict and takes the local side.
    const handled: string[] = [];
    b.onConflict(
      (c) => {
        handled.push(c.id);
        return { resolution: 'accept_local' };
      },
      { collection: 'stock' },
    );
    await waitFor(() => atB.resolved.length === 1, 'the handler’s resolution');
    expect(handled).toEqual([conflictId]);
    await waitFor(() => a.collection('stock').get('p1')?.data.qty === 10, 'A to see the local side win');
    expect(await serverRecords(srv.url, token, 'stock')).toEqual({ p1: { qty: 10 } });
    expect(b.collection('stock').get('p1')).toMatchObject({ data: { qty: 10 }, version: 4 });
  });

  it('reads a conflict over REST when the write is answered after a restart, without its conflict frame', async () => {
    const tenant = `c${++tenants}-${kind}`;
    const token = await mintToken(srv.url, tenant, 'alice');
    const post = (mid: string, data: object, baseVersion?: number) =>
      fetch(`${srv.url}/v1/mutations`, {
        method: 'POST',
        headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
        body: JSON.stringify({
          mutations: [{ mid, collection: 'stock', id: 'p1', op: 'put', data, baseVersion }],
        }),
      }).then((r) => r.json() as Promise<{ results: Array<{ status: string; conflictId?: string }> }>);
    await post('m1', { qty: 1 });
    await post('m2', { qty: 2 }, 1);
    // The device sent this write and crashed before the answer: the server stored the conflict.
    const queued = {
      mid: 'm3',
      collection: 'stock',
      id: 'p1',
      op: 'put' as const,
      data: { qty: 9 },
      baseVersion: 1,
    };
    const first = await post('m3', queued.data, 1);
    expect(first.results[0]).toMatchObject({ status: 'conflict' });
    const storage = new MemoryStorage();
    await storage.append([{ mid: 'm3', mutation: queued, queuedAt: new Date().toISOString() }]);
    const client = new SyncClient({
      url: srv.wsUrl,
      token,
      deviceId: 'phone',
      storage,
      backoff: FAST_BACKOFF,
    });
    clients.push(client);
    const opened: Conflict[] = [];
    client.on('conflict', (c) => opened.push(c));
    await client.flush();
    await waitFor(() => opened.length === 1, 'the conflict read over REST');
    expect(opened[0]).toMatchObject({
      id: first.results[0]!.conflictId,
      base: { qty: 1 },
      server: { qty: 2 },
      client: { qty: 9 },
    });
  });

  it('merges a stale offline edit of a merge collection, and every cache converges on the result', async () => {
    const { token, a, b } = await twoDevices('docs');
    await a.collection('docs').put('d1', { title: 'Plan', body: 'hello world', tags: ['a'] });
    await waitFor(() => b.collection('docs').get('d1')?.version === 1, 'B to see d1');
    b.disconnect();
    await a.collection('docs').patch('d1', { body: 'hello brave world' });
    const write = b.collection('docs').patch('d1', { title: 'Plan B', body: 'hello world!' });
    b.connect();
    const result = await write;
    expect(result.status).toBe('merged');
    const expected = { title: 'Plan B', body: 'hello brave world!', tags: ['a'] };
    expect(result.record?.data).toEqual(expected);
    expect(b.collection('docs').get('d1')).toMatchObject({ data: expected, version: 3, pending: false });
    await waitFor(() => a.collection('docs').get('d1')?.version === 3, 'A to see the merge');
    const server = await serverRecords(srv.url, token, 'docs');
    expect(server).toEqual({ d1: expected });
    expect(cachedRecords(a, 'docs')).toEqual(server);
    expect(cachedRecords(b, 'docs')).toEqual(server);
  });
});
