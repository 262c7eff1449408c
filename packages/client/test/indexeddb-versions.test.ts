/**
 * IndexedDbStorage and the database's versions: a version 3 database (buckets holding arrays of
 * records) is upgraded to version 4 (each bucket's records as one JSON text) with its queue, records and
 * cursors; and another tab's connection is handled: an older version still open blocks the upgrade,
 * which is reported and goes on once that connection closes; a newer version's upgrade from elsewhere
 * closes this storage's connection at once (so it is not blocked), is reported, and later calls fail
 * with STORAGE. fake-indexeddb here; browser.test.ts shows the same two cases in Chromium.
 */
import { IDBFactory } from 'fake-indexeddb';
import { describe, expect, it } from 'vitest';
import { type IdbFactory, IndexedDbStorage, SyncClient, type SyncClientError } from '../src/index.ts';

type RawDb =
  InstanceType<typeof IDBFactory> extends { open(...args: never[]): infer R }
    ? R extends { result: infer D }
      ? D
      : never
    : never;

function openRaw(
  indexedDB: InstanceType<typeof IDBFactory>,
  version: number,
  upgrade?: (db: RawDb) => void,
): Promise<RawDb> {
  return new Promise((resolve, reject) => {
    const request = indexedDB.open('app', version);
    request.onupgradeneeded = () => upgrade?.(request.result);
    request.onsuccess = () => resolve(request.result);
    request.onerror = () => reject(request.error);
  });
}

describe('IndexedDbStorage versions', () => {
  it('turns a version 3 database (buckets of arrays) into version 4, keeping queue, records and cursors', async () => {
    const indexedDB = new IDBFactory();
    const v3 = await openRaw(indexedDB, 3, (db) => {
      db.createObjectStore('mutations', { keyPath: 'position' }).put({
        mid: 'm1',
        mutation: { mid: 'm1', collection: 'todos', id: 'a', op: 'put', data: { t: 1 } },
        queuedAt: '2026-12-07T00:00:00.000Z',
        position: 1,
      });
      const buckets = db.createObjectStore('record_buckets', { keyPath: 'key' });
      buckets.put({
        key: 'todos\u00007',
        collection: 'todos',
        records: [
          ['a', 2, 5, { t: 'a' }],
          ['b', 3, 6, null],
        ],
      });
      buckets.put({ key: 'notes\u00001', collection: 'notes', records: [['n', 1, 4, { body: 'x' }]] });
      db.createObjectStore('channels', { keyPath: 'channel' }).put({
        channel: 'records:todos',
        cursor: 6,
        usedAt: 1,
      });
      db.createObjectStore('meta', { keyPath: 'key' }).put({ key: 'replica', scope: 'alice', schema: 1 });
    });
    v3.close();

    const storage = new IndexedDbStorage({ indexedDB: indexedDB as unknown as IdbFactory, name: 'app' });
    expect((await storage.load()).map((e) => e.mid)).toEqual(['m1']);
    const state = await storage.loadReplica('alice');
    const byId = (id: string) => state.records.find((r) => r.id === id);
    expect(state.records).toHaveLength(3);
    expect(byId('a')).toEqual({ collection: 'todos', id: 'a', version: 2, seq: 5, data: { t: 'a' } });
    expect(byId('b')).toEqual({ collection: 'todos', id: 'b', version: 3, seq: 6, data: null });
    expect(byId('n')).toEqual({ collection: 'notes', id: 'n', version: 1, seq: 4, data: { body: 'x' } });
    expect(state.channels).toEqual([{ channel: 'records:todos', cursor: 6, usedAt: 1 }]);
    await storage.close();

    // Stored as text now: the rows hold a string, not the records' objects.
    const v4 = await openRaw(indexedDB, 4);
    const rows = await new Promise<Array<Record<string, unknown>>>((resolve, reject) => {
      const request = v4.transaction('record_buckets').objectStore('record_buckets').getAll();
      request.onsuccess = () => resolve(request.result as Array<Record<string, unknown>>);
      request.onerror = () => reject(request.error);
    });
    expect(rows.map((r) => [typeof r.text, 'records' in r])).toEqual([
      ['string', false],
      ['string', false],
    ]);
    v4.close();
  });

  it('reports an older version held open by another tab, and opens once that tab lets go', async () => {
    const indexedDB = new IDBFactory();
    const older = await openRaw(indexedDB, 3, (db) => {
      db.createObjectStore('mutations', { keyPath: 'position' });
    });
    const errors: SyncClientError[] = [];
    const storage = new IndexedDbStorage({ indexedDB: indexedDB as unknown as IdbFactory, name: 'app' });
    const client = new SyncClient({
      url: 'ws://127.0.0.1:9/v1/realtime',
      token: 't',
      replicaKey: 'alice',
      storage,
      autoConnect: false,
    });
    client.on('error', (e) => errors.push(e));
    let loaded = false;
    const whenLoaded = client.whenLoaded().then(() => {
      loaded = true;
    });
    await expect.poll(() => errors.length).toBe(1);
    expect(errors[0]).toMatchObject({ code: 'STORAGE', details: { reason: 'blocked', oldVersion: 3 } });
    expect(loaded).toBe(false);
    older.close();
    await whenLoaded;
    await client.close();
  });

  it('closes at once when a newer version upgrades the database elsewhere, reports it, then refuses calls', async () => {
    const indexedDB = new IDBFactory();
    const errors: SyncClientError[] = [];
    const storage = new IndexedDbStorage({
      indexedDB: indexedDB as unknown as IdbFactory,
      name: 'app',
      onError: (e) => errors.push(e),
    });
    await storage.load();
    // The newer version's open is not blocked: this storage closes its connection on versionchange.
    const newer = await openRaw(indexedDB, 5);
    expect(errors).toHaveLength(1);
    expect(errors[0]).toMatchObject({
      code: 'STORAGE',
      details: { reason: 'versionchange', version: 4, newVersion: 5 },
    });
    await expect(storage.append([])).rejects.toMatchObject({
      code: 'STORAGE',
      details: { reason: 'versionchange' },
    });
    newer.close();
    await storage.close();
  });
});
