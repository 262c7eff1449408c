/**
 * Going offline for real: the server process is killed with SIGKILL while two clients are connected,
 * the clients keep writing, and a new server process starts on the same storage and port. The clients
 * must reconnect with backoff, resume their subscriptions from their last seq, send their queues once,
 * and end equal to the server, without delivering any event to the application twice.
 */
import { isDeepStrictEqual } from 'node:util';
import type { LogEvent, MutationResult } from '@syncbridge/protocol';
import { afterEach, describe, expect, it } from 'vitest';
import {
  createTestStorage,
  type ServerProcess,
  type StoreKind,
  spawnServerProcess,
  storeKinds,
  type TestStorage,
} from '../../server/test/helpers/server.ts';
import { type ChangeSource, type DomainEvent, SyncClient } from '../src/index.ts';
import {
  cachedRecords,
  FAST_BACKOFF,
  isPending,
  mintToken,
  recordStatus,
  serverRecords,
  waitFor,
} from './helpers.ts';

// What is under test is the client; the server's own crash durability is tested per store in the server
// suites. Each case here spawns two server processes, so it runs on SQLite only to keep the suite short
// (set SYNCBRIDGE_CLIENT_ALL_STORES=1 to run it on PostgreSQL too).
const kinds: StoreKind[] = process.env.SYNCBRIDGE_CLIENT_ALL_STORES ? await storeKinds() : ['sqlite'];

describe.each(kinds)('offline and back (%s)', (kind: StoreKind) => {
  let storage: TestStorage;
  const procs: ServerProcess[] = [];
  const clients: SyncClient[] = [];

  afterEach(async () => {
    await Promise.all(clients.splice(0).map((c) => c.close()));
    for (const proc of procs.splice(0)) {
      proc.child.kill('SIGKILL');
      await proc.exited;
    }
    await storage?.cleanup();
  });

  async function start(port?: number): Promise<ServerProcess> {
    const proc = await spawnServerProcess(storage, port ? { SYNCBRIDGE_PORT: String(port) } : {});
    procs.push(proc);
    return proc;
  }

  async function crash(proc: ServerProcess): Promise<number> {
    proc.child.kill('SIGKILL');
    await proc.exited;
    return Number(new URL(proc.url).port);
  }

  function client(wsUrl: string, token: string, deviceId: string): SyncClient {
    const c = new SyncClient({ url: wsUrl, token, deviceId, backoff: FAST_BACKOFF });
    clients.push(c);
    return c;
  }

  it('queues writes while the server is down and sends them once when it is back', async () => {
    storage = createTestStorage(kind);
    const first = await start();
    const token = await mintToken(first.url, 'acme', 'alice');
    const a = client(first.wsUrl, token, 'phone');
    const b = client(first.wsUrl, token, 'laptop');
    const sourcesAtB: ChangeSource[] = [];
    a.collection('counters').subscribe(() => undefined);
    a.collection('notes').subscribe(() => undefined);
    b.collection('counters').subscribe(() => undefined);
    b.collection('notes').subscribe((_r, change) => sourcesAtB.push(change.source));
    await Promise.all([a.whenOpen(5000), b.whenOpen(5000)]);
    await a.collection('notes').put('n1', { text: 'hello' });
    await a.collection('counters').increment('c1', { n: 1 });
    await waitFor(() => b.collection('counters').get('c1')?.data.n === 1, 'B to see the first increment');
    const statusA = recordStatus(a);

    const port = await crash(first);
    await waitFor(() => a.state !== 'open' && b.state !== 'open', 'both clients to notice the crash');

    const writesA: Promise<MutationResult>[] = [];
    for (let i = 0; i < 5; i++) writesA.push(a.collection('counters').increment('c1', { n: 1 }));
    writesA.push(a.collection('notes').patch('n1', { text: 'edited offline', by: 'phone' }));
    writesA.push(a.collection('notes').put('n2', { text: 'new offline' }));
    const writeB = b.collection('counters').increment('c1', { n: 10 });
    expect(a.pendingCount()).toBe(7);
    expect(a.collection('counters').get('c1')?.data).toEqual({ n: 6 });
    expect(a.collection('notes').get('n1')).toMatchObject({
      data: { text: 'edited offline', by: 'phone' },
      pending: true,
    });
    await new Promise((r) => setTimeout(r, 300));
    expect(await isPending(Promise.all(writesA))).toBe(true);
    expect(await isPending(writeB)).toBe(true);
    sourcesAtB.length = 0;

    const second = await start(port);
    await Promise.all([a.flush(), b.flush()]);
    const results = await Promise.all(writesA);
    expect(results.map((r) => r.status)).toEqual(Array(7).fill('applied'));
    expect((await writeB).status).toBe('applied');

    const expectedCounters = { c1: { n: 16 } };
    expect(await serverRecords(second.url, token, 'counters')).toEqual(expectedCounters);
    const notes = await serverRecords(second.url, token, 'notes');
    expect(notes).toEqual({ n1: { text: 'edited offline', by: 'phone' }, n2: { text: 'new offline' } });
    await waitFor(
      () =>
        isDeepStrictEqual(cachedRecords(a, 'counters'), expectedCounters) &&
        isDeepStrictEqual(cachedRecords(b, 'counters'), expectedCounters) &&
        isDeepStrictEqual(cachedRecords(b, 'notes'), notes),
      'both caches to equal the server',
      10_000,
      () => ({
        a: [cachedRecords(a, 'counters'), cachedRecords(a, 'notes'), a.state],
        b: [cachedRecords(b, 'counters'), cachedRecords(b, 'notes'), b.state],
        server: notes,
      }),
    );
    expect(cachedRecords(a, 'notes')).toEqual(notes);
    // B caught up from its last seq (events), not by reloading a snapshot.
    expect(sourcesAtB).toContain('remote');
    expect(sourcesAtB).not.toContain('snapshot');

    // Each queued increment was committed once: 1 before, 5 + 1 after the restart.
    const res = await fetch(`${second.url}/v1/events?after=0&limit=1000`, {
      headers: { authorization: `Bearer ${token}` },
    });
    const { events } = (await res.json()) as { events: LogEvent[] };
    expect(events.filter((e) => e.collection === 'counters' && e.id === 'c1')).toHaveLength(7);

    const states = statusA.map((s) => `${s.newState}:${s.reason}`);
    expect(states[0]).toBe('offline:transport_closed');
    expect(states).toContain('connecting:reconnect');
    expect(states.slice(-2)).toEqual(['syncing:authenticated', 'open:synced']);
    expect(a.pendingCount()).toBe(0);
  });

  it('delivers every event exactly once, in order, across a server crash', async () => {
    storage = createTestStorage(kind);
    const first = await start();
    const token = await mintToken(first.url, 'acme', 'alice');
    const publisher = client(first.wsUrl, token, 'publisher');
    const listener = client(first.wsUrl, token, 'listener');
    const seen: DomainEvent<{ i: number }>[] = [];
    listener.events<{ i: number }>('tick').subscribe((e) => seen.push(e));
    await Promise.all([publisher.whenOpen(5000), listener.whenOpen(5000)]);
    const published: number[] = [];
    for (let i = 0; i < 3; i++)
      published.push((await publisher.publish({ type: 'tick', payload: { i } })).seq);
    await waitFor(() => seen.length === 3, 'the first three ticks');

    const port = await crash(first);
    await waitFor(() => listener.state !== 'open', 'the listener to notice the crash');
    const second = await start(port);
    // Published over REST while the listener may still be reconnecting: it must get them from the backlog.
    for (let i = 3; i < 6; i++) {
      const res = await fetch(`${second.url}/v1/events`, {
        method: 'POST',
        headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
        body: JSON.stringify({ type: 'tick', payload: { i } }),
      });
      published.push(((await res.json()) as { seq: number }).seq);
    }
    await listener.whenOpen(10_000);
    await publisher.whenOpen(10_000);
    for (let i = 6; i < 9; i++)
      published.push((await publisher.publish({ type: 'tick', payload: { i } })).seq);
    await waitFor(() => seen.length >= 9, 'all nine ticks');
    await new Promise((r) => setTimeout(r, 100));
    expect(seen.map((e) => e.seq)).toEqual(published);
    expect(seen.map((e) => e.payload.i)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8]);
  });
});
