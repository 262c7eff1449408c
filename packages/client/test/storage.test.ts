/**
 * The durable offline queue: a FileStorage queue outlives the client that wrote it and is sent once by
 * the next; a mutation the server already applied is answered `duplicate` and changes nothing; batches
 * stay below the server's message limit; a damaged
 * queue file is reported, never silently dropped; IndexedDbStorage keeps the queue across clients (run on
 * fake-indexeddb, an in-memory IndexedDB) and reports a missing IndexedDB as a STORAGE error.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { LogEvent, MutationResult } from '@syncbridge/protocol';
import { IDBFactory } from 'fake-indexeddb';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { startTestServer, type TestServer } from '../../server/test/helpers/server.ts';
import {
  FileStorage,
  type IdbFactory,
  IndexedDbStorage,
  SyncClient,
  type SyncClientError,
  type WriteOutcome,
} from '../src/index.ts';
import { deadPort, FAST_BACKOFF, mintToken, recordStatus, serverRecords, waitFor } from './helpers.ts';

/** The mids queued in a FileStorage's log, as a client started on it would load them. */
function queuedMids(path: string): string[] {
  const queued = new Map<string, true>();
  for (const raw of readFileSync(path, 'utf8').split('\n').slice(1)) {
    if (!raw) continue;
    const line = JSON.parse(raw) as { q?: { mid: string }[]; d?: string[] };
    for (const entry of line.q ?? []) queued.set(entry.mid, true);
    for (const mid of line.d ?? []) queued.delete(mid);
  }
  return [...queued.keys()];
}

async function counterEvents(srv: TestServer, token: string, id: string): Promise<number> {
  const res = await fetch(`${srv.url}/v1/events?after=0&limit=1000`, {
    headers: { authorization: `Bearer ${token}` },
  });
  const { events } = (await res.json()) as { events: LogEvent[] };
  return events.filter((e) => e.collection === 'counters' && e.id === id).length;
}

describe('durable offline queue', () => {
  let dir: string;
  let srv: TestServer | null = null;
  const clients: SyncClient[] = [];

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'syncbridge-client-'));
  });
  afterEach(async () => {
    await Promise.all(clients.splice(0).map((c) => c.close()));
    await srv?.close();
    srv = null;
    rmSync(dir, { recursive: true, force: true });
  });

  function client(options: ConstructorParameters<typeof SyncClient>[0]): SyncClient {
    const c = new SyncClient({ backoff: FAST_BACKOFF, ...options });
    clients.push(c);
    return c;
  }

  it('keeps writes made offline in a FileStorage, and the next client sends them once', async () => {
    const path = join(dir, 'queue.json');
    srv = await startTestServer('sqlite');
    const token = await mintToken(srv.url, 'acme', 'alice');
    const first = client({ url: srv.wsUrl, token, storage: new FileStorage(path) });
    await first.whenOpen(5000);
    await first.collection('counters').put('c1', { n: 0 });
    const port = Number(new URL(srv.url).port);
    const storage = srv.storage;
    await srv.close({ keepData: true });
    srv = null;
    await waitFor(() => first.state === 'offline', 'the client to go offline');

    const writes = [1, 2, 3].map(() => first.collection('counters').increment('c1', { n: 1 }));
    const put = first.collection('counters').put('c2', { n: 42 });
    await waitFor(() => queuedMids(path).length === 4, 'the four writes to be on disk');
    await first.close();
    for (const write of [...writes, put]) await expect(write).rejects.toMatchObject({ code: 'CLOSED' });
    expect(queuedMids(path)).toHaveLength(4);

    srv = await startTestServer('sqlite', { port }, storage);
    const second = client({ url: srv.wsUrl, token, storage: new FileStorage(path), autoConnect: false });
    const outcomes: WriteOutcome[] = [];
    second.on('result', (o) => outcomes.push(o));
    await waitFor(() => second.pendingCount() === 4, 'the queue to be restored');
    // The restored writes show in the cache before they reach the server.
    expect(second.collection('counters').get('c1')).toMatchObject({ data: { n: 3 }, pending: true });
    second.connect();
    await second.flush();
    expect(outcomes.map((o) => o.result.status)).toEqual(['applied', 'applied', 'applied', 'applied']);
    expect(await serverRecords(srv.url, token, 'counters')).toEqual({ c1: { n: 3 }, c2: { n: 42 } });
    await waitFor(() => queuedMids(path).length === 0, 'the file to be emptied');
    expect(second.collection('counters').get('c1')).toMatchObject({
      data: { n: 3 },
      pending: false,
      version: 4,
    });
    await second.close();

    // A third client on the same file has nothing left to send.
    const third = client({ url: srv.wsUrl, token, storage: new FileStorage(path) });
    await third.whenOpen(5000);
    expect(third.pendingCount()).toBe(0);
    expect(await counterEvents(srv, token, 'c1')).toBe(4);
  });

  it('gets `duplicate` for a queued mutation the server already applied, and counts it once', async () => {
    srv = await startTestServer('sqlite');
    const token = await mintToken(srv.url, 'acme', 'alice');
    const mutation = {
      mid: 'already-sent',
      collection: 'counters',
      id: 'c1',
      op: 'increment' as const,
      data: { n: 1 },
    };
    const res = await fetch(`${srv.url}/v1/mutations`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ mutations: [mutation] }),
    });
    expect(((await res.json()) as { results: MutationResult[] }).results[0]!.status).toBe('applied');
    // The state a crash leaves behind: sent and applied, but still in the queue file.
    const path = join(dir, 'queue.json');
    const storage = new FileStorage(path);
    await storage.load();
    await storage.append([
      { mid: mutation.mid, mutation, queuedAt: new Date().toISOString() },
      { mid: 'not-yet', mutation: { ...mutation, mid: 'not-yet' }, queuedAt: new Date().toISOString() },
    ]);
    await storage.close();

    const c = client({ url: srv.wsUrl, token, storage: new FileStorage(path) });
    const outcomes: MutationResult[] = [];
    c.on('result', ({ result }) => outcomes.push(result));
    await waitFor(() => outcomes.length === 2, 'both results');
    expect(outcomes).toMatchObject([
      { mid: 'already-sent', status: 'duplicate', originalStatus: 'applied', version: 1 },
      { mid: 'not-yet', status: 'applied', version: 2 },
    ]);
    expect(await serverRecords(srv.url, token, 'counters')).toEqual({ c1: { n: 2 } });
    expect(c.collection('counters').get('c1')).toMatchObject({ data: { n: 2 }, version: 2, pending: false });
    await waitFor(() => queuedMids(path).length === 0, 'the file to be emptied');
  });

  it('cuts batches below the server’s message limit, and refuses at once a write that can never fit', async () => {
    srv = await startTestServer('sqlite', { maxFrameBytes: 2048 });
    const token = await mintToken(srv.url, 'acme', 'alice');
    const c = client({ url: srv.wsUrl, token, maxMessageBytes: 2048, autoConnect: false });
    const docs = c.collection<{ text: string }>('docs');
    await expect(docs.put('big', { text: 'x'.repeat(3000) })).rejects.toMatchObject({
      code: 'PAYLOAD_TOO_LARGE',
    });
    expect(docs.get('big')).toBeUndefined();
    // 60 writes of ~250 bytes: one batch would be ~15 kB, beyond what the server reads at all (4 x 2 kB).
    const writes = Array.from({ length: 60 }, (_, i) => docs.put(`d${i}`, { text: 'y'.repeat(150) }));
    const changes = recordStatus(c);
    c.connect();
    const results = await Promise.all(writes);
    expect(results.every((r) => r.status === 'applied')).toBe(true);
    expect(Object.keys(await serverRecords(srv.url, token, 'docs'))).toHaveLength(60);
    // Never a frame the server had to refuse: the connection was not closed once.
    expect(changes.map((s) => s.newState)).toEqual(['connecting', 'syncing', 'open']);
  });

  it('reports a damaged queue file as a STORAGE error and leaves the file alone', async () => {
    const path = join(dir, 'queue.json');
    writeFileSync(path, '{"version":1,"entries":[{"mid":');
    const c = client({
      url: `ws://127.0.0.1:${await deadPort()}/v1/realtime`,
      token: 'x',
      storage: new FileStorage(path),
      autoConnect: false,
    });
    const errors: SyncClientError[] = [];
    c.on('error', (e) => errors.push(e));
    await expect(c.collection('todos').put('t1', { a: 1 })).rejects.toMatchObject({ code: 'STORAGE' });
    expect(errors[0]).toMatchObject({ code: 'STORAGE' });
    expect(c.collection('todos').get('t1')).toBeUndefined();
    expect(readFileSync(path, 'utf8')).toBe('{"version":1,"entries":[{"mid":');
  });

  it('keeps the queue in IndexedDB across clients', async () => {
    const indexedDB = new IDBFactory() as unknown as IdbFactory;
    const offline = client({
      url: `ws://127.0.0.1:${await deadPort()}/v1/realtime`,
      token: 'unused',
      storage: new IndexedDbStorage({ indexedDB, name: 'app' }),
    });
    const writes = [
      offline.collection('todos').put('t1', { title: 'a' }),
      offline.collection('todos').patch('t1', { done: true }),
    ];
    await waitFor(() => offline.pendingCount() === 2, 'two queued writes');
    await new Promise((r) => setTimeout(r, 50));
    await offline.close();
    for (const write of writes) await expect(write).rejects.toMatchObject({ code: 'CLOSED' });

    srv = await startTestServer('sqlite');
    const token = await mintToken(srv.url, 'acme', 'alice');
    const online = client({
      url: srv.wsUrl,
      token,
      storage: new IndexedDbStorage({ indexedDB, name: 'app' }),
    });
    await online.flush();
    expect(await serverRecords(srv.url, token, 'todos')).toEqual({ t1: { title: 'a', done: true } });
    await online.close();
    const again = new IndexedDbStorage({ indexedDB, name: 'app' });
    expect(await again.load()).toEqual([]);
    await again.close();
  });

  it('reports a missing IndexedDB (as in Node) as a STORAGE error', async () => {
    const storage = new IndexedDbStorage();
    await expect(storage.load()).rejects.toMatchObject({
      code: 'STORAGE',
      message: expect.stringContaining('IndexedDB'),
    });
  });
});
