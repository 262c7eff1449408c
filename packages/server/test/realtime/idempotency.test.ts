/**
 * Idempotent writes over the realtime protocol: a mutation sent again with the same `mid` (in the same
 * message, in a later one, while the first is still in flight, or over REST) gets the first result back
 * as `duplicate` and changes nothing; a domain event published again with the same idempotencyKey gets
 * the first seq back and appears once in the log.
 */
import type { LogEvent, MutationResult } from '@syncbridge/protocol';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type StoreKind, startTestServer, storeKinds, type TestServer } from '../helpers/server.ts';
import { TestWsClient } from '../helpers/ws-client.ts';
import { getJson, postJson, readHistory, readLog } from './support.ts';

const kinds = await storeKinds();

describe.each(kinds)('idempotent writes over WebSocket (%s)', (kind: StoreKind) => {
  let srv: TestServer;
  let token: string;
  let client: TestWsClient;
  beforeAll(async () => {
    srv = await startTestServer(kind);
    token = await srv.token('acme', 'alice');
    client = await TestWsClient.connect(srv.wsUrl, token);
  });
  afterAll(async () => {
    await client?.close();
    await srv?.close();
  });

  const inc = (mid: string, id: string, n = 1) => ({
    mid,
    collection: 'counters',
    id,
    op: 'increment',
    data: { n },
  });

  async function mutate(...mutations: unknown[]): Promise<MutationResult[]> {
    const reply = await client.request({ type: 'mutate', mutations });
    expect(reply.type, JSON.stringify(reply)).toBe('results');
    return reply.results as MutationResult[];
  }

  async function counter(id: string): Promise<{ n: number; version: number; historyLength: number }> {
    const record = await getJson<{ data: { n: number }; version: number }>(
      `${srv.url}/v1/records/counters/${id}`,
      token,
    );
    const history = await readHistory(srv.url, token, 'counters', id);
    return { n: record.data.n, version: record.version, historyLength: history.length };
  }

  function expectDuplicateOf(dup: MutationResult, first: MutationResult): void {
    expect(first.status).toBe('applied');
    expect(dup).toMatchObject({
      mid: first.mid,
      status: 'duplicate',
      originalStatus: 'applied',
      version: first.version,
      seq: first.seq,
    });
  }

  it('applies the same mid once when a message carries it twice', async () => {
    const [first, second, third] = await mutate(inc('same-msg', 'c1'), inc('same-msg', 'c1'), inc('x', 'c1'));
    expectDuplicateOf(second!, first!);
    expect(third).toMatchObject({ status: 'applied', version: 2 });
    expect(await counter('c1')).toEqual({ n: 2, version: 2, historyLength: 2 });
  });

  it('answers a mid sent again in a later message with the first result', async () => {
    const [first] = await mutate(inc('later', 'c2'));
    const [again] = await mutate(inc('later', 'c2'));
    expectDuplicateOf(again!, first!);
    // Even with different content: the mid names the change, the first one stands.
    const [different] = await mutate(inc('later', 'c2', 100));
    expectDuplicateOf(different!, first!);
    expect(await counter('c2')).toEqual({ n: 1, version: 1, historyLength: 1 });
  });

  it('applies once when both copies are in flight at the same time', async () => {
    const message = { type: 'mutate', mutations: [inc('in-flight', 'c3')] };
    const replies = await Promise.all([client.request(message), client.request(message)]);
    const results = replies.map((r) => (r.results as MutationResult[])[0]!);
    const applied = results.filter((r) => r.status === 'applied');
    const duplicates = results.filter((r) => r.status === 'duplicate');
    expect(applied).toHaveLength(1);
    expect(duplicates).toHaveLength(1);
    expectDuplicateOf(duplicates[0]!, applied[0]!);
    expect(await counter('c3')).toEqual({ n: 1, version: 1, historyLength: 1 });
  });

  it('returns the first result, not the current state, when replayed after later changes', async () => {
    const [first] = await mutate(inc('old', 'c4'));
    await mutate(inc('newer-1', 'c4'), inc('newer-2', 'c4'));
    const [replay] = await mutate(inc('old', 'c4'));
    expectDuplicateOf(replay!, first!);
    expect(replay!.version).toBe(1);
    expect(await counter('c4')).toEqual({ n: 3, version: 3, historyLength: 3 });
  });

  it('shares one idempotency table with REST POST /v1/mutations, both ways', async () => {
    const [viaWs] = await mutate(inc('ws-then-rest', 'c5'));
    const rest = await postJson<{ results: MutationResult[] }>(`${srv.url}/v1/mutations`, token, {
      mutations: [inc('ws-then-rest', 'c5')],
    });
    expect(rest.status).toBe(200);
    expectDuplicateOf(rest.body.results[0]!, viaWs!);

    const first = await postJson<{ results: MutationResult[] }>(`${srv.url}/v1/mutations`, token, {
      mutations: [inc('rest-then-ws', 'c5')],
    });
    const [viaWsAgain] = await mutate(inc('rest-then-ws', 'c5'));
    expectDuplicateOf(viaWsAgain!, first.body.results[0]!);
    expect(await counter('c5')).toEqual({ n: 2, version: 2, historyLength: 2 });
  });

  it('replays a rejected mutation as a duplicate of the rejection, and still changes nothing', async () => {
    const [rejected] = await mutate({ mid: 'del-missing', collection: 'counters', id: 'c6', op: 'delete' });
    expect(rejected).toMatchObject({ status: 'rejected', error: { code: 'NOT_FOUND' } });
    const [created] = await mutate(inc('create-c6', 'c6'));
    expect(created!.status).toBe('applied');
    const [replay] = await mutate({ mid: 'del-missing', collection: 'counters', id: 'c6', op: 'delete' });
    expect(replay).toMatchObject({ status: 'duplicate', originalStatus: 'rejected' });
    // The replayed delete did not run now that the record exists.
    expect(await counter('c6')).toEqual({ n: 1, version: 1, historyLength: 1 });
  });

  it('keeps mids per tenant: the same mid in another tenant is a new write', async () => {
    const [mine] = await mutate(inc('shared-mid', 'c7', 5));
    const other = await TestWsClient.connect(srv.wsUrl, await srv.token('globex', 'bob'));
    const reply = await other.request({ type: 'mutate', mutations: [inc('shared-mid', 'c7', 1)] });
    const [theirs] = reply.results as MutationResult[];
    expect(theirs).toMatchObject({ status: 'applied', version: 1, seq: 1 });
    expect(theirs!.record?.data).toEqual({ n: 1 });
    expect(mine!.seq).not.toBe(theirs!.seq);
    await other.close();
    expect((await counter('c7')).n).toBe(5);
  });

  it('refuses a mid used again for another record with CONFLICT, for its own user and another', async () => {
    const [first] = await mutate(inc('one-write', 'r8', 3));
    expect(first!.status).toBe('applied');
    // The same user, another record: not that write again, so not a duplicate that drops this one.
    const [elsewhere] = await mutate(inc('one-write', 'r9', 4));
    expect(elsewhere).toMatchObject({ mid: 'one-write', status: 'rejected', error: { code: 'CONFLICT' } });
    expect(elsewhere!.error!.message).toMatch(/already used for a write to another record/);
    // Another user of the tenant who took the mid first cannot make alice's write vanish silently.
    const mallory = await TestWsClient.connect(srv.wsUrl, await srv.token('acme', 'mallory'));
    const taken = await mallory.request({
      type: 'mutate',
      mutations: [{ mid: 'alice-next', collection: 'counters', id: 'm1', op: 'put', data: { n: 0 } }],
    });
    expect((taken.results as MutationResult[])[0]!.status).toBe('applied');
    await mallory.close();
    const [alices] = await mutate(inc('alice-next', 'r10'));
    expect(alices).toMatchObject({ status: 'rejected', error: { code: 'CONFLICT' } });
    expect(alices!.record).toBeUndefined();
    // Over REST, an Idempotency-Key reused for another record is a 409, and nothing changed.
    const res = await fetch(`${srv.url}/v1/records/counters/r11`, {
      method: 'PUT',
      headers: {
        authorization: `Bearer ${token}`,
        'content-type': 'application/json',
        'idempotency-key': 'one-write',
      },
      body: JSON.stringify({ n: 1 }),
    });
    expect(res.status).toBe(409);
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe('CONFLICT');
    const untouched = await fetch(`${srv.url}/v1/records/counters/r9`, {
      headers: { authorization: `Bearer ${token}` },
    });
    expect(untouched.status).toBe(404);
    expect(await counter('r8')).toEqual({ n: 3, version: 1, historyLength: 1 });
  });

  it('keeps the mids of mutations apart from the idempotency keys of events', async () => {
    const ok = await client.request({
      type: 'publish',
      event: { type: 'key_clash', payload: {}, idempotencyKey: 'k-clash' },
    });
    expect(ok).toMatchObject({ type: 'ok' });
    // A mutation whose mid happens to look like an event key is its own write.
    const [m] = await mutate(inc('evt:k-clash', 'c8'));
    expect(m).toMatchObject({ status: 'applied', version: 1 });
    const [m2] = await mutate(inc('evt:later-key', 'c8'));
    expect(m2!.status).toBe('applied');
    const later = await client.request({
      type: 'publish',
      event: { type: 'key_clash', payload: {}, idempotencyKey: 'later-key' },
    });
    expect(later.duplicate).toBeUndefined();
    expect(later.seq).toBeGreaterThan(m2!.seq!);
  });
});

describe.each(kinds)('idempotent publish (%s)', (kind: StoreKind) => {
  let srv: TestServer;
  let token: string;
  beforeAll(async () => {
    srv = await startTestServer(kind);
    token = await srv.token('acme', 'bfc-bridge');
  });
  afterAll(async () => srv?.close());

  it('answers a repeated idempotencyKey with the first seq and keeps one event in the log', async () => {
    const publisher = await TestWsClient.connect(srv.wsUrl, token);
    const watcher = await TestWsClient.connect(srv.wsUrl, token);
    await watcher.request({ type: 'subscribe', channel: 'events:trade_closed' });

    const event = {
      type: 'trade_closed',
      payload: { tradeId: 't-1', pnl: 12.5 },
      idempotencyKey: 'trade-t-1',
    };
    const first = await publisher.request({ type: 'publish', event });
    expect(first).toMatchObject({ type: 'ok', seq: 1 });
    expect(first.duplicate).toBeUndefined();
    const again = await publisher.request({ type: 'publish', event });
    expect(again).toMatchObject({ type: 'ok', seq: 1, eventId: first.eventId, duplicate: true });
    // Different payload, same key: still the first event.
    const changed = await publisher.request({
      type: 'publish',
      event: { ...event, payload: { tradeId: 't-1', pnl: 999 } },
    });
    expect(changed).toMatchObject({ seq: 1, duplicate: true });
    // Both in flight at once: one new event, one duplicate of it.
    const pair = await Promise.all([
      publisher.request({ type: 'publish', event: { ...event, idempotencyKey: 'trade-t-2' } }),
      publisher.request({ type: 'publish', event: { ...event, idempotencyKey: 'trade-t-2' } }),
    ]);
    expect(pair.map((p) => p.seq)).toEqual([2, 2]);
    expect(pair.filter((p) => p.duplicate === true)).toHaveLength(1);
    // Over REST, the same key is the same event too.
    const rest = await postJson<{ seq: number; duplicate?: boolean }>(`${srv.url}/v1/events`, token, event);
    expect(rest.status).toBe(200);
    expect(rest.body).toMatchObject({ seq: 1, duplicate: true });
    // Without a key, each publish is a new event.
    const plain1 = await publisher.request({ type: 'publish', event: { type: 'trade_closed', payload: {} } });
    const plain2 = await publisher.request({ type: 'publish', event: { type: 'trade_closed', payload: {} } });
    expect([plain1.seq, plain2.seq]).toEqual([3, 4]);

    const log = await readLog(srv.url, token);
    expect(log.events.map((e: LogEvent) => e.seq)).toEqual([1, 2, 3, 4]);
    expect(log.events[0]).toMatchObject({ kind: 'event', type: 'trade_closed', payload: { pnl: 12.5 } });
    const seen = await watcher.waitForEvents(4, 'events:trade_closed');
    expect((await watcher.request({ type: 'ping' })).type).toBe('pong');
    expect(watcher.events('events:trade_closed').map((e) => e.seq)).toEqual([1, 2, 3, 4]);
    expect(seen[0]).toMatchObject({ eventType: 'trade_closed', payload: { tradeId: 't-1', pnl: 12.5 } });
    await Promise.all([publisher.close(), watcher.close()]);
  });
});
