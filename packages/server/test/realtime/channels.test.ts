/**
 * Channels as a subscriber sees them: filtered record rooms (`records:<c>?field=value`, numbers and
 * booleans matched as their JSON text), domain event routing (`events:<type>`, `events:*`, `?source=`,
 * `?target=`), snapshots (chunked, filtered, then live after the snapshot cursor), unsubscribe, bad
 * channel names, `since` ahead of the log, one seq order shared by records and events, and tenants
 * that never see each other.
 */
import type { MutationResult, SyncRecord } from '@syncbridge/protocol';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type StoreKind, startTestServer, storeKinds, type TestServer } from '../helpers/server.ts';
import { TestWsClient } from '../helpers/ws-client.ts';
import { expectContiguous, getJson, range, readLog } from './support.ts';

const kinds = await storeKinds();

type Msg = Record<string, unknown>;

/** Seqs a client got on a channel, after a ping round trip has flushed what the server had sent. */
async function seqsOn(client: TestWsClient, channel: string): Promise<number[]> {
  expect((await client.request({ type: 'ping' })).type).toBe('pong');
  return client.events(channel).map((e) => e.seq as number);
}

describe.each(kinds)('channels (%s)', (kind: StoreKind) => {
  let srv: TestServer;
  beforeAll(async () => {
    srv = await startTestServer(kind);
  });
  afterAll(async () => srv?.close());

  async function connect(tenant: string, user = 'u'): Promise<TestWsClient> {
    return TestWsClient.connect(srv.wsUrl, await srv.token(tenant, user));
  }

  async function mutate(client: TestWsClient, mutations: unknown[]): Promise<MutationResult[]> {
    const reply = await client.request({ type: 'mutate', mutations });
    expect(reply.type, JSON.stringify(reply)).toBe('results');
    const results = reply.results as MutationResult[];
    for (const r of results) expect(r.status, JSON.stringify(r)).toBe('applied');
    return results;
  }

  it('routes record changes to filtered rooms by the JSON text of the field, live and from the backlog', async () => {
    const tenant = 'filters';
    const channels: Record<string, number[]> = {
      'records:stock_levels?locationId=wh-1': [1, 3, 8, 9],
      'records:stock_levels?qty=5': [1, 2, 4, 8, 9],
      'records:stock_levels?active=true': [1, 6, 9],
      'records:stock_levels?locationId=wh-1&active=true': [1, 9],
      'records:stock_levels?meta.zone=A': [1, 9],
      'records:stock_levels': range(1, 9),
    };
    const live = await connect(tenant);
    for (const channel of Object.keys(channels)) {
      expect(await live.request({ type: 'subscribe', channel })).toMatchObject({
        type: 'subscribed',
        channel,
      });
    }
    const writer = await connect(tenant, 'writer');
    const put = (id: string, data: Msg) => ({
      mid: `p-${id}`,
      collection: 'stock_levels',
      id,
      op: 'put',
      data,
    });
    await mutate(writer, [
      put('s1', { locationId: 'wh-1', qty: 5, active: true, meta: { zone: 'A' } }), // 1
      put('s2', { locationId: 'wh-2', qty: 5, active: false }), // 2
      put('s3', { locationId: 'wh-1', qty: 50, active: false }), // 3
      put('s4', { locationId: 'wh-10', qty: 5.0, active: 1 }), // 4: wh-10 is not wh-1; 1 is not true
      put('s5', { locationId: 'WH-1', qty: 6, active: 'yes' }), // 5: case matters
      put('s6', { qty: null, active: true, meta: { zone: 'B' } }), // 6: no locationId
      put('s7', { locationId: ['wh-1'], qty: [5], active: [true] }), // 7: arrays never match
    ]);
    await mutate(writer, [
      { mid: 'move-s2', collection: 'stock_levels', id: 's2', op: 'patch', data: { locationId: 'wh-1' } }, // 8
      { mid: 'del-s1', collection: 'stock_levels', id: 's1', op: 'delete' }, // 9: still carries s1's data
    ]);
    for (const [channel, expected] of Object.entries(channels)) {
      if (expected.length > 0) await live.waitForEvents(expected.length, channel);
    }
    for (const [channel, expected] of Object.entries(channels)) {
      expect(await seqsOn(live, channel), `live ${channel}`).toEqual(expected);
    }
    const wh1 = live.events('records:stock_levels?locationId=wh-1');
    expect(wh1.map((e) => [e.id, e.op])).toEqual([
      ['s1', 'put'],
      ['s3', 'put'],
      ['s2', 'patch'],
      ['s1', 'delete'],
    ]);
    expect(wh1[2]!.data).toEqual({ locationId: 'wh-1', qty: 5, active: false });

    // A subscriber catching up from the store gets the same rooms.
    const late = await connect(tenant);
    for (const channel of Object.keys(channels)) late.send({ type: 'subscribe', channel, since: 0 });
    // Each backlog is read and sent on its own: wait for each channel (once a channel's first events are
    // here, its whole backlog page was sent before the pong that seqsOn waits for).
    for (const [channel, expected] of Object.entries(channels)) {
      if (expected.length > 0) await late.waitForEvents(expected.length, channel);
    }
    for (const [channel, expected] of Object.entries(channels)) {
      expect(await seqsOn(late, channel), `backlog ${channel}`).toEqual(expected);
    }
    await Promise.all([live.close(), late.close(), writer.close()]);
  });

  it('routes domain events by type, source and target, and keeps record changes out of events channels', async () => {
    const tenant = 'routing';
    const channels: Record<string, number[]> = {
      'events:trade_closed': [1, 4, 5],
      'events:*': [1, 3, 4, 5, 6],
      'events:*?target=vyomo': [1, 3],
      'events:*?source=bfc': [1, 6],
      'events:trade_closed?source=bfc': [1],
      'events:order_placed?source=bfc': [],
      'records:trades': [2],
    };
    const live = await connect(tenant);
    for (const channel of Object.keys(channels)) await live.request({ type: 'subscribe', channel });
    const writer = await connect(tenant, 'bridge');
    const publish = async (event: Msg, seq: number) =>
      expect(await writer.request({ type: 'publish', event })).toMatchObject({ type: 'ok', seq });
    await publish({ type: 'trade_closed', payload: { t: 1 }, source: 'bfc', target: 'vyomo' }, 1);
    await mutate(writer, [{ mid: 'tr', collection: 'trades', id: 't1', op: 'put', data: { t: 1 } }]); // 2
    await publish({ type: 'order_placed', payload: { o: 1 }, source: 'powens', target: 'vyomo' }, 3);
    await publish({ type: 'trade_closed', payload: { t: 2 }, source: 'powens' }, 4);
    await publish({ type: 'trade_closed', payload: { t: 3 }, target: 'bfc', priority: 9 }, 5);
    await publish({ type: 'payment', payload: { p: 1 }, source: 'bfc' }, 6);

    for (const [channel, expected] of Object.entries(channels)) {
      if (expected.length > 0) await live.waitForEvents(expected.length, channel);
    }
    for (const [channel, expected] of Object.entries(channels)) {
      expect(await seqsOn(live, channel), `live ${channel}`).toEqual(expected);
    }
    const first = live.events('events:*')[0]!;
    expect(first).toMatchObject({
      type: 'event',
      channel: 'events:*',
      kind: 'event',
      eventType: 'trade_closed',
      payload: { t: 1 },
      source: 'bfc',
      target: 'vyomo',
      actor: 'bridge',
      seq: 1,
    });
    expect(live.events('events:trade_closed')[2]).toMatchObject({ priority: 9, target: 'bfc' });
    expect(live.events('events:*').every((e) => e.kind === 'event')).toBe(true);

    const late = await connect(tenant);
    for (const channel of Object.keys(channels)) late.send({ type: 'subscribe', channel, since: 0 });
    // Each backlog is read and sent on its own: wait for each channel (once a channel's first events are
    // here, its whole backlog page was sent before the pong that seqsOn waits for).
    for (const [channel, expected] of Object.entries(channels)) {
      if (expected.length > 0) await late.waitForEvents(expected.length, channel);
    }
    for (const [channel, expected] of Object.entries(channels)) {
      expect(await seqsOn(late, channel), `backlog ${channel}`).toEqual(expected);
    }
    await Promise.all([live.close(), late.close(), writer.close()]);
  });

  it('pins the source of a platform token to its platform', async () => {
    const tenant = 'platforms';
    const { token } = await srv.server.tokens.mint({ tenant, user: 'bfc-bridge', platform: 'bfc' });
    const bridge = await TestWsClient.connect(srv.wsUrl, token);
    const watcher = await connect(tenant);
    await watcher.request({ type: 'subscribe', channel: 'events:*?source=bfc' });
    const ok = await bridge.request({ type: 'publish', event: { type: 'trade_closed', payload: {} } });
    expect(ok).toMatchObject({ type: 'ok', seq: 1 });
    const spoof = await bridge.request({
      type: 'publish',
      event: { type: 'trade_closed', payload: {}, source: 'vyomo' },
    });
    expect(spoof).toMatchObject({ type: 'error', code: 'FORBIDDEN' });
    const [event] = await watcher.waitForEvents(1, 'events:*?source=bfc');
    expect(event).toMatchObject({ seq: 1, source: 'bfc' });
    await Promise.all([bridge.close(), watcher.close()]);
  });

  it('sends subscribed, then the filtered snapshot ending with done, then only events after its cursor', async () => {
    const tenant = 'snap';
    const writer = await connect(tenant, 'writer');
    const seed = range(0, 29).map((i) => ({
      mid: `seed-${i}`,
      collection: 'stock_levels',
      id: `sku-${i}`,
      op: 'put',
      data: { locationId: `wh-${(i % 3) + 1}`, qty: i },
    }));
    await mutate(writer, seed);
    // sku-0, sku-3, sku-6 (wh-1) deleted; sku-1 (wh-2) moves to wh-1; sku-9 (wh-1) moves to wh-2.
    await mutate(writer, [
      ...[0, 3, 6].map((i) => ({
        mid: `del-${i}`,
        collection: 'stock_levels',
        id: `sku-${i}`,
        op: 'delete',
      })),
      { mid: 'in', collection: 'stock_levels', id: 'sku-1', op: 'patch', data: { locationId: 'wh-1' } },
      { mid: 'out', collection: 'stock_levels', id: 'sku-9', op: 'patch', data: { locationId: 'wh-2' } },
    ]);
    const expectedIds = ['sku-1', 'sku-12', 'sku-15', 'sku-18', 'sku-21', 'sku-24', 'sku-27'];

    // Writes keep coming while the subscriber takes its snapshot (without moving records between rooms).
    let writing = true;
    let k = 0;
    const burst = (async () => {
      while (writing || k < 40) {
        const i = 10 + (k % 20); // records 10..29 keep their room
        const op =
          k % 5 === 0
            ? { op: 'put', data: { locationId: `wh-${(i % 3) + 1}`, qty: 1000 + k } }
            : { op: 'increment', data: { qty: 1 } };
        await mutate(writer, [{ mid: `live-${k}`, collection: 'stock_levels', id: `sku-${i}`, ...op }]);
        k += 1;
      }
    })();

    const channel = 'records:stock_levels?locationId=wh-1';
    const sub = await connect(tenant);
    const subscribed = await sub.request({ type: 'subscribe', channel, snapshot: true });
    expect(subscribed).toMatchObject({ type: 'subscribed', channel });
    const cursor = subscribed.cursor as number;
    expect(cursor).toBeGreaterThanOrEqual(35);
    const last = await sub.waitFor((m) => m.type === 'snapshot' && m.done === true);
    writing = false;
    await burst;
    // And a few more changes in the room, certainly after the cursor.
    await mutate(
      writer,
      [12, 15, 18].map((i) => ({
        mid: `after-${i}`,
        collection: 'stock_levels',
        id: `sku-${i}`,
        op: 'increment',
        data: { qty: 1 },
      })),
    );

    const snapshots = sub.messages.filter((m) => m.type === 'snapshot');
    expect(snapshots).toHaveLength(1);
    expect(last).toMatchObject({ channel, cursor, done: true });
    const snapRecords = last.records as SyncRecord[];
    // Every wh-1 record live at the cursor, none deleted; the snapshot holds the state as of the cursor.
    const sorted = snapRecords.map((r) => r.id).sort();
    const liveBefore = new Set(sorted);
    expect(snapRecords.every((r) => r.deleted === false && r.data.locationId === 'wh-1')).toBe(true);
    for (const id of expectedIds) expect(liveBefore.has(id), id).toBe(true);
    for (const id of ['sku-0', 'sku-3', 'sku-6', 'sku-9']) expect(liveBefore.has(id), id).toBe(false);

    // Message order: subscribed, snapshot, then events, all events above the cursor.
    const types = sub.messages.map((m) => m.type);
    const firstEvent = types.indexOf('event');
    expect(types.indexOf('subscribed')).toBeLessThan(types.indexOf('snapshot'));
    if (firstEvent >= 0) expect(types.indexOf('snapshot')).toBeLessThan(firstEvent);
    const token = await srv.token(tenant, 'auditor');
    const log = await readLog(srv.url, token);
    const expectedLive = log.events
      .filter((e) => e.seq > cursor && e.kind === 'record' && (e.data as Msg | null)?.locationId === 'wh-1')
      .map((e) => e.seq);
    expect(expectedLive.length).toBeGreaterThan(0);
    await sub.waitForEvents(expectedLive.length, channel);
    const got = await seqsOn(sub, channel);
    expect(got).toEqual(expectedLive);
    expect(got.every((s) => s > cursor)).toBe(true);

    // Snapshot plus live events rebuild exactly the room's current state.
    const state = new Map(snapRecords.map((r) => [r.id, { data: r.data, version: r.version }]));
    for (const e of sub.events(channel)) {
      if (e.op === 'delete') state.delete(e.id as string);
      else state.set(e.id as string, { data: e.data as Msg, version: e.version as number });
    }
    const rest = await getJson<{ records: SyncRecord[] }>(
      `${srv.url}/v1/records/stock_levels?locationId=wh-1&limit=1000`,
      token,
    );
    expect(new Map(rest.records.map((r) => [r.id, { data: r.data, version: r.version }]))).toEqual(state);
    await Promise.all([writer.close(), sub.close()]);
  });

  it('sends a snapshot of more than 500 records in several messages, and an empty one as one message', async () => {
    const tenant = 'bigsnap';
    const writer = await connect(tenant, 'writer');
    const put = (i: number) => ({
      mid: `b-${i}`,
      collection: 'big',
      id: `r-${String(i).padStart(4, '0')}`,
      op: 'put',
      data: { i, even: i % 2 === 0 },
    });
    await mutate(writer, range(0, 999).map(put));
    await mutate(writer, range(1000, 1202).map(put));
    await mutate(
      writer,
      range(0, 4).map((i) => ({ mid: `d-${i}`, collection: 'big', id: `r-000${i}`, op: 'delete' })),
    );

    const sub = await connect(tenant);
    const subscribed = await sub.request({ type: 'subscribe', channel: 'records:big', snapshot: true });
    expect(subscribed.cursor).toBe(1208);
    await sub.waitFor((m) => m.type === 'snapshot' && m.done === true);
    const parts = sub.messages.filter((m) => m.type === 'snapshot');
    expect(parts.length).toBeGreaterThanOrEqual(3);
    expect(parts.map((p) => p.done)).toEqual([...parts.slice(1).map(() => false), true]);
    expect(parts.every((p) => p.cursor === 1208 && p.channel === 'records:big')).toBe(true);
    const ids = parts.flatMap((p) => (p.records as SyncRecord[]).map((r) => r.id));
    expect(ids).toHaveLength(1198);
    expect(new Set(ids).size).toBe(1198);
    expect(ids).not.toContain('r-0000');
    expect(ids).toContain('r-1202');

    // Filtered: half of them.
    sub.send({ type: 'subscribe', rid: 'even', channel: 'records:big?even=true', snapshot: true });
    await sub.waitFor(
      (m) => m.type === 'snapshot' && m.channel === 'records:big?even=true' && m.done === true,
    );
    const even = sub.messages
      .filter((m) => m.type === 'snapshot' && m.channel === 'records:big?even=true')
      .flatMap((p) => p.records as SyncRecord[]);
    expect(even).toHaveLength(599);
    expect(even.every((r) => r.data.even === true)).toBe(true);

    // Nothing to send: one message, empty, done.
    sub.send({ type: 'subscribe', rid: 'none', channel: 'records:nothing_here', snapshot: true });
    const empty = await sub.waitFor((m) => m.type === 'snapshot' && m.channel === 'records:nothing_here');
    expect(empty).toMatchObject({ records: [], done: true, cursor: 1208 });
    await Promise.all([writer.close(), sub.close()]);
  });

  it('stops delivery after unsubscribe and answers unsubscribed; an unknown channel is NOT_FOUND', async () => {
    const tenant = 'unsub';
    const sub = await connect(tenant);
    const writer = await connect(tenant, 'writer');
    await sub.request({ type: 'subscribe', channel: 'records:notes' });
    await sub.request({ type: 'subscribe', channel: 'events:*' });
    await mutate(writer, [{ mid: 'n1', collection: 'notes', id: 'a', op: 'put', data: { v: 1 } }]);
    await sub.waitForEvents(1, 'records:notes');
    expect(await sub.request({ type: 'unsubscribe', channel: 'records:notes' })).toMatchObject({
      type: 'unsubscribed',
      channel: 'records:notes',
    });
    await mutate(writer, [{ mid: 'n2', collection: 'notes', id: 'a', op: 'put', data: { v: 2 } }]);
    await writer.request({ type: 'publish', event: { type: 'after', payload: {} } });
    // The event comes after the note on the same connection: once it is here, the note would be too.
    await sub.waitForEvents(1, 'events:*');
    expect(await seqsOn(sub, 'records:notes')).toEqual([1]);

    const again = await sub.request({ type: 'unsubscribe', channel: 'records:notes' });
    expect(again).toMatchObject({ type: 'error', code: 'NOT_FOUND' });
    const never = await sub.request({ type: 'unsubscribe', channel: 'records:never' });
    expect(never).toMatchObject({ type: 'error', code: 'NOT_FOUND' });
    // Subscribing again works.
    expect(await sub.request({ type: 'subscribe', channel: 'records:notes', since: 1 })).toMatchObject({
      type: 'subscribed',
      cursor: 3,
    });
    await sub.waitForEvents(2, 'records:notes');
    expect(await seqsOn(sub, 'records:notes')).toEqual([1, 2]);
    await Promise.all([sub.close(), writer.close()]);
  });

  it('answers bad channel names with BAD_REQUEST and the rid, and subscribes to nothing', async () => {
    const sub = await connect('badnames');
    const bad = [
      'nonsense',
      '',
      'records:',
      'records:bad name',
      'records:a/b',
      'records:c?a=1&a=2',
      'records:c?bad key=1',
      'events:',
      'events:bad type!',
      'events:a?foo=b',
      'unknown:x',
      `records:${'x'.repeat(600)}`,
    ];
    for (const channel of bad) {
      const reply = await sub.request({ type: 'subscribe', channel });
      expect(reply, channel).toMatchObject({ type: 'error', code: 'BAD_REQUEST' });
      expect(typeof reply.message).toBe('string');
    }
    const snapOnEvents = await sub.request({ type: 'subscribe', channel: 'events:*', snapshot: true });
    expect(snapOnEvents).toMatchObject({ type: 'error', code: 'BAD_REQUEST' });
    expect(sub.messages.some((m) => m.type === 'subscribed')).toBe(false);
    expect(await sub.request({ type: 'unsubscribe', channel: 'events:*' })).toMatchObject({
      code: 'NOT_FOUND',
    });
    expect((await sub.request({ type: 'ping' })).type).toBe('pong');
    await sub.close();
  });

  it('answers a since ahead of the log with reset, then a snapshot, then live events', async () => {
    const tenant = 'ahead';
    const writer = await connect(tenant, 'writer');
    await mutate(writer, [
      { mid: 'a1', collection: 'docs', id: 'd1', op: 'put', data: { v: 1 } },
      { mid: 'a2', collection: 'docs', id: 'd2', op: 'put', data: { v: 2 } },
    ]);
    const sub = await connect(tenant);
    const subscribed = await sub.request({ type: 'subscribe', channel: 'records:docs', since: 500 });
    expect(subscribed).toMatchObject({ type: 'subscribed', cursor: 2 });
    const reset = await sub.waitFor((m) => m.type === 'reset');
    expect(reset).toMatchObject({ channel: 'records:docs' });
    expect(typeof reset.reason).toBe('string');
    const snap = await sub.waitFor((m) => m.type === 'snapshot' && m.done === true);
    expect((snap.records as SyncRecord[]).map((r) => r.id).sort()).toEqual(['d1', 'd2']);
    const order = sub.messages.map((m) => m.type);
    expect(order.indexOf('reset')).toBeLessThan(order.indexOf('snapshot'));

    sub.send({ type: 'subscribe', rid: 'e', channel: 'events:*', since: 99 });
    await sub.waitFor((m) => m.type === 'reset' && m.channel === 'events:*');

    await mutate(writer, [{ mid: 'a3', collection: 'docs', id: 'd1', op: 'put', data: { v: 3 } }]);
    await writer.request({ type: 'publish', event: { type: 'later', payload: {} } });
    await sub.waitForEvents(1, 'events:*');
    await sub.waitForEvents(1, 'records:docs');
    expect(await seqsOn(sub, 'records:docs')).toEqual([3]);
    expect(await seqsOn(sub, 'events:*')).toEqual([4]);
    await Promise.all([writer.close(), sub.close()]);
  });

  it('puts record changes and domain events in one seq order per tenant', async () => {
    const tenant = 'oneorder';
    const sub = await connect(tenant);
    await sub.request({ type: 'subscribe', channel: 'records:items' });
    await sub.request({ type: 'subscribe', channel: 'events:*' });
    const writers = await Promise.all([connect(tenant, 'w1'), connect(tenant, 'w2'), connect(tenant, 'w3')]);
    await Promise.all(
      writers.map(async (w, n) => {
        for (let i = 0; i < 30; i++) {
          if ((i + n) % 2 === 0) {
            await mutate(w, [
              { mid: `${n}-${i}`, collection: 'items', id: `i${i % 4}`, op: 'increment', data: { c: 1 } },
            ]);
          } else {
            await w.request({ type: 'publish', event: { type: `kind${i % 3}`, payload: { n, i } } });
          }
        }
      }),
    );
    const total = 90;
    const deadline = Date.now() + 10_000;
    while (sub.events().length < total && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    const records = await seqsOn(sub, 'records:items');
    const events = await seqsOn(sub, 'events:*');
    expect(records.length + events.length).toBe(total);
    expect(records.filter((s) => events.includes(s))).toEqual([]);
    expectContiguous(
      [...records, ...events].sort((a, b) => a - b),
      1,
      total,
      'records and events together',
    );
    // On one connection the two channels arrive interleaved in seq order.
    expectContiguous(
      sub.events().map((e) => e.seq as number),
      1,
      total,
      'arrival order across channels',
    );
    await Promise.all([sub.close(), ...writers.map((w) => w.close())]);
  });

  it("never shows one tenant's records or events to another", async () => {
    const a = await connect('tenant-a', 'alice');
    const b = await connect('tenant-b', 'bob');
    await b.request({ type: 'subscribe', channel: 'records:shared_name' });
    await b.request({ type: 'subscribe', channel: 'events:*' });
    await mutate(a, [{ mid: 'secret', collection: 'shared_name', id: 'x', op: 'put', data: { secret: 1 } }]);
    await a.request({ type: 'publish', event: { type: 'secret_event', payload: { secret: 2 } } });
    await mutate(b, [{ mid: 'mine', collection: 'shared_name', id: 'y', op: 'put', data: { mine: 1 } }]);
    const [own] = await b.waitForEvents(1, 'records:shared_name');
    expect(own).toMatchObject({ id: 'y', seq: 1 });
    b.send({
      type: 'subscribe',
      rid: 'h',
      channel: 'records:shared_name?secret=1',
      since: 0,
      snapshot: true,
    });
    const snap = await b.waitFor((m) => m.type === 'snapshot');
    expect(snap.records).toEqual([]);
    expect(await seqsOn(b, 'records:shared_name')).toEqual([1]);
    expect(await seqsOn(b, 'events:*')).toEqual([]);
    expect(JSON.stringify(b.messages)).not.toContain('secret":');
    await Promise.all([a.close(), b.close()]);
  });
});
