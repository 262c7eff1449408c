/**
 * The offline replica, against the real server: a client started again on the same storage with the
 * server down shows the last records at once (`source: 'storage'`) with its queued writes on top; once
 * the server is back each channel resumes from its stored cursor (backlog only, never a snapshot) and
 * ends equal to the server; a token of another user never sees the previous user's records or writes;
 * past the size limit the least recently used channel is evicted (never a queued write). Exact subscribe
 * messages are checked on the protocol-level fake server.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { SyncRecord } from '@syncbridge/protocol';
import { IDBFactory } from 'fake-indexeddb';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { startTestServer, type TestServer } from '../../server/test/helpers/server.ts';
import {
  type ChangeSource,
  FileStorage,
  type IdbFactory,
  IndexedDbStorage,
  MemoryStorage,
  type QueueStorage,
  SyncClient,
  type SyncClientOptions,
} from '../src/index.ts';
import { FakeServer } from './fake-server.ts';
import { cachedRecords, FAST_BACKOFF, mintToken, serverRecords, waitFor } from './helpers.ts';

async function rest(srv: TestServer, token: string, method: string, path: string, body?: unknown) {
  const res = await fetch(`${srv.url}${path}`, {
    method,
    headers: {
      authorization: `Bearer ${token}`,
      ...(body === undefined ? {} : { 'content-type': 'application/json' }),
    },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (!res.ok) throw new Error(`${method} ${path}: HTTP ${res.status} ${await res.text()}`);
  return res.json() as Promise<unknown>;
}

describe('offline replica (real server)', () => {
  let dir: string;
  let srv: TestServer | null = null;
  const clients: SyncClient[] = [];

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'syncbridge-replica-'));
  });
  afterEach(async () => {
    await Promise.all(clients.splice(0).map((c) => c.close()));
    await srv?.close();
    srv = null;
    rmSync(dir, { recursive: true, force: true });
  });

  function client(options: SyncClientOptions): SyncClient {
    const c = new SyncClient({ backoff: FAST_BACKOFF, ...options });
    clients.push(c);
    return c;
  }

  const storages: Array<[string, () => () => QueueStorage]> = [
    ['FileStorage', () => () => new FileStorage(join(dir, 'client.log'))],
    [
      'IndexedDbStorage',
      () => {
        const indexedDB = new IDBFactory() as unknown as IdbFactory;
        return () => new IndexedDbStorage({ indexedDB, name: 'app' });
      },
    ],
  ];

  for (const [name, factory] of storages) {
    it(`starts offline with the last records and its queued writes, then resumes by backlog only (${name})`, async () => {
      const open = factory();
      srv = await startTestServer('sqlite');
      const token = await mintToken(srv.url, 'acme', 'alice');
      for (const id of ['t1', 't2', 't3'])
        await rest(srv, token, 'PUT', `/v1/records/todos/${id}`, { title: id, done: false });

      const first = client({ url: srv.wsUrl, token, storage: open() });
      first.collection('todos').subscribe(() => undefined);
      await first.whenOpen(5000);
      await waitFor(() => first.collection('todos').list().length === 3, 'the snapshot');
      const port = Number(new URL(srv.url).port);
      const serverStorage = srv.storage;
      await srv.close({ keepData: true });
      srv = null;
      await waitFor(() => first.state !== 'open', 'the client to go offline');
      void first
        .collection('todos')
        .patch('t1', { done: true })
        .catch(() => undefined);
      await first.close();

      // Started again with the server down: the last data at once, the queued patch on top.
      const second = client({ url: `ws://127.0.0.1:${port}/v1/realtime`, token, storage: open() });
      const calls: Array<{ source: ChangeSource; ids: string[] }> = [];
      second.collection<{ title: string; done: boolean }>('todos').subscribe((records, change) => {
        calls.push({ source: change.source, ids: records.map((r) => r.id) });
      });
      await second.whenLoaded();
      expect(second.pendingCount()).toBe(1);
      expect(second.collection('todos').get('t1')).toMatchObject({
        data: { title: 't1', done: true },
        version: 1,
        pending: true,
      });
      await waitFor(() => calls.length > 0, 'the first render');
      expect(calls[0]).toEqual({ source: 'storage', ids: ['t1', 't2', 't3'] });

      // While it was away: two changes and a delete by someone else.
      srv = await startTestServer('sqlite', { port }, serverStorage);
      await rest(srv, token, 'PATCH', '/v1/records/todos/t2', { title: 't2 edited' });
      await rest(srv, token, 'PUT', '/v1/records/todos/t4', { title: 't4', done: false });
      await rest(srv, token, 'DELETE', '/v1/records/todos/t3');
      await second.flush();
      const expected = await serverRecords(srv.url, token, 'todos');
      expect(expected).toMatchObject({ t1: { done: true }, t2: { title: 't2 edited' }, t4: { title: 't4' } });
      await waitFor(
        () => JSON.stringify(cachedRecords(second, 'todos')) === JSON.stringify(expected),
        'the cache to catch up',
        10_000,
        () => cachedRecords(second, 'todos'),
      );
      expect(calls.map((c) => c.source)).not.toContain('snapshot');
    });
  }

  it('never shows one user’s records or queued writes to another user’s token', async () => {
    srv = await startTestServer('sqlite');
    const alice = await mintToken(srv.url, 'acme', 'alice');
    const bob = await mintToken(srv.url, 'acme', 'bob');
    const otherTenant = await mintToken(srv.url, 'globex', 'alice');
    const path = join(dir, 'client.log');
    await rest(srv, alice, 'PUT', '/v1/records/notes/n1', { text: 'alice’s note' });

    const a = client({ url: srv.wsUrl, token: alice, storage: new FileStorage(path) });
    a.collection('notes').subscribe(() => undefined);
    await waitFor(() => a.collection('notes').get('n1') !== undefined, 'alice’s note');
    const port = Number(new URL(srv.url).port);
    await srv.close();
    srv = null;
    await waitFor(() => a.state !== 'open', 'offline');
    void a
      .collection('notes')
      .put('n2', { text: 'alice offline' })
      .catch(() => undefined);
    await a.close();

    const offlineUrl = `ws://127.0.0.1:${port}/v1/realtime`;
    for (const token of [bob, otherTenant]) {
      const other = client({ url: offlineUrl, token, storage: new FileStorage(path) });
      const seen: string[] = [];
      other.collection('notes').subscribe((records) => seen.push(...records.map((r) => r.id)));
      await other.whenLoaded();
      await new Promise((r) => setTimeout(r, 50));
      expect(other.collection('notes').list()).toEqual([]);
      expect(other.pendingCount()).toBe(0);
      expect(seen).toEqual([]);
      await other.close();
    }

    // Alice's queued write waited for her; her replica was wiped when another user opened the storage.
    const again = client({ url: offlineUrl, token: alice, storage: new FileStorage(path) });
    await again.whenLoaded();
    expect(again.pendingCount()).toBe(1);
    expect(
      again
        .collection('notes')
        .list()
        .map((r) => r.id),
    ).toEqual(['n2']);
  });
});

describe('offline replica (fake server)', () => {
  let fake: FakeServer;
  const clients: SyncClient[] = [];

  beforeEach(async () => {
    fake = await FakeServer.start();
  });
  afterEach(async () => {
    await Promise.all(clients.splice(0).map((c) => c.close()));
    await fake.close();
  });

  function record(collection: string, id: string, data: Record<string, unknown>, version = 1): SyncRecord {
    return {
      collection,
      id,
      data,
      version,
      hlc: '000000000000001-0000-x',
      updatedAt: '',
      updatedBy: 'bob',
      deleted: false,
    };
  }

  /** Answers every subscribe with a snapshot of `records` at `cursor` (or the backlog when `since` is given). */
  function serve(records: (channel: string) => SyncRecord[], cursor: number): void {
    fake.onMessage((m, reply) => {
      if (m.type === 'unsubscribe') reply({ type: 'unsubscribed', rid: m.rid, channel: m.channel });
      if (m.type !== 'subscribe') return;
      reply({ type: 'subscribed', rid: m.rid, channel: m.channel, cursor });
      if (m.snapshot)
        reply({ type: 'snapshot', channel: m.channel, records: records(m.channel), cursor, done: true });
    });
  }

  function started(storage: QueueStorage, extra: Partial<SyncClientOptions> = {}): SyncClient {
    const c = new SyncClient({
      url: fake.url,
      token: 't',
      replicaKey: 'alice',
      storage,
      backoff: FAST_BACKOFF,
      ...extra,
    });
    clients.push(c);
    return c;
  }

  const subscribes = (connection: number) =>
    fake
      .messages('subscribe')
      .filter((m) => m.connection === connection)
      .map(({ channel, since, snapshot }) => ({ channel, since, snapshot }));

  it('resumes every channel from its stored cursor, records and events, with no snapshot', async () => {
    serve((channel) => (channel.startsWith('records:todos') ? [record('todos', 'a', { n: 1 })] : []), 7);
    const storage = new FileStorage(join(mkdtempSync(join(tmpdir(), 'syncbridge-replica-')), 'c.log'));
    const first = started(storage);
    first.collection('todos').subscribe(() => undefined);
    first.events('audit').subscribe(() => undefined);
    await first.whenOpen(5000);
    await first.close();
    expect(subscribes(1)).toEqual([
      { channel: 'records:todos', since: undefined, snapshot: true },
      { channel: 'events:audit', since: undefined, snapshot: undefined },
    ]);

    const second = started(new FileStorage(storage.path));
    second.collection('todos').subscribe(() => undefined);
    second.events('audit').subscribe(() => undefined);
    await second.whenOpen(5000);
    expect(subscribes(2)).toEqual([
      { channel: 'records:todos', since: 7, snapshot: undefined },
      { channel: 'events:audit', since: 7, snapshot: undefined },
    ]);
    expect(second.collection('todos').get('a')).toMatchObject({ data: { n: 1 }, version: 1 });
  });

  it('keeps a channel unsubscribed right after its snapshot, and resumes it next time', async () => {
    serve(() => [record('todos', 'a', { n: 1 })], 4);
    const storage = new MemoryStorage();
    const first = started(storage);
    await new Promise<void>((resolve) => {
      const off = first.collection('todos').subscribe((records) => {
        if (records.length === 0) return;
        off(); // before the replica's debounced write
        resolve();
      });
    });
    await first.close();

    const second = started(storage);
    await second.whenLoaded();
    expect(second.collection('todos').get('a')).toMatchObject({ data: { n: 1 }, version: 1 });
    second.collection('todos').subscribe(() => undefined);
    await second.whenOpen(5000);
    expect(subscribes(2)).toEqual([{ channel: 'records:todos', since: 4, snapshot: undefined }]);
  });

  it('never stores a cursor past a server update held back for a write in flight', async () => {
    fake.onMessage((m, reply, connection) => {
      if (m.type === 'subscribe') {
        reply({ type: 'subscribed', rid: m.rid, channel: m.channel, cursor: 3 });
        if (m.snapshot) {
          reply({
            type: 'snapshot',
            channel: m.channel,
            records: [record('todos', 'a', { n: 1 })],
            cursor: 3,
            done: true,
          });
        }
      }
      if (m.type === 'mutate' && connection === 1) {
        // Another client's change to the same record arrives while our write waits for its result.
        reply({
          type: 'event',
          channel: 'records:todos',
          seq: 4,
          eventId: 'e4',
          kind: 'record',
          collection: 'todos',
          id: 'a',
          op: 'patch',
          version: 2,
          data: { n: 1, by: 'bob' },
          actor: 'bob',
          ts: '',
        });
      }
    });
    const storage = new MemoryStorage();
    const first = started(storage);
    const todos = first.collection('todos');
    todos.subscribe(() => undefined);
    await waitFor(() => todos.get('a') !== undefined, 'the snapshot');
    void todos.patch('a', { mine: true }).catch(() => undefined);
    await waitFor(() => fake.messages('mutate').length === 1, 'the write to be sent');
    await new Promise((r) => setTimeout(r, 100));
    await first.close(); // before the write's result: seq 4 is held back, not applied

    const second = started(storage);
    second.collection('todos').subscribe(() => undefined);
    await waitFor(() => subscribes(2).length === 1, 'the resubscribe');
    expect(subscribes(2)).toEqual([{ channel: 'records:todos', since: 3, snapshot: undefined }]);
  });

  it('evicts the least recently used channel past the size limit, never a queued write', async () => {
    const big = (prefix: string) =>
      Array.from({ length: 20 }, (_, i) => record(prefix, `${prefix}${i}`, { text: 'x'.repeat(500) }));
    serve((channel) => big(channel.slice('records:'.length)), 3);
    const storage = new MemoryStorage();
    const first = started(storage, { replicaMaxBytes: 15_000, autoConnect: false });
    void first
      .collection('drafts')
      .put('d1', { text: 'queued' })
      .catch(() => undefined);
    const offOld = first.collection('old').subscribe(() => undefined);
    first.connect();
    // The queued write gets no answer (it stays queued), so the client stays `syncing`.
    await waitFor(() => first.collection('old').list().length === 20, 'the first snapshot');
    await first.persisted();
    offOld();
    first.collection('recent').subscribe(() => undefined);
    await waitFor(() => first.collection('recent').list().length === 20, 'the second snapshot');
    await first.persisted();
    await first.close();

    const second = started(storage, { autoConnect: false });
    await second.whenLoaded();
    expect(second.pendingCount()).toBe(1);
    expect(second.collection('old').list()).toEqual([]);
    expect(second.collection('recent').list()).toHaveLength(20);
  });
});
