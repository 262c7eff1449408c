/**
 * `replicaFirstPage`: a client opened offline on a large replica shows each collection's first page (the
 * smallest ids, with the records its queued writes touch) in the first `storage` change, then the rest
 * in one more before `whenLoaded()` resolves. A write, or `close()`, while only the first page is in the
 * cache restores the rest first, so the write builds on the stored version and nothing stored is lost.
 * On real FileStorage files (and IndexedDbStorage, where the client splits); records are stored out of
 * id order, updated and forgotten in later lines.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { IDBFactory } from 'fake-indexeddb';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { splitFirstPage } from '../src/first-page.ts';
import {
  type CachedRecord,
  type CollectionChange,
  FileStorage,
  type IdbFactory,
  IndexedDbStorage,
  type QueuedMutation,
  type StoredRecord,
  SyncClient,
} from '../src/index.ts';
import { deadPort } from './helpers.ts';

const KEY = 'alice';
const SCOPE = JSON.stringify(['key', KEY]);
const COUNT = 1000;
const id = (i: number) => `r${String(i).padStart(4, '0')}`;

/** 1,000 records written in a shuffled order in four lines, then r0003 updated and r0005 forgotten. */
async function fill(path: string, queued: QueuedMutation[] = []): Promise<void> {
  await fillStorage(new FileStorage(path), queued);
}

async function fillStorage(storage: FileStorage | IndexedDbStorage, queued: QueuedMutation[]): Promise<void> {
  await storage.load();
  await storage.loadReplica(SCOPE);
  const order = Array.from({ length: COUNT }, (_, i) => (i * 7919) % COUNT);
  const records: StoredRecord[] = order.map((i) => ({
    collection: 'items',
    id: id(i),
    data: { n: i },
    version: 1,
    seq: 10,
  }));
  for (let start = 0; start < COUNT; start += 250) {
    await storage.writeReplica(SCOPE, {
      records: records.slice(start, start + 250),
      forget: [],
      channels: [],
      dropChannels: [],
    });
  }
  await storage.writeReplica(SCOPE, {
    records: [{ collection: 'items', id: id(3), data: { n: 3, again: true }, version: 2, seq: 11 }],
    forget: [['items', id(5)]],
    channels: [{ channel: 'records:items', cursor: 11, usedAt: 1 }],
    dropChannels: [],
  });
  if (queued.length > 0) await storage.append(queued);
  await storage.close();
}

function queuedPatch(recordId: string): QueuedMutation {
  return {
    mid: `m-${recordId}`,
    mutation: { mid: `m-${recordId}`, collection: 'items', id: recordId, op: 'patch', data: { seen: 1 } },
    queuedAt: '2026-12-07T00:00:00.000Z',
  };
}

describe('replicaFirstPage', () => {
  let dir: string;
  let path: string;
  let url: string;
  beforeEach(async () => {
    dir = mkdtempSync(join(tmpdir(), 'syncbridge-first-page-'));
    path = join(dir, 'client.log');
    url = `ws://127.0.0.1:${await deadPort()}/v1/realtime`;
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  function open(firstPage: number | undefined): SyncClient {
    return new SyncClient({
      url,
      token: 'offline',
      replicaKey: KEY,
      storage: new FileStorage(path),
      autoConnect: false,
      ...(firstPage === undefined ? {} : { replicaFirstPage: firstPage }),
    });
  }

  it('shows the first page of ids (and records with queued writes) first, then the rest', async () => {
    await fill(path, [queuedPatch(id(900))]);
    const client = open(10);
    const calls: Array<{ ids: string[]; source: string; records: CachedRecord[] }> = [];
    client.collection('items').subscribe((records, change: CollectionChange) => {
      calls.push({ ids: records.map((r) => r.id), source: change.source, records });
    });
    await client.whenLoaded();
    const first = calls[0]!;
    expect(first.source).toBe('storage');
    // r0005 was forgotten: the page is the ten smallest ids left, and r0900 for its queued write.
    expect(first.ids).toEqual([0, 1, 2, 3, 4, 6, 7, 8, 9, 10, 900].map(id));
    expect(first.records.find((r) => r.id === id(3))).toMatchObject({ version: 2, data: { again: true } });
    expect(first.records.find((r) => r.id === id(900))).toMatchObject({ pending: true, data: { seen: 1 } });
    const last = calls[calls.length - 1]!;
    expect(last.source).toBe('storage');
    expect(last.ids).toHaveLength(COUNT - 1);
    expect(calls).toHaveLength(2);
    expect(client.pendingCount()).toBe(1);
    expect(client.collection('items').get(id(999))).toMatchObject({ version: 1, data: { n: 999 } });
    await client.close();
  });

  it('restores the rest before a write made on the first page, and keeps every record', async () => {
    await fill(path);
    const client = open(10);
    const firstSizes: number[] = [];
    let write: Promise<unknown> | null = null;
    client.collection('items').subscribe((records) => {
      firstSizes.push(records.length);
      if (firstSizes.length > 1) return; // the changes the write itself causes, from inside it
      // r0500 is not on the first page: the write restores the rest first and builds on version 1.
      write = client.collection('items').patch(id(500), { n: -500 });
    });
    await client.whenLoaded();
    expect(write).not.toBeNull();
    expect(firstSizes[0]).toBe(10);
    expect(client.collection('items').list()).toHaveLength(COUNT - 1);
    await client.persisted();
    await client.close();

    const storage = new FileStorage(path);
    const queue = await storage.load();
    expect(queue.map((q) => [q.mutation.id, q.mutation.baseVersion])).toEqual([[id(500), 1]]);
    const state = await storage.loadReplica(SCOPE);
    expect(state.records).toHaveLength(COUNT - 1);
    expect(state.records.find((r) => r.id === id(3))).toMatchObject({ version: 2 });
    await storage.close();
  });

  it('closed while only the first page is shown, loses nothing the storage held', async () => {
    await fill(path);
    const client = open(10);
    let closing: Promise<void> | null = null;
    client.collection('items').subscribe(() => {
      closing ??= client.close();
    });
    await client.whenLoaded();
    await closing;
    const again = open(undefined);
    const sizes: number[] = [];
    again.collection('items').subscribe((records) => sizes.push(records.length));
    await again.whenLoaded();
    expect(sizes[0]).toBe(COUNT - 1);
    await again.close();
  });

  it('reads a large write split in data parts, and the single-part layout of earlier files', async () => {
    // 2,500 records of two collections in one write: several groups, each its own data part.
    const big: StoredRecord[] = Array.from({ length: 2500 }, (_, i) => ({
      collection: i % 5 === 0 ? 'other' : 'items',
      id: id(i),
      data: { n: i },
      version: 1,
      seq: 10,
    }));
    const storage = new FileStorage(path);
    await storage.load();
    await storage.loadReplica(SCOPE);
    await storage.writeReplica(SCOPE, { records: big, forget: [], channels: [], dropChannels: [] });
    await storage.close();
    const lines = readFileSync(path, 'utf8').split('\n');
    const index = lines.findIndex((l) => l.includes('\t'));
    const [head, ...parts] = lines[index]!.split('\t');
    expect(parts.length).toBeGreaterThan(2);
    const singlePart = `${head}\t${JSON.stringify(parts.map((part) => JSON.parse(part)[0]))}`;
    for (const text of [
      lines.join('\n'),
      [...lines.slice(0, index), singlePart, ...lines.slice(index + 1)].join('\n'),
    ]) {
      writeFileSync(path, text);
      const client = open(10);
      const firsts: string[][] = [];
      client.collection('items').subscribe((records) => firsts.push(records.map((r) => r.id)));
      await client.whenLoaded();
      expect(firsts[0]).toEqual([1, 2, 3, 4, 6, 7, 8, 9, 11, 12].map(id));
      expect(client.collection('items').list()).toHaveLength(2000);
      expect(client.collection('items').get(id(2499))).toMatchObject({ data: { n: 2499 } });
      expect(client.collection('other').list()).toHaveLength(500);
      expect(client.collection('other').get(id(2495))).toMatchObject({ data: { n: 2495 } });
      await client.close();
    }
  });

  it('lists the same records as a full load once loaded', async () => {
    await fill(path, [queuedPatch(id(2))]);
    const full = open(undefined);
    await full.whenLoaded();
    const all = full.collection('items').list();
    await full.close();
    const paged = open(25);
    await paged.whenLoaded();
    expect(paged.collection('items').list()).toEqual(all);
    await paged.close();
  });

  it('shows a first page from IndexedDbStorage too (split in the client), then the rest', async () => {
    const indexedDB = new IDBFactory() as unknown as IdbFactory;
    await fillStorage(new IndexedDbStorage({ indexedDB, name: 'app' }), [queuedPatch(id(700))]);
    const client = new SyncClient({
      url,
      token: 'offline',
      replicaKey: KEY,
      storage: new IndexedDbStorage({ indexedDB, name: 'app' }),
      autoConnect: false,
      replicaFirstPage: 3,
    });
    const calls: string[][] = [];
    client.collection('items').subscribe((records) => calls.push(records.map((r) => r.id)));
    await client.whenLoaded();
    expect(calls[0]).toEqual([0, 1, 2, 700].map(id));
    expect(calls[calls.length - 1]).toHaveLength(COUNT - 1);
    expect(client.collection('items').get(id(700))).toMatchObject({ pending: true, version: 1 });
    await client.close();
  });

  it('splits records in or out of id order the same way', () => {
    const ids = Array.from({ length: 200 }, (_, i) => ({ id: id(i) }));
    const shuffled = ids.map((_, i) => ids[(i * 37) % 200]!);
    for (const records of [ids, shuffled]) {
      const { page, rest } = splitFirstPage(records, 5, new Set([id(150)]));
      expect(page.map((r) => r.id).sort()).toEqual([0, 1, 2, 3, 4, 150].map(id));
      expect(rest).toHaveLength(194);
    }
    expect(splitFirstPage(shuffled, 0, new Set()).page).toEqual([]);
    expect(splitFirstPage(shuffled, 500, new Set()).rest).toEqual([]);
  });
});
