/**
 * Domain events over REST: POST /v1/events appends to the tenant's log (idempotent by key),
 * GET /v1/events reads record changes and domain events in one seq order.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type StoreKind, startTestServer, storeKinds, type TestServer } from '../helpers/server.ts';
import { TestWsClient } from '../helpers/ws-client.ts';
import { expectError, type Json, restClient } from './rest.ts';

const kinds = await storeKinds();

describe.each(kinds)('REST events (%s)', (kind: StoreKind) => {
  let srv: TestServer;
  let api: ReturnType<typeof restClient>;

  beforeAll(async () => {
    srv = await startTestServer(kind);
  });
  afterAll(async () => srv?.close());

  // Each test uses its own tenant so seqs start at 1.
  const client = async (tenant: string, user = 'trader') =>
    restClient(srv.url, { token: await srv.token(tenant, user) });

  it('POST /v1/events answers 201 with the seq and a fresh eventId', async () => {
    api = await client('ev-basic');
    const first = await api.post('/v1/events', {
      json: {
        type: 'trade_closed',
        payload: { id: 't1', pnl: 12.5 },
        source: 'vyomo',
        target: 'bfc',
        priority: 7,
      },
    });
    expect(first.status, first.text).toBe(201);
    expect(Object.keys(first.body).sort()).toEqual(['eventId', 'seq']);
    expect(first.body.seq).toBe(1);
    expect(typeof first.body.eventId).toBe('string');
    const second = await api.post('/v1/events', { json: { type: 'trade_opened' } });
    expect(second.status).toBe(201);
    expect(second.body.seq).toBe(2);
    expect(second.body.eventId).not.toBe(first.body.eventId);

    const log = await api.get('/v1/events');
    expect(log.body.head).toBe(2);
    expect(log.body.events[0]).toMatchObject({
      seq: 1,
      eventId: first.body.eventId,
      kind: 'event',
      type: 'trade_closed',
      payload: { id: 't1', pnl: 12.5 },
      source: 'vyomo',
      target: 'bfc',
      priority: 7,
      actor: 'trader',
    });
    expect(Number.isNaN(Date.parse(log.body.events[0].ts))).toBe(false);
    expect(log.body.events[1]).toMatchObject({ seq: 2, kind: 'event', type: 'trade_opened' });
  });

  it('the same idempotencyKey answers 200 with the first seq and duplicate: true, and appends nothing', async () => {
    api = await client('ev-idem');
    const event = { type: 'payment_received', payload: { amount: 10 }, idempotencyKey: 'pay-42' };
    const first = await api.post('/v1/events', { json: event });
    expect(first.status).toBe(201);
    expect(first.body.duplicate).toBeUndefined();
    await api.post('/v1/events', { json: { type: 'other' } });

    for (const payload of [{ amount: 10 }, { amount: 999 }]) {
      const again = await api.post('/v1/events', { json: { ...event, payload } });
      expect(again.status).toBe(200);
      expect(again.body).toEqual({ seq: first.body.seq, eventId: first.body.eventId, duplicate: true });
    }
    const log = await api.get('/v1/events');
    expect(log.body.head).toBe(2);
    expect(log.body.events.map((e: Json) => e.type)).toEqual(['payment_received', 'other']);
    expect(log.body.events[0].payload).toEqual({ amount: 10 });

    // A key is per tenant: another tenant may use the same one.
    const other = await client('ev-idem-other');
    const elsewhere = await other.post('/v1/events', { json: event });
    expect(elsewhere.status).toBe(201);
    expect(elsewhere.body.seq).toBe(1);
  });

  it('GET /v1/events returns record changes and domain events in one seq order, paged by after/limit, filtered by type', async () => {
    api = await client('ev-log');
    await api.put('/v1/records/orders/o1', { json: { qty: 1 } });
    await api.post('/v1/events', { json: { type: 'order_placed', payload: { id: 'o1' } } });
    await api.patch('/v1/records/orders/o1', { json: { qty: 2 } });
    await api.post('/v1/events', { json: { type: 'order_shipped', payload: { id: 'o1' } } });
    await api.post('/v1/events', { json: { type: 'order_placed', payload: { id: 'o2' } } });
    await api.delete('/v1/records/orders/o1');

    const all = await api.get('/v1/events');
    expect(all.status).toBe(200);
    expect(all.body.head).toBe(6);
    expect(all.body.events.map((e: Json) => [e.seq, e.kind, e.type ?? e.op])).toEqual([
      [1, 'record', 'put'],
      [2, 'event', 'order_placed'],
      [3, 'record', 'patch'],
      [4, 'event', 'order_shipped'],
      [5, 'event', 'order_placed'],
      [6, 'record', 'delete'],
    ]);
    expect(all.body.events[2]).toMatchObject({
      kind: 'record',
      collection: 'orders',
      id: 'o1',
      op: 'patch',
      version: 2,
      data: { qty: 2 },
      actor: 'trader',
    });

    const page1 = await api.get('/v1/events?limit=2');
    expect(page1.body.events.map((e: Json) => e.seq)).toEqual([1, 2]);
    expect(page1.body.head).toBe(6);
    const page2 = await api.get('/v1/events?after=2&limit=3');
    expect(page2.body.events.map((e: Json) => e.seq)).toEqual([3, 4, 5]);
    const tail = await api.get('/v1/events?after=5&limit=3');
    expect(tail.body.events.map((e: Json) => e.seq)).toEqual([6]);
    const beyond = await api.get('/v1/events?after=6');
    expect(beyond.body).toEqual({ events: [], head: 6 });

    const placed = await api.get('/v1/events?type=order_placed');
    expect(placed.body.events.map((e: Json) => [e.seq, e.payload])).toEqual([
      [2, { id: 'o1' }],
      [5, { id: 'o2' }],
    ]);
    const placedAfter = await api.get('/v1/events?type=order_placed&after=2');
    expect(placedAfter.body.events.map((e: Json) => e.seq)).toEqual([5]);

    expectError(await api.get('/v1/events?after=-1'), 400, 'BAD_REQUEST');
    expectError(await api.get('/v1/events?limit=0'), 400, 'BAD_REQUEST');
    expectError(await api.get('/v1/events?limit=100000'), 400, 'BAD_REQUEST');
    expectError(await api.get('/v1/events?after=abc'), 400, 'BAD_REQUEST');
  });

  it('a new tenant has an empty log with head 0', async () => {
    api = await client('ev-empty');
    expect((await api.get('/v1/events')).body).toEqual({ events: [], head: 0 });
  });

  it("nobody may publish the server's own syncbridge.* event types (they would pass for audit), by REST or WebSocket", async () => {
    const tenant = 'ev-reserved';
    const forged = { type: 'syncbridge.conflict_resolved', payload: { collection: 'docs', id: 'd1' } };
    const callers = [
      restClient(srv.url, { token: await srv.token(tenant, 'mallory') }),
      restClient(srv.url, { token: await srv.token(tenant, 'boss', { roles: ['admin'] }) }),
      restClient(srv.url, { apiKey: srv.adminKey, tenant }),
    ];
    for (const caller of callers) {
      const res = await caller.post('/v1/events', { json: forged });
      expectError(res, 403, 'FORBIDDEN');
      expect(res.body.error.message).toMatch(/reserved/);
    }
    const ws = await TestWsClient.connect(srv.wsUrl, await srv.token(tenant, 'mallory'));
    try {
      const reply = await ws.request({ type: 'publish', event: { type: 'syncbridge.rules_changed' } });
      expect(reply).toMatchObject({ type: 'error', code: 'FORBIDDEN' });
      // The connection carries on, and a type that merely contains the word is fine.
      const fine = await ws.request({ type: 'publish', event: { type: 'my.syncbridge.note' } });
      expect(fine).toMatchObject({ type: 'ok', seq: 1 });
    } finally {
      await ws.close();
    }
    const log = await callers[2]!.get('/v1/events');
    expect((log.body.events as Json[]).map((e) => e.type)).toEqual(['my.syncbridge.note']);
  });

  it('invalid event bodies get 400 BAD_REQUEST in the DESIGN shape and append nothing', async () => {
    api = await client('ev-invalid');
    const bad: Array<[string, unknown]> = [
      ['missing type', { payload: { a: 1 } }],
      ['type with spaces', { type: 'trade closed' }],
      ['empty type', { type: '' }],
      ['type not a string', { type: 42 }],
      ['priority 42', { type: 'ok_type', priority: 42 }],
      ['negative priority', { type: 'ok_type', priority: -1 }],
      ['fractional priority', { type: 'ok_type', priority: 1.5 }],
      ['priority as text', { type: 'ok_type', priority: '7' }],
      ['unknown field', { type: 'ok_type', color: 'red' }],
      ['bad source', { type: 'ok_type', source: 'a/b' }],
      ['empty idempotencyKey', { type: 'ok_type', idempotencyKey: '' }],
      ['array body', [{ type: 'ok_type' }]],
      ['null body', null],
    ];
    for (const [what, body] of bad) {
      const res = await api.post('/v1/events', {
        raw: JSON.stringify(body),
        headers: { 'content-type': 'application/json' },
      });
      expect(res.status, `${what}: ${res.text}`).toBe(400);
      expectError(res, 400, 'BAD_REQUEST');
    }
    const spaces = await api.post('/v1/events', { json: { type: 'trade closed' } });
    expect(JSON.stringify(spaces.body.error)).toMatch(/type/);
    const unknown = await api.post('/v1/events', { json: { type: 'ok_type', color: 'red' } });
    expect(JSON.stringify(unknown.body.error)).toMatch(/color|additional/i);
    expect(Array.isArray(unknown.body.error.details)).toBe(true);

    expect((await api.get('/v1/events')).body).toEqual({ events: [], head: 0 });
    // The tenant still works afterwards.
    const ok = await api.post('/v1/events', {
      json: { type: 'ok_type', priority: 9, payload: 'text payloads are fine' },
    });
    expect(ok.status).toBe(201);
    expect(ok.body.seq).toBe(1);
  });
});
