/**
 * Records over REST as DESIGN.md describes them: put / merge-patch / delete, ETag and If-Match /
 * If-None-Match, Idempotency-Key, listing with paging and filters, history, batches of mutations,
 * and collection settings (strategy, JSON schema).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type StoreKind, startTestServer, storeKinds, type TestServer } from '../helpers/server.ts';
import { expectError, type Json, RECORD_KEYS, restClient } from './rest.ts';

const kinds = await storeKinds();

describe.each(kinds)('REST records (%s)', (kind: StoreKind) => {
  let srv: TestServer;
  let api: ReturnType<typeof restClient>;
  let admin: ReturnType<typeof restClient>;

  beforeAll(async () => {
    srv = await startTestServer(kind);
    api = restClient(srv.url, { token: await srv.token('acme', 'alice') });
    admin = restClient(srv.url, { token: await srv.token('acme', 'boss', { roles: ['admin'] }) });
  });
  afterAll(async () => srv?.close());

  it('PUT creates (201, ETag "1") and returns the record; PUT again replaces it (200, version 2)', async () => {
    const created = await api.put('/v1/records/todos/t1', { json: { title: 'write tests', done: false } });
    expect(created.status).toBe(201);
    expect(created.headers.get('etag')).toBe('"1"');
    expect(Object.keys(created.body).sort()).toEqual(RECORD_KEYS);
    expect(created.body).toMatchObject({
      collection: 'todos',
      id: 't1',
      data: { title: 'write tests', done: false },
      version: 1,
      updatedBy: 'alice',
      deleted: false,
    });
    expect(typeof created.body.hlc).toBe('string');
    expect(Number.isNaN(Date.parse(created.body.updatedAt))).toBe(false);

    const replaced = await api.put('/v1/records/todos/t1', { json: { title: 'ship' } });
    expect(replaced.status).toBe(200);
    expect(replaced.headers.get('etag')).toBe('"2"');
    expect(replaced.body.version).toBe(2);
    expect(replaced.body.data).toEqual({ title: 'ship' });
    expect(replaced.body.hlc > created.body.hlc).toBe(true);

    const read = await api.get('/v1/records/todos/t1');
    expect(read.status).toBe(200);
    expect(read.headers.get('etag')).toBe('"2"');
    expect(read.body).toEqual(replaced.body);
  });

  it('PATCH applies an RFC 7396 merge patch, as application/json and as application/merge-patch+json', async () => {
    await api.put('/v1/records/profiles/p1', {
      json: { name: 'Ada', address: { city: 'London', zip: 'N1' }, tags: ['a', 'b'], nick: 'ad' },
    });
    const first = await api.patch('/v1/records/profiles/p1', {
      json: { address: { city: 'Paris' }, nick: null, tags: ['c'] },
    });
    expect(first.status).toBe(200);
    expect(first.headers.get('etag')).toBe('"2"');
    expect(first.body.data).toEqual({ name: 'Ada', address: { city: 'Paris', zip: 'N1' }, tags: ['c'] });

    const second = await api.patch('/v1/records/profiles/p1', {
      raw: JSON.stringify({ address: { zip: null, country: 'FR' }, age: 36 }),
      headers: { 'content-type': 'application/merge-patch+json' },
    });
    expect(second.status).toBe(200);
    expect(second.body.version).toBe(3);
    expect(second.body.data).toEqual({
      name: 'Ada',
      address: { city: 'Paris', country: 'FR' },
      tags: ['c'],
      age: 36,
    });
    expect((await api.get('/v1/records/profiles/p1')).body.data).toEqual(second.body.data);
  });

  it('DELETE leaves a tombstone: GET answers 404, a listing with includeDeleted shows deleted: true', async () => {
    await api.put('/v1/records/notes/n1', { json: { text: 'bye' } });
    await api.put('/v1/records/notes/n2', { json: { text: 'stay' } });
    const deleted = await api.delete('/v1/records/notes/n1');
    expect(deleted.status).toBe(200);
    expect(deleted.body).toMatchObject({ id: 'n1', version: 2, deleted: true });

    expectError(await api.get('/v1/records/notes/n1'), 404, 'NOT_FOUND');
    const live = await api.get('/v1/records/notes');
    expect(live.body.records.map((r: Json) => r.id)).toEqual(['n2']);
    const all = await api.get('/v1/records/notes?includeDeleted=true');
    expect(all.body.records.map((r: Json) => [r.id, r.deleted])).toEqual([
      ['n1', true],
      ['n2', false],
    ]);
    // Deleting again finds nothing to delete.
    expectError(await api.delete('/v1/records/notes/n1'), 404, 'NOT_FOUND');
    // A put after a delete brings the record back with the next version.
    const revived = await api.put('/v1/records/notes/n1', { json: { text: 'back' } });
    expect(revived.status).toBe(200);
    expect(revived.body).toMatchObject({ version: 3, deleted: false, data: { text: 'back' } });
  });

  it('If-Match with the current version applies, in any of the usual ETag spellings', async () => {
    await api.put('/v1/records/im/r1', { json: { n: 0 } });
    let version = 1;
    for (const spelling of ['"1"', '2', 'W/"3"']) {
      const res = await api.put('/v1/records/im/r1', {
        json: { n: version },
        headers: { 'if-match': spelling },
      });
      expect(res.status, res.text).toBe(200);
      version += 1;
      expect(res.body.version).toBe(version);
    }
    const patched = await api.patch('/v1/records/im/r1', { json: { m: 1 }, headers: { 'if-match': '"4"' } });
    expect(patched.body).toMatchObject({ version: 5, data: { n: 3, m: 1 } });
  });

  it('on the default lww collection a stale If-Match without a client hlc still applies (the server clock is later)', async () => {
    await api.put('/v1/records/lwwc/r1', { json: { v: 1 } });
    await api.put('/v1/records/lwwc/r1', { json: { v: 2 } });
    const stale = await api.put('/v1/records/lwwc/r1', {
      json: { v: 'stale' },
      headers: { 'if-match': '"1"' },
    });
    expect(stale.status).toBe(200);
    expect(stale.body).toMatchObject({ version: 3, data: { v: 'stale' } });
  });

  it('on a server_wins collection a stale If-Match gets 409 CONFLICT carrying the current record', async () => {
    const settings = await admin.put('/v1/collections/ledger', { json: { strategy: 'server_wins' } });
    expect(settings.status).toBe(200);
    expect(settings.body).toEqual({ name: 'ledger', settings: { strategy: 'server_wins' } });
    expect((await api.get('/v1/collections/ledger')).body.settings.strategy).toBe('server_wins');

    await api.put('/v1/records/ledger/acct', { json: { balance: 10 } });
    const ok = await api.put('/v1/records/ledger/acct', {
      json: { balance: 20 },
      headers: { 'if-match': '"1"' },
    });
    expect(ok.status).toBe(200);
    const current = ok.body;

    for (const [method, body] of [
      ['put', { balance: 99 }],
      ['patch', { balance: 98 }],
      ['delete', undefined],
    ] as const) {
      const res = await api[method]('/v1/records/ledger/acct', {
        ...(body ? { json: body } : {}),
        headers: { 'if-match': '"1"' },
      });
      expectError(res, 409, 'CONFLICT');
      expect(res.body.error.details.record).toEqual(current);
    }
    const after = await api.get('/v1/records/ledger/acct');
    expect(after.body).toEqual(current);
  });

  it('a malformed If-Match is refused with 400 and changes nothing', async () => {
    await api.put('/v1/records/im/bad', { json: { v: 1 } });
    for (const header of ['abc', '1.5', '-1', 'W/abc', '"1"x', '1,2']) {
      const res = await api.put('/v1/records/im/bad', { json: { v: 2 }, headers: { 'if-match': header } });
      expectError(res, 400, 'BAD_REQUEST');
    }
    expect((await api.get('/v1/records/im/bad')).body).toMatchObject({ version: 1, data: { v: 1 } });
  });

  it('If-None-Match with the current ETag answers 304 without a body; an older ETag gets the record', async () => {
    await api.put('/v1/records/cache/c1', { json: { v: 1 } });
    await api.put('/v1/records/cache/c1', { json: { v: 2 } });
    const fresh = await api.get('/v1/records/cache/c1', { headers: { 'if-none-match': '"2"' } });
    expect(fresh.status).toBe(304);
    expect(fresh.text).toBe('');
    expect(fresh.headers.get('etag')).toBe('"2"');
    const stale = await api.get('/v1/records/cache/c1', { headers: { 'if-none-match': '"1"' } });
    expect(stale.status).toBe(200);
    expect(stale.body.data).toEqual({ v: 2 });
  });

  it('repeating a write with the same Idempotency-Key returns the first result and changes nothing', async () => {
    const first = await api.put('/v1/records/idem/i1', {
      json: { amount: 5 },
      headers: { 'idempotency-key': 'pay-1' },
    });
    expect(first.status).toBe(201);
    expect(first.headers.get('idempotent-replayed')).toBeNull();
    for (const data of [{ amount: 5 }, { amount: 500 }]) {
      const again = await api.put('/v1/records/idem/i1', {
        json: data,
        headers: { 'idempotency-key': 'pay-1' },
      });
      expect([200, 201]).toContain(again.status);
      expect(again.headers.get('idempotent-replayed')).toBe('true');
      expect(again.headers.get('etag')).toBe('"1"');
      expect(again.body).toEqual(first.body);
    }
    const patchOnce = await api.patch('/v1/records/idem/i1', {
      json: { note: 'x' },
      headers: { 'idempotency-key': 'pay-2' },
    });
    expect(patchOnce.body.version).toBe(2);
    const patchAgain = await api.patch('/v1/records/idem/i1', {
      json: { note: 'y' },
      headers: { 'idempotency-key': 'pay-2' },
    });
    expect(patchAgain.headers.get('idempotent-replayed')).toBe('true');
    expect(patchAgain.body).toEqual(patchOnce.body);

    const read = await api.get('/v1/records/idem/i1');
    expect(read.body).toMatchObject({ version: 2, data: { amount: 5, note: 'x' } });
    const history = await api.get('/v1/records/idem/i1/history');
    expect(history.body.versions).toHaveLength(2);
  });

  it('lists records in pages of `limit`, continuing `after` the `next` cursor', async () => {
    for (const id of ['p5', 'p3', 'p1', 'p4', 'p2'])
      await api.put(`/v1/records/pages/${id}`, { json: { id } });
    const seen: string[] = [];
    let after: string | undefined;
    const pages: number[] = [];
    for (let i = 0; i < 5; i++) {
      const res = await api.get(`/v1/records/pages?limit=2${after ? `&after=${after}` : ''}`);
      expect(res.status).toBe(200);
      pages.push(res.body.records.length);
      seen.push(...res.body.records.map((r: Json) => r.id));
      after = res.body.next;
      if (!after) break;
      expect(after).toBe(seen[seen.length - 1]);
    }
    expect(seen).toEqual(['p1', 'p2', 'p3', 'p4', 'p5']);
    expect(pages).toEqual([2, 2, 1]);
    const exact = await api.get('/v1/records/pages?limit=5');
    expect(exact.body.records).toHaveLength(5);
    expect(exact.body.next).toBeUndefined();
    expectError(await api.get('/v1/records/pages?limit=0'), 400, 'BAD_REQUEST');
    expectError(await api.get('/v1/records/pages?limit=abc'), 400, 'BAD_REQUEST');
    expect((await api.get('/v1/records/empty-collection')).body).toEqual({ records: [] });
  });

  it('filters a listing by ?field=value: strings, numbers, booleans and dotted paths', async () => {
    const rows: Record<string, Record<string, unknown>> = {
      s1: { sku: 'apple', qty: 3, active: true, loc: { wh: 'wh-1' } },
      s2: { sku: 'pear', qty: 3, active: false, loc: { wh: 'wh-2' } },
      s3: { sku: 'apple', qty: 7, active: true, loc: { wh: 'wh-2' } },
      s4: { sku: 'plum', qty: '3', active: 'true', loc: 'wh-1' },
    };
    for (const [id, data] of Object.entries(rows)) await api.put(`/v1/records/stock/${id}`, { json: data });
    const ids = async (query: string) => {
      const res = await api.get(`/v1/records/stock?${query}`);
      expect(res.status, res.text).toBe(200);
      return res.body.records.map((r: Json) => r.id);
    };
    expect(await ids('sku=apple')).toEqual(['s1', 's3']);
    expect(await ids('qty=3')).toEqual(['s1', 's2', 's4']);
    expect(await ids('active=true')).toEqual(['s1', 's3', 's4']);
    expect(await ids('active=false')).toEqual(['s2']);
    expect(await ids('loc.wh=wh-2')).toEqual(['s2', 's3']);
    expect(await ids('sku=apple&loc.wh=wh-2')).toEqual(['s3']);
    expect(await ids('sku=banana')).toEqual([]);
    expect(await ids('sku=apple&limit=1')).toEqual(['s1']);
    expect(await ids('sku=apple&limit=1&after=s1')).toEqual(['s3']);
  });

  it('history lists every version with actor, op and data', async () => {
    const bob = restClient(srv.url, { token: await srv.token('acme', 'bob') });
    await api.put('/v1/records/hist/h1', { json: { a: 1 } });
    await bob.patch('/v1/records/hist/h1', { json: { b: 2 } });
    await api.post('/v1/mutations', {
      json: {
        mutations: [{ mid: 'hist-inc', collection: 'hist', id: 'h1', op: 'increment', data: { a: 4 } }],
      },
    });
    await bob.delete('/v1/records/hist/h1');
    const res = await api.get('/v1/records/hist/h1/history');
    expect(res.status).toBe(200);
    const versions = res.body.versions;
    expect(versions.map((v: Json) => [v.version, v.op, v.actor, v.data])).toEqual([
      [1, 'put', 'alice', { a: 1 }],
      [2, 'patch', 'bob', { a: 1, b: 2 }],
      [3, 'increment', 'alice', { a: 5, b: 2 }],
      [4, 'delete', 'bob', null],
    ]);
    for (const v of versions) {
      expect(Number.isNaN(Date.parse(v.ts))).toBe(false);
      expect(typeof v.seq).toBe('number');
    }
    expect(versions.map((v: Json) => v.seq)).toEqual(
      [...versions.map((v: Json) => v.seq)].sort((a, b) => a - b),
    );
    const limited = await api.get('/v1/records/hist/h1/history?limit=2');
    expect(limited.body.versions.map((v: Json) => v.version)).toEqual([1, 2]);
    expectError(await api.get('/v1/records/hist/nobody/history'), 404, 'NOT_FOUND');
  });

  it('POST /v1/mutations applies a batch in order; a rejected mutation does not stop the rest', async () => {
    const mutations = [
      { mid: 'b1', collection: 'batch', id: 'x', op: 'put', data: { n: 1, label: 'a' } },
      { mid: 'b2', collection: 'batch', id: 'x', op: 'patch', data: { label: 'b' } },
      { mid: 'b3', collection: 'batch', id: 'x', op: 'increment', data: { n: 5 } },
      { mid: 'b4', collection: 'batch', id: 'x', op: 'increment', data: { label: 1 } },
      { mid: 'b5', collection: 'batch', id: 'fresh-patch', op: 'patch', data: { a: 1 } },
      { mid: 'b6', collection: 'batch', id: 'fresh-inc', op: 'increment', data: { c: 2 } },
      { mid: 'b7', collection: 'batch', id: 'ghost', op: 'delete' },
      { mid: 'b8', collection: 'batch', id: 'x', op: 'increment', data: { n: -2 } },
      { mid: 'b9', collection: 'batch', id: 'y', op: 'put', data: { keep: true } },
      { mid: 'b10', collection: 'batch', id: 'y', op: 'delete' },
    ];
    const res = await api.post('/v1/mutations', { json: { mutations } });
    expect(res.status, res.text).toBe(200);
    const results = res.body.results;
    expect(results.map((r: Json) => [r.mid, r.status, r.version, r.error?.code])).toEqual([
      ['b1', 'applied', 1, undefined],
      ['b2', 'applied', 2, undefined],
      ['b3', 'applied', 3, undefined],
      ['b4', 'rejected', undefined, 'BAD_REQUEST'],
      ['b5', 'applied', 1, undefined],
      ['b6', 'applied', 1, undefined],
      ['b7', 'rejected', undefined, 'NOT_FOUND'],
      ['b8', 'applied', 4, undefined],
      ['b9', 'applied', 1, undefined],
      ['b10', 'applied', 2, undefined],
    ]);
    const seqs = results.filter((r: Json) => r.status === 'applied').map((r: Json) => r.seq);
    expect(seqs).toEqual([...seqs].sort((a: number, b: number) => a - b));
    expect(new Set(seqs).size).toBe(seqs.length);
    expect(results[2].record.data).toEqual({ n: 6, label: 'b' });

    expect((await api.get('/v1/records/batch/x')).body).toMatchObject({
      version: 4,
      data: { n: 4, label: 'b' },
    });
    expect((await api.get('/v1/records/batch/fresh-patch')).body.data).toEqual({ a: 1 });
    expect((await api.get('/v1/records/batch/fresh-inc')).body.data).toEqual({ c: 2 });
    expectError(await api.get('/v1/records/batch/ghost'), 404, 'NOT_FOUND');
    expectError(await api.get('/v1/records/batch/y'), 404, 'NOT_FOUND');

    // The same batch again (an offline queue sent twice) changes nothing.
    const replay = await api.post('/v1/mutations', { json: { mutations } });
    expect(replay.body.results.map((r: Json) => [r.mid, r.status, r.originalStatus])).toEqual(
      results.map((r: Json) => [r.mid, 'duplicate', r.status]),
    );
    expect((await api.get('/v1/records/batch/x')).body.version).toBe(4);
  });

  it('a collection JSON schema rejects non-matching writes with 400 and the problems by path', async () => {
    const schema = {
      type: 'object',
      properties: { name: { type: 'string' }, qty: { type: 'integer', minimum: 0 } },
      required: ['name'],
    };
    const set = await admin.put('/v1/collections/typed', { json: { schema } });
    expect(set.status, set.text).toBe(200);
    expect(set.body.settings).toEqual({ strategy: 'lww', schema });
    const listed = await api.get('/v1/collections');
    expect(listed.body.collections).toContainEqual({ name: 'typed', settings: { strategy: 'lww', schema } });

    const good = await api.put('/v1/records/typed/t1', { json: { name: 'bolt', qty: 3 } });
    expect(good.status).toBe(201);

    const badType = await api.put('/v1/records/typed/t2', { json: { name: 'nut', qty: 'many' } });
    expectError(badType, 400, 'BAD_REQUEST');
    expect(badType.body.error.details.problems).toContainEqual(expect.objectContaining({ path: '/qty' }));

    const badPatch = await api.patch('/v1/records/typed/t1', { json: { qty: -1, name: null } });
    expectError(badPatch, 400, 'BAD_REQUEST');
    const problems = badPatch.body.error.details.problems;
    expect(problems).toContainEqual(expect.objectContaining({ path: '/qty' }));
    expect(problems.some((p: Json) => /name/.test(p.message))).toBe(true);

    const badBatch = await api.post('/v1/mutations', {
      json: { mutations: [{ mid: 'typed-1', collection: 'typed', id: 't3', op: 'put', data: { qty: 1 } }] },
    });
    expect(badBatch.body.results[0]).toMatchObject({ status: 'rejected', error: { code: 'BAD_REQUEST' } });

    expect((await api.get('/v1/records/typed/t1')).body).toMatchObject({
      version: 1,
      data: { name: 'bolt', qty: 3 },
    });
    expectError(await api.get('/v1/records/typed/t2'), 404, 'NOT_FOUND');
    expectError(await api.get('/v1/records/typed/t3'), 404, 'NOT_FOUND');
  });

  it('an invalid JSON schema is refused with 400 and the old settings stay', async () => {
    const schema = { type: 'object', required: ['x'] };
    await admin.put('/v1/collections/guarded', { json: { schema } });
    for (const bad of [{ type: 'nonsense' }, { type: 'object', required: 'x' }, { minimum: 'zero' }]) {
      const res = await admin.put('/v1/collections/guarded', { json: { schema: bad } });
      expectError(res, 400, 'BAD_REQUEST');
    }
    expect((await api.get('/v1/collections/guarded')).body.settings.schema).toEqual(schema);
    expectError(await api.put('/v1/records/guarded/g1', { json: { y: 1 } }), 400, 'BAD_REQUEST');
    expectError(
      await admin.put('/v1/collections/guarded', { json: { strategy: 'chaos' } }),
      400,
      'BAD_REQUEST',
    );
  });

  it('a token without the admin role cannot change collection settings (403)', async () => {
    const res = await api.put('/v1/collections/locked', { json: { strategy: 'server_wins' } });
    expectError(res, 403, 'FORBIDDEN');
    expect((await api.get('/v1/collections/locked')).body).toEqual({
      name: 'locked',
      settings: { strategy: 'lww' },
    });
    // Still lww: a stale If-Match applies.
    await api.put('/v1/records/locked/l1', { json: { v: 1 } });
    await api.put('/v1/records/locked/l1', { json: { v: 2 } });
    const stale = await api.put('/v1/records/locked/l1', { json: { v: 3 }, headers: { 'if-match': '"1"' } });
    expect(stale.status).toBe(200);
  });
});
