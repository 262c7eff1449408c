/**
 * The storages' local schema and what a crash can leave: FileStorage ignores a torn last line (never
 * acknowledged) but refuses a damaged line before it and a newer format, reads a version 1 queue file and
 * rewrites it, drops a replica of another schema version while keeping the queue, and compacts a log that
 * has outgrown its content. IndexedDbStorage opens a version 1 database (queue only) and keeps its queue.
 */
import { appendFileSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { IDBFactory } from 'fake-indexeddb';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { FileStorage, type IdbFactory, IndexedDbStorage, type QueuedMutation } from '../src/index.ts';

function queued(mid: string): QueuedMutation {
  return {
    mid,
    mutation: { mid, collection: 'todos', id: mid, op: 'put', data: { mid } },
    queuedAt: '2026-12-07T00:00:00.000Z',
  };
}

const write = (id: string, cursor: number) => ({
  records: [{ collection: 'todos', id, data: { id }, version: 1, seq: cursor }],
  forget: [],
  channels: [{ channel: 'records:todos', cursor, usedAt: 1 }],
  dropChannels: [],
});

describe('FileStorage format', () => {
  let dir: string;
  let path: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'syncbridge-format-'));
    path = join(dir, 'client.log');
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  async function reopen(): Promise<FileStorage> {
    const storage = new FileStorage(path);
    await storage.load();
    return storage;
  }

  it('ignores a torn last line, and keeps everything acknowledged before it', async () => {
    const storage = await reopen();
    await storage.append([queued('a')]);
    await storage.loadReplica('alice');
    await storage.writeReplica('alice', write('r1', 5));
    await storage.close();
    appendFileSync(path, '{"q":[{"mid":"b","mutat'); // a crash in the middle of an append

    const again = await reopen();
    expect((await again.load()).map((e) => e.mid)).toEqual(['a']);
    expect(await again.loadReplica('alice')).toMatchObject({
      records: [{ id: 'r1' }],
      channels: [{ channel: 'records:todos', cursor: 5 }],
    });
    await again.append([queued('c')]);
    await again.close();
    expect((await (await reopen()).load()).map((e) => e.mid)).toEqual(['a', 'c']);
  });

  it('refuses a damaged line before the last one, and a newer format, leaving the file alone', async () => {
    const storage = await reopen();
    await storage.append([queued('a')]);
    await storage.close();
    const good = readFileSync(path, 'utf8');
    writeFileSync(path, `${good}{"q":[{"mid\n{"d":["a"]}\n`);
    await expect(new FileStorage(path).load()).rejects.toMatchObject({ code: 'STORAGE', message: /line 3/ });
    writeFileSync(path, '{"format":"syncbridge-client-storage","version":9,"replicaSchema":1}\n');
    await expect(new FileStorage(path).load()).rejects.toMatchObject({
      code: 'STORAGE',
      message: /version 9/,
    });
    expect(readFileSync(path, 'utf8')).toContain('"version":9');
  });

  it('reads a version 1 queue file and rewrites it in the log format', async () => {
    writeFileSync(path, JSON.stringify({ version: 1, entries: [queued('old1'), queued('old2')] }));
    const storage = await reopen();
    expect((await storage.load()).map((e) => e.mid)).toEqual(['old1', 'old2']);
    await storage.remove(['old1']);
    await storage.close();
    expect(readFileSync(path, 'utf8').split('\n')[0]).toBe(
      '{"format":"syncbridge-client-storage","version":3,"replicaSchema":1}',
    );
    expect((await (await reopen()).load()).map((e) => e.mid)).toEqual(['old2']);
  });

  it('reads a version 2 log (one array per record) and rewrites it in columns, keeping queue, records and cursors', async () => {
    // What the SDK before format version 3 wrote: a queue, a scope, record rows, an update, a forget.
    const v2 = [
      '{"format":"syncbridge-client-storage","version":2,"replicaSchema":1}',
      JSON.stringify({ q: [queued('w1'), queued('w2')] }),
      '{"scope":"alice"}',
      JSON.stringify({
        r: [
          ['todos', 't1', 1, 4, { title: 'a' }],
          ['todos', 't2', 1, 4, { title: 'b' }],
          ['notes', 'n1', 2, 4, null],
          ['todos', 't3', 1, 4, { title: 'c' }],
        ],
        c: [['records:todos', 4, 100]],
      }),
      JSON.stringify({
        r: [['todos', 't2', 2, 6, { title: 'b2' }]],
        f: [['todos', 't3']],
        c: [['records:todos', 6, 200]],
      }),
      JSON.stringify({ d: ['w1'] }),
      '',
    ].join('\n');
    writeFileSync(path, v2);
    const expected = {
      records: [
        { collection: 'todos', id: 't1', version: 1, seq: 4, data: { title: 'a' } },
        { collection: 'todos', id: 't2', version: 2, seq: 6, data: { title: 'b2' } },
        { collection: 'notes', id: 'n1', version: 2, seq: 4, data: null },
      ],
      channels: [{ channel: 'records:todos', cursor: 6, usedAt: 200 }],
    };
    const storage = await reopen();
    expect((await storage.load()).map((e) => e.mid)).toEqual(['w2']);
    expect(await storage.loadReplica('alice')).toEqual(expected);
    expect(readFileSync(path, 'utf8')).toBe(v2); // read only: the file changes at the next write
    await storage.append([queued('w3')]);
    await storage.close();

    const lines = readFileSync(path, 'utf8').trim().split('\n');
    expect(lines[0]).toBe('{"format":"syncbridge-client-storage","version":3,"replicaSchema":1}');
    expect(lines.some((l) => l.startsWith('{"r"'))).toBe(false);
    // Version 3: ids, versions and seqs by collection, then the data, one tab-separated part per group.
    expect(lines).toContain(
      `${JSON.stringify({
        g: [
          ['todos', ['t1', 't2'], [1, 2], [4, 6]],
          ['notes', ['n1'], [2], [4]],
        ],
      })}\t${JSON.stringify([[{ title: 'a' }, { title: 'b2' }]])}\t${JSON.stringify([[null]])}`,
    );
    const again = await reopen();
    expect((await again.load()).map((e) => e.mid)).toEqual(['w2', 'w3']);
    expect(await again.loadReplica('alice')).toEqual(expected);
    await again.writeReplica('alice', write('t9', 9));
    await again.close();
    const last = await reopen();
    const state = await last.loadReplica('alice');
    expect(state.records.map((r) => r.id)).toEqual(['t1', 't2', 't9', 'n1']);
    expect(state.channels).toEqual([{ channel: 'records:todos', cursor: 9, usedAt: 1 }]);
    await last.close();
  });

  it('drops a replica of another schema version and keeps the queue', async () => {
    const storage = await reopen();
    await storage.append([queued('a')]);
    await storage.loadReplica('alice');
    await storage.writeReplica('alice', write('r1', 5));
    await storage.close();
    const text = readFileSync(path, 'utf8').replace('"replicaSchema":1', '"replicaSchema":0');
    writeFileSync(path, text);
    const again = await reopen();
    expect((await again.load()).map((e) => e.mid)).toEqual(['a']);
    expect(await again.loadReplica('alice')).toEqual({ records: [], channels: [] });
  });

  it('compacts a log that has outgrown its content', async () => {
    const storage = await reopen();
    await storage.loadReplica('alice');
    const text = 'x'.repeat(2000);
    for (let round = 0; round < 6; round++) {
      const records = Array.from({ length: 500 }, (_, i) => ({
        collection: 'docs',
        id: `d${i}`,
        data: { text, round },
        version: round + 1,
        seq: round * 500 + i,
      }));
      await storage.writeReplica('alice', { records, forget: [], channels: [], dropChannels: [] });
    }
    await storage.close();
    // Six rounds of ~1 MB over the same 500 records: compacted at least once, so well below 6 MB.
    expect(statSync(path).size).toBeLessThan(5 * 1024 * 1024);
    const state = await (await reopen()).loadReplica('alice');
    expect(state.records).toHaveLength(500);
    expect(state.records.every((r) => r.data?.round === 5)).toBe(true);
  });
});

describe('IndexedDbStorage schema', () => {
  it('opens a version 1 database (queue only), keeps its queue and adds the replica', async () => {
    const indexedDB = new IDBFactory();
    await new Promise<void>((resolve, reject) => {
      const request = indexedDB.open('app', 1);
      request.onupgradeneeded = () => {
        const store = request.result.createObjectStore('mutations', { keyPath: 'position' });
        store.put({ ...queued('v1'), position: 1 });
      };
      request.onsuccess = () => {
        request.result.close();
        resolve();
      };
      request.onerror = () => reject(request.error);
    });
    const storage = new IndexedDbStorage({ indexedDB: indexedDB as unknown as IdbFactory, name: 'app' });
    expect((await storage.load()).map((e) => e.mid)).toEqual(['v1']);
    expect(await storage.loadReplica('alice')).toEqual({ records: [], channels: [] });
    await storage.writeReplica('alice', write('r1', 3));
    expect(await storage.loadReplica('alice')).toMatchObject({ records: [{ id: 'r1' }] });
    expect(await storage.loadReplica('bob')).toEqual({ records: [], channels: [] });
    expect(await storage.loadReplica('alice')).toEqual({ records: [], channels: [] });
    await storage.close();
  });

  it('moves a version 2 database (one row per record) into buckets, keeping its queue, records and cursors', async () => {
    const indexedDB = new IDBFactory();
    await new Promise<void>((resolve, reject) => {
      const request = indexedDB.open('app', 2);
      request.onupgradeneeded = () => {
        const db = request.result;
        db.createObjectStore('mutations', { keyPath: 'position' }).put({ ...queued('v2'), position: 1 });
        const records = db.createObjectStore('records', { keyPath: 'key' });
        for (let i = 0; i < 1500; i++) {
          const id = `r${i}`;
          records.put({ key: `todos\u0000${id}`, collection: 'todos', id, data: { i }, version: 2, seq: 7 });
        }
        records.put({ key: 'notes\u0000n1', collection: 'notes', id: 'n1', data: null, version: 3, seq: 7 });
        db.createObjectStore('channels', { keyPath: 'channel' }).put({
          channel: 'records:todos',
          cursor: 7,
          usedAt: 1,
        });
        db.createObjectStore('meta', { keyPath: 'key' }).put({ key: 'replica', scope: 'alice', schema: 1 });
      };
      request.onsuccess = () => {
        request.result.close();
        resolve();
      };
      request.onerror = () => reject(request.error);
    });
    const storage = new IndexedDbStorage({ indexedDB: indexedDB as unknown as IdbFactory, name: 'app' });
    expect((await storage.load()).map((e) => e.mid)).toEqual(['v2']);
    const state = await storage.loadReplica('alice');
    expect(state.channels).toEqual([{ channel: 'records:todos', cursor: 7, usedAt: 1 }]);
    expect(state.records).toHaveLength(1501);
    expect(state.records.find((r) => r.id === 'r1499')).toEqual({
      collection: 'todos',
      id: 'r1499',
      data: { i: 1499 },
      version: 2,
      seq: 7,
    });
    expect(state.records.find((r) => r.id === 'n1')).toMatchObject({ collection: 'notes', data: null });
    // Writes after the move change one record in its bucket and leave the others alone.
    await storage.writeReplica('alice', {
      records: [{ collection: 'todos', id: 'r5', data: { i: -5 }, version: 3, seq: 8 }],
      forget: [['todos', 'r6']],
      channels: [{ channel: 'records:todos', cursor: 8, usedAt: 2 }],
      dropChannels: [],
    });
    await storage.close();
    const again = new IndexedDbStorage({ indexedDB: indexedDB as unknown as IdbFactory, name: 'app' });
    const after = await again.loadReplica('alice');
    expect(after.records).toHaveLength(1500);
    expect(after.records.find((r) => r.id === 'r5')).toMatchObject({ data: { i: -5 }, version: 3, seq: 8 });
    expect(after.records.find((r) => r.id === 'r6')).toBeUndefined();
    expect(after.records.find((r) => r.id === 'r7')).toMatchObject({ data: { i: 7 }, version: 2 });
    expect(after.channels).toEqual([{ channel: 'records:todos', cursor: 8, usedAt: 2 }]);
    await again.close();
  });
});
