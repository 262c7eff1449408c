/**
 * Access rules on writes, on both stores: a clerk of wh-1 may write wh-1 stock and not wh-2 stock, by
 * WebSocket `mutate`, `POST /v1/mutations` and REST record writes; a refused write is `rejected` with
 * FORBIDDEN and changes nothing (no new version, no log entry, no conflict). Documents are writable by
 * their owner only, who cannot give them away. Admins bypass; the writer is never shown a hidden field.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type StoreKind, startTestServer, storeKinds, type TestServer } from '../helpers/server.ts';
import { TestWsClient } from '../helpers/ws-client.ts';
import { expectError, restClient } from '../http/rest.ts';

const kinds = await storeKinds();
const T = 'inventory';

const STOCK_RULES = {
  read: "auth.roles.exists(r, r == 'manager') || record.locationId in auth.claims.locations",
  write: 'record.locationId in auth.claims.locations',
  create: 'next.locationId in auth.claims.locations',
  hide: { costPrice: "!auth.roles.exists(r, r == 'manager')" },
};
const DOC_RULES = {
  read: 'record.ownerId == auth.user',
  write: 'record.ownerId == auth.user && next.ownerId == auth.user',
  create: 'next.ownerId == auth.user',
  delete: 'record.ownerId == auth.user',
};

type Client = ReturnType<typeof restClient>;

describe.each(kinds)('access rules on writes (%s)', (kind: StoreKind) => {
  let srv: TestServer;
  let admin: Client;
  let clerk1: Client;
  let clerk2: Client;
  let ws1: TestWsClient;
  let ws2: TestWsClient;

  async function head(): Promise<number> {
    const res = await admin.get('/v1/events?limit=1000');
    return res.body.events.at(-1)?.seq ?? 0;
  }

  beforeAll(async () => {
    srv = await startTestServer(kind);
    const adminToken = await srv.token(T, 'boss', { roles: ['admin'] });
    admin = restClient(srv.url, { token: adminToken });
    const t1 = await srv.token(T, 'clerk1', { claims: { locations: ['wh-1'] } });
    const t2 = await srv.token(T, 'clerk2', { claims: { locations: ['wh-2'] } });
    clerk1 = restClient(srv.url, { token: t1 });
    clerk2 = restClient(srv.url, { token: t2 });
    for (const [name, rules] of [
      ['stock_levels', STOCK_RULES],
      ['documents', DOC_RULES],
    ] as const) {
      const res = await admin.put(`/v1/collections/${name}`, { json: { rules } });
      expect(res.status, res.text).toBe(200);
    }
    // Admins bypass the rules: they set up stock of both locations.
    for (const [id, locationId] of [
      ['s1', 'wh-1'],
      ['s2', 'wh-2'],
    ]) {
      const res = await admin.put(`/v1/records/stock_levels/${id}`, {
        json: { locationId, sku: id, qty: 10, costPrice: 4.5 },
      });
      expect(res.status, res.text).toBeLessThan(300);
    }
    ws1 = await TestWsClient.connect(srv.wsUrl, t1);
    ws2 = await TestWsClient.connect(srv.wsUrl, t2);
  });
  afterAll(async () => {
    await ws1?.close();
    await ws2?.close();
    await srv?.close();
  });

  it('refuses a WebSocket mutate of another location with FORBIDDEN and changes nothing', async () => {
    const before = await head();
    const reply = await ws1.request({
      type: 'mutate',
      mutations: [
        { mid: 'w-refused-1', collection: 'stock_levels', id: 's2', op: 'patch', data: { qty: 0 } },
        { mid: 'w-refused-2', collection: 'stock_levels', id: 's2', op: 'delete' },
        {
          mid: 'w-refused-3',
          collection: 'stock_levels',
          id: 'new-2',
          op: 'put',
          data: { locationId: 'wh-2' },
        },
        { mid: 'w-allowed', collection: 'stock_levels', id: 's1', op: 'patch', data: { qty: 9 } },
      ],
    });
    const results = reply.results as {
      status: string;
      error?: { code: string };
      record?: { data: object };
    }[];
    // s2 is a record clerk1 may not read: its delete answers as for a missing record.
    expect(results.map((r) => [r.status, r.error?.code])).toEqual([
      ['rejected', 'FORBIDDEN'],
      ['rejected', 'NOT_FOUND'],
      ['rejected', 'FORBIDDEN'],
      ['applied', undefined],
    ]);
    // The writer is not shown the field hidden from it.
    expect(results[3]!.record!.data).toEqual({ locationId: 'wh-1', sku: 's1', qty: 9 });
    expect(await head()).toBe(before + 1);
    const s2 = await admin.get('/v1/records/stock_levels/s2');
    expect(s2.body).toMatchObject({ version: 1, data: { qty: 10 } });
    expectError(await admin.get('/v1/records/stock_levels/new-2'), 404, 'NOT_FOUND');
  });

  it('lets a clerk create stock of their own location only', async () => {
    const reply = await ws2.request({
      type: 'mutate',
      mutations: [
        {
          mid: 'c-own',
          collection: 'stock_levels',
          id: 's3',
          op: 'put',
          data: { locationId: 'wh-2', qty: 1 },
        },
        {
          mid: 'c-other',
          collection: 'stock_levels',
          id: 's4',
          op: 'put',
          data: { locationId: 'wh-1', qty: 1 },
        },
      ],
    });
    expect((reply.results as { status: string }[]).map((r) => r.status)).toEqual(['applied', 'rejected']);
  });

  it('refuses POST /v1/mutations outside the rules, per mutation', async () => {
    const res = await clerk2.post('/v1/mutations', {
      json: {
        mutations: [
          { mid: 'p-refused', collection: 'stock_levels', id: 's1', op: 'increment', data: { qty: 5 } },
          { mid: 'p-allowed', collection: 'stock_levels', id: 's2', op: 'increment', data: { qty: 5 } },
        ],
      },
    });
    expect(res.status, res.text).toBe(200);
    expect(
      res.body.results.map((r: { status: string; error?: { code: string } }) => [r.status, r.error?.code]),
    ).toEqual([
      ['rejected', 'FORBIDDEN'],
      ['applied', undefined],
    ]);
    expect((await admin.get('/v1/records/stock_levels/s1')).body.data.qty).toBe(9);
    expect((await admin.get('/v1/records/stock_levels/s2')).body.data.qty).toBe(15);
  });

  it('refuses REST record writes outside the rules with 403 FORBIDDEN', async () => {
    const before = await head();
    expectError(
      await clerk2.put('/v1/records/stock_levels/s1', { json: { locationId: 'wh-2' } }),
      403,
      'FORBIDDEN',
    );
    expectError(
      await clerk2.patch('/v1/records/stock_levels/s1', {
        json: { qty: 0 },
        headers: { 'content-type': 'application/merge-patch+json' },
      }),
      403,
      'FORBIDDEN',
    );
    // clerk2 may not read s1 either: its delete is answered as a missing record's.
    expectError(await clerk2.delete('/v1/records/stock_levels/s1'), 404, 'NOT_FOUND');
    expect(await head()).toBe(before);
    const allowed = await clerk1.put('/v1/records/stock_levels/s1', {
      json: { locationId: 'wh-1', sku: 's1', qty: 8, costPrice: 4.5 },
    });
    expect(allowed.status, allowed.text).toBe(200);
    expect(allowed.body.data).not.toHaveProperty('costPrice');
    // Hidden from the clerk is not lost: the stored record keeps what the clerk wrote.
    expect((await admin.get('/v1/records/stock_levels/s1')).body.data.costPrice).toBe(4.5);
  });

  it("keeps a user's documents theirs: others cannot write them and the owner cannot give them away", async () => {
    const alice = restClient(srv.url, { token: await srv.token(T, 'alice') });
    const bob = restClient(srv.url, { token: await srv.token(T, 'bob') });
    expect(
      (await alice.put('/v1/records/documents/d1', { json: { ownerId: 'alice', title: 'a' } })).status,
    ).toBe(201);
    expectError(await bob.put('/v1/records/documents/d2', { json: { ownerId: 'alice' } }), 403, 'FORBIDDEN');
    expectError(await bob.put('/v1/records/documents/d1', { json: { ownerId: 'bob' } }), 403, 'FORBIDDEN');
    expectError(await bob.delete('/v1/records/documents/d1'), 404, 'NOT_FOUND');
    expectError(
      await alice.put('/v1/records/documents/d1', { json: { ownerId: 'bob', title: 'a' } }),
      403,
      'FORBIDDEN',
    );
    expect(
      (await alice.put('/v1/records/documents/d1', { json: { ownerId: 'alice', title: 'b' } })).status,
    ).toBe(200);
    expect((await alice.delete('/v1/records/documents/d1')).status).toBeLessThan(300);
  });

  it('stores no conflict for a write the rules refuse', async () => {
    await admin.put('/v1/collections/guarded', {
      json: { strategy: 'manual', rules: { write: 'record.locationId in auth.claims.locations' } },
    });
    await admin.put('/v1/records/guarded/g1', { json: { locationId: 'wh-1', n: 1 } });
    await admin.put('/v1/records/guarded/g1', { json: { locationId: 'wh-1', n: 2 } });
    const refused = await ws2.request({
      type: 'mutate',
      mutations: [
        { mid: 'g-stale-2', collection: 'guarded', id: 'g1', op: 'put', baseVersion: 1, data: { n: 3 } },
      ],
    });
    expect(refused.results).toMatchObject([{ status: 'rejected', error: { code: 'FORBIDDEN' } }]);
    const allowed = await ws1.request({
      type: 'mutate',
      mutations: [
        {
          mid: 'g-stale-1',
          collection: 'guarded',
          id: 'g1',
          op: 'put',
          baseVersion: 1,
          data: { locationId: 'wh-1', n: 3 },
        },
      ],
    });
    expect(allowed.results).toMatchObject([{ status: 'conflict' }]);
    const conflicts = await admin.get('/v1/conflicts?status=open');
    expect(conflicts.status, conflicts.text).toBe(200);
    expect(conflicts.body.conflicts.map((c: { mid: string }) => c.mid)).toEqual(['g-stale-1']);
  });
});
