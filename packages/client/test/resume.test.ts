/**
 * Resume and replay, staged exactly with a protocol-level fake server: which `subscribe` the client
 * sends first and after a reconnect (snapshot, then `since` its last seq), that seqs at or below the
 * last one delivered never reach the application (even when the server repeats them), that the queue
 * goes out in batches of at most 100 and everything unanswered is sent again, and that acks are debounced.
 */
import type { EventMessage, MutationResult } from '@syncbridge/protocol';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { SyncClient } from '../src/index.ts';
import { FakeServer } from './fake-server.ts';
import { FAST_BACKOFF, waitFor } from './helpers.ts';

function tick(channel: string, seq: number): EventMessage {
  return {
    type: 'event',
    channel,
    seq,
    eventId: `e${seq}`,
    kind: 'event',
    eventType: 'tick',
    payload: { seq },
    actor: 'bob',
    ts: new Date().toISOString(),
  };
}

describe('resume and replay (fake server)', () => {
  let fake: FakeServer;
  let client: SyncClient;

  beforeEach(async () => {
    fake = await FakeServer.start();
  });
  afterEach(async () => {
    await client?.close();
    await fake.close();
  });

  it('never delivers a seq twice, and resumes an events channel with since = the last seq', async () => {
    fake.onMessage((m, reply, connection) => {
      if (m.type !== 'subscribe') return;
      reply({ type: 'subscribed', rid: m.rid, channel: m.channel, cursor: connection === 1 ? 0 : 3 });
      // The first connection repeats seqs; the second replays an overlap with what was delivered.
      const seqs = connection === 1 ? [1, 2, 2, 1, 3] : [2, 3, 4];
      for (const seq of seqs) reply(tick(m.channel, seq));
    });
    client = new SyncClient({ url: fake.url, token: 't', backoff: FAST_BACKOFF });
    const delivered: number[] = [];
    client.events('tick').subscribe((e) => delivered.push(e.seq));
    await waitFor(() => delivered.length === 3, 'the first three');
    fake.dropConnections();
    await waitFor(() => delivered.length === 4, 'the fourth after the reconnect');
    await new Promise((r) => setTimeout(r, 50));
    expect(delivered).toEqual([1, 2, 3, 4]);
    const subscribes = fake.messages('subscribe');
    expect(
      subscribes.map(({ connection, channel, since, snapshot }) => ({
        connection,
        channel,
        since,
        snapshot,
      })),
    ).toEqual([
      { connection: 1, channel: 'events:tick', since: undefined, snapshot: undefined },
      { connection: 2, channel: 'events:tick', since: 3, snapshot: undefined },
    ]);
  });

  it('asks a records channel for a snapshot first, then resumes it with since', async () => {
    fake.onMessage((m, reply, connection) => {
      if (m.type !== 'subscribe') return;
      if (connection === 1) {
        reply({ type: 'subscribed', rid: m.rid, channel: m.channel, cursor: 5 });
        const rec = (id: string, n: number) => ({
          collection: 'todos',
          id,
          data: { n },
          version: 1,
          hlc: '000000000000001-0000-x',
          updatedAt: '',
          updatedBy: 'bob',
          deleted: false,
        });
        reply({ type: 'snapshot', channel: m.channel, records: [rec('a', 1)], cursor: 5, done: false });
        reply({ type: 'snapshot', channel: m.channel, records: [rec('b', 2)], cursor: 5, done: true });
        reply({
          type: 'event',
          channel: m.channel,
          seq: 6,
          eventId: 'e6',
          kind: 'record',
          collection: 'todos',
          id: 'a',
          op: 'patch',
          version: 2,
          data: { n: 10 },
          actor: 'bob',
          ts: '',
        });
      } else {
        reply({ type: 'subscribed', rid: m.rid, channel: m.channel, cursor: 6 });
      }
    });
    client = new SyncClient({ url: fake.url, token: 't', backoff: FAST_BACKOFF });
    const todos = client.collection<{ n: number }>('todos');
    todos.subscribe(() => undefined);
    await waitFor(() => todos.get('a')?.data.n === 10, 'the snapshot and the event');
    expect(todos.list().map((r) => [r.id, r.data.n, r.version])).toEqual([
      ['a', 10, 2],
      ['b', 2, 1],
    ]);
    fake.dropConnections();
    await waitFor(() => fake.messages('subscribe').length === 2, 'the resubscribe');
    expect(fake.messages('subscribe').map(({ since, snapshot }) => ({ since, snapshot }))).toEqual([
      { since: undefined, snapshot: true },
      { since: 6, snapshot: undefined },
    ]);
  });

  it('sends the queue in batches of at most 100, and again after a drop until each has its result', async () => {
    let answer = false;
    fake.onMessage((m, reply) => {
      if (m.type !== 'mutate' || !answer) return;
      const results: MutationResult[] = m.mutations.map((mut, i) => ({
        mid: mut.mid,
        status: 'applied',
        version: i + 1,
      }));
      reply({ type: 'results', rid: m.rid, results });
    });
    client = new SyncClient({ url: fake.url, token: 't', backoff: FAST_BACKOFF, autoConnect: false });
    const counters = client.collection<{ n: number }>('counters');
    const writes = Array.from({ length: 250 }, () => counters.increment('c1', { n: 1 }));
    expect(counters.get('c1')?.data.n).toBe(250);
    client.connect();
    await waitFor(() => fake.messages('mutate').length === 3, 'three batches');
    const first = fake.messages('mutate');
    expect(first.map((b) => b.mutations.length)).toEqual([100, 100, 50]);
    expect(client.pendingCount()).toBe(250);

    answer = true;
    fake.dropConnections();
    await client.flush();
    const second = fake.messages('mutate').filter((b) => b.connection === 2);
    const mids = (batches: typeof first) => batches.flatMap((b) => b.mutations.map((m) => m.mid));
    expect(mids(second)).toEqual(mids(first));
    expect(new Set(mids(first)).size).toBe(250);
    expect((await Promise.all(writes)).every((r) => r.status === 'applied')).toBe(true);
  });

  it('acknowledges a burst of events with one debounced ack of the last seq', async () => {
    fake.onMessage((m, reply) => {
      if (m.type !== 'subscribe') return;
      reply({ type: 'subscribed', rid: m.rid, channel: m.channel, cursor: 0 });
      for (let seq = 1; seq <= 50; seq++) reply(tick(m.channel, seq));
    });
    client = new SyncClient({ url: fake.url, token: 't', backoff: FAST_BACKOFF });
    const delivered: number[] = [];
    client.events('tick').subscribe((e) => delivered.push(e.seq));
    await waitFor(() => fake.messages('ack').length > 0, 'an ack');
    await new Promise((r) => setTimeout(r, 300));
    expect(delivered).toHaveLength(50);
    expect(fake.messages('ack').map((a) => a.seq)).toEqual([50]);
  });
});
