/**
 * Access rules on REST reads, on both stores: a clerk of wh-1 can neither read, list, page into, read the
 * history of, read a version of, nor see in `GET /v1/events` a wh-2 record; a refused record answers
 * exactly as a missing one; a record moved out of wh-1 shows to the wh-1 clerk as a removal in the log;
 * hidden fields never leave the server for readers they are hidden from; managers and admins see all.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type StoreKind, startTestServer, storeKinds, type TestServer } from '../helpers/server.ts';
import { restClient } from '../http/rest.ts';

const kinds = await storeKinds();
const T = 'inventory';
const RULES = {
  read: "auth.roles.exists(r, r == 'manager') || record.locationId in auth.claims.locations",
  hide: { costPrice: "!auth.roles.exists(r, r == 'manager')" },
};

type Client = ReturnType<typeof restClient>;

describe.each(kinds)('access rules on REST reads (%s)', (kind: StoreKind) => {
  let srv: TestServer;
  let admin: Client;
  let manager: Client;
  let clerk1: Client;
  let clerk2: Client;
  /** Every response text clerk1 got: none may mention wh-2 or a cost price. */
  const seenByClerk1: string[] = [];

  async function asClerk1(path: string) {
    const res = await clerk1.get(path);
    seenByClerk1.push(res.text);
    return res;
  }

  beforeAll(async () => {
    srv = await startTestServer(kind);
    admin = restClient(srv.url, { token: await srv.token(T, 'boss', { roles: ['admin'] }) });
    manager = restClient(srv.url, { token: await srv.token(T, 'meg', { roles: ['manager'] }) });
    clerk1 = restClient(srv.url, { token: await srv.token(T, 'c1', { claims: { locations: ['wh-1'] } }) });
    clerk2 = restClient(srv.url, { token: await srv.token(T, 'c2', { claims: { locations: ['wh-2'] } }) });
    expect((await admin.put('/v1/collections/stock', { json: { rules: RULES } })).status).toBe(200);
    for (const [id, locationId] of [
      ['a1', 'wh-1'],
      ['b2', 'wh-2'],
      ['c1', 'wh-1'],
      ['d2', 'wh-2'],
      ['e1', 'wh-1'],
      ['m', 'wh-1'],
    ]) {
      const res = await admin.put(`/v1/records/stock/${id}`, {
        json: { locationId, sku: id, costPrice: 2.5 },
      });
      expect(res.status, res.text).toBe(201);
    }
    // `m` moves from wh-1 to wh-2: its first version is wh-1's, its second wh-2's.
    await admin.patch('/v1/records/stock/m', {
      json: { locationId: 'wh-2' },
      headers: { 'content-type': 'application/merge-patch+json' },
    });
    await admin.post('/v1/events', { json: { type: 'stock.counted', payload: { n: 1 } } });
  });
  afterAll(async () => srv?.close());

  it('answers a refused record exactly as a missing one, and hides fields from clerks only', async () => {
    const own = await asClerk1('/v1/records/stock/a1');
    expect(own.status).toBe(200);
    expect(own.body.data).toEqual({ locationId: 'wh-1', sku: 'a1' });
    const refused = await asClerk1('/v1/records/stock/b2');
    const missing = await asClerk1('/v1/records/stock/zz');
    expect(refused.status).toBe(404);
    expect(refused.text).toBe(missing.text);
    expect((await clerk2.get('/v1/records/stock/b2')).status).toBe(200);
    expect((await manager.get('/v1/records/stock/b2')).body.data.costPrice).toBe(2.5);
    expect((await admin.get('/v1/records/stock/a1')).body.data.costPrice).toBe(2.5);
  });

  it('lists and pages only readable records, with filters combined with the rule', async () => {
    const all = await asClerk1('/v1/records/stock');
    expect(all.body.records.map((r: { id: string }) => r.id)).toEqual(['a1', 'c1', 'e1']);
    const ids: string[] = [];
    let after = '';
    for (let i = 0; i < 5; i++) {
      const page = await asClerk1(`/v1/records/stock?limit=1${after ? `&after=${after}` : ''}`);
      ids.push(...page.body.records.map((r: { id: string }) => r.id));
      if (!page.body.next) break;
      after = page.body.next;
    }
    expect(ids).toEqual(['a1', 'c1', 'e1']);
    const filtered = await asClerk1('/v1/records/stock?sku=b2');
    expect(filtered.body.records).toEqual([]);
    expect(
      (await asClerk1('/v1/records/stock?sku=c1')).body.records.map((r: { id: string }) => r.id),
    ).toEqual(['c1']);
    expect((await clerk2.get('/v1/records/stock')).body.records.map((r: { id: string }) => r.id)).toEqual([
      'b2',
      'd2',
      'm',
    ]);
    expect((await manager.get('/v1/records/stock')).body.records).toHaveLength(6);
  });

  it('shows only the readable versions of a record, and no history at all of a refused one', async () => {
    const refused = await asClerk1('/v1/records/stock/b2/history');
    const missing = await asClerk1('/v1/records/stock/zz/history');
    expect(refused.status).toBe(404);
    expect(refused.text).toBe(missing.text);
    const moved = await asClerk1('/v1/records/stock/m/history');
    expect(moved.body.versions.map((v: { version: number }) => v.version)).toEqual([1]);
    const movedFor2 = await clerk2.get('/v1/records/stock/m/history');
    expect(movedFor2.body.versions.map((v: { version: number }) => v.version)).toEqual([2]);
    expect((await asClerk1('/v1/records/stock/m/versions/1')).body.data).toEqual({
      locationId: 'wh-1',
      sku: 'm',
    });
    const version2 = await asClerk1('/v1/records/stock/m/versions/2');
    const versionMissing = await asClerk1('/v1/records/stock/zz/versions/2');
    expect(version2.status).toBe(404);
    expect(version2.text).toBe(versionMissing.text);
    expect((await asClerk1('/v1/records/stock/b2/versions/1')).status).toBe(404);
  });

  it('leaves refused record changes out of GET /v1/events and shows a move away as a removal', async () => {
    const res = await asClerk1('/v1/events?limit=1000');
    const records = res.body.events.filter((e: { kind: string }) => e.kind === 'record');
    expect(records.map((e: { id: string; op: string }) => `${e.id}:${e.op}`)).toEqual([
      'a1:put',
      'c1:put',
      'e1:put',
      'm:put',
      'm:delete',
    ]);
    expect(records.at(-1)).toMatchObject({ id: 'm', version: 2, data: null });
    expect(res.body.events.filter((e: { kind: string }) => e.kind === 'event')).toHaveLength(1);
    // Paging through the log never stops at a page emptied by the rules.
    const seqs: number[] = [];
    let after = 0;
    for (let i = 0; i < 20; i++) {
      const page = await asClerk1(`/v1/events?limit=2&after=${after}`);
      if (page.body.events.length === 0) break;
      seqs.push(...page.body.events.map((e: { seq: number }) => e.seq));
      after = seqs.at(-1)!;
    }
    expect(seqs).toEqual(res.body.events.map((e: { seq: number }) => e.seq));
    const all = await admin.get('/v1/events?limit=1000');
    expect(all.body.events.filter((e: { kind: string }) => e.kind === 'record')).toHaveLength(7);
  });

  it('never sent clerk1 anything of wh-2 or a cost price', () => {
    expect(seenByClerk1.length).toBeGreaterThan(10);
    for (const text of seenByClerk1) {
      expect(text).not.toContain('wh-2');
      expect(text).not.toContain('costPrice');
    }
  });
});
