/**
 * Writes are on the device before anything else happens: `close()` called at once after two writes,
 * with the server down, keeps both in the storage (FileStorage and IndexedDbStorage), and a client
 * started again on it reports them once `whenLoaded()` resolves; `persisted()` resolves once every
 * queued write is stored; a mutation reaches the server only after it is stored.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { IDBFactory } from 'fake-indexeddb';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  FileStorage,
  type IdbFactory,
  IndexedDbStorage,
  type QueueStorage,
  SyncClient,
} from '../src/index.ts';
import { FakeServer } from './fake-server.ts';
import { deadPort, FAST_BACKOFF, waitFor } from './helpers.ts';

describe('durable writes', () => {
  let dir: string;
  const clients: SyncClient[] = [];

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'syncbridge-durable-'));
  });
  afterEach(async () => {
    await Promise.all(clients.splice(0).map((c) => c.close()));
    rmSync(dir, { recursive: true, force: true });
  });

  async function offlineClient(storage: QueueStorage): Promise<SyncClient> {
    const c = new SyncClient({
      url: `ws://127.0.0.1:${await deadPort()}/v1/realtime`,
      token: 'unused',
      storage,
      backoff: FAST_BACKOFF,
    });
    clients.push(c);
    return c;
  }

  const storages: Array<[string, () => () => QueueStorage]> = [
    [
      'FileStorage',
      () => {
        const path = join(dir, 'queue.json');
        return () => new FileStorage(path);
      },
    ],
    [
      'IndexedDbStorage',
      () => {
        const indexedDB = new IDBFactory() as unknown as IdbFactory;
        return () => new IndexedDbStorage({ indexedDB, name: 'app' });
      },
    ],
  ];

  for (const [name, factory] of storages) {
    it(`keeps a put and a patch made just before close() (${name}, server down)`, async () => {
      const open = factory();
      const first = await offlineClient(open());
      const todos = first.collection('todos');
      const put = todos.put('t1', { title: 'a' });
      const patch = todos.patch('t1', { done: true });
      await first.close();
      await expect(put).rejects.toMatchObject({ code: 'CLOSED' });
      await expect(patch).rejects.toMatchObject({ code: 'CLOSED' });

      const second = await offlineClient(open());
      await second.whenLoaded();
      expect(second.pendingCount()).toBe(2);
      expect(second.collection('todos').get('t1')).toMatchObject({
        data: { title: 'a', done: true },
        pending: true,
      });
    });
  }

  it('persisted() resolves once every queued write is in the file', async () => {
    const path = join(dir, 'queue.json');
    const c = await offlineClient(new FileStorage(path));
    const writes = Array.from({ length: 5 }, (_, i) => c.collection('todos').put(`t${i}`, { i }));
    for (const w of writes) w.catch(() => undefined);
    await c.persisted();
    const reopened = new FileStorage(path);
    expect((await reopened.load()).map((e) => e.mutation.id)).toEqual(['t0', 't1', 't2', 't3', 't4']);
    await reopened.close();
  });

  it('sends a mutation only once it is stored', async () => {
    const fake = await FakeServer.start();
    const path = join(dir, 'queue.json');
    const storedWhenSent: string[][] = [];
    fake.onMessage((m, reply) => {
      if (m.type !== 'mutate') return;
      const stored = readFileSync(path, 'utf8');
      storedWhenSent.push(m.mutations.filter((x) => !stored.includes(x.mid)).map((x) => x.mid));
      reply({
        type: 'results',
        rid: m.rid,
        results: m.mutations.map((x) => ({ mid: x.mid, status: 'applied', version: 1 })),
      });
    });
    try {
      const c = new SyncClient({
        url: fake.url,
        token: 't',
        storage: new FileStorage(path),
        backoff: FAST_BACKOFF,
      });
      clients.push(c);
      await c.whenOpen(5000);
      await Promise.all([c.collection('todos').put('a', { n: 1 }), c.collection('todos').put('b', { n: 2 })]);
      await waitFor(() => storedWhenSent.length > 0, 'a mutate');
      expect(storedWhenSent.flat()).toEqual([]);
    } finally {
      await Promise.all(clients.splice(0).map((c) => c.close()));
      await fake.close();
    }
  });
});
