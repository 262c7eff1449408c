/**
 * A record the read rule hides answers every route exactly as a missing record does, on both stores:
 * WebSocket `mutate`, `POST /v1/mutations` and REST writes (delete, put, patch, with and without
 * If-Match, which must not raise a conflict or show a version), REST reads, history and versions, and
 * conflict resolution. The same routes on a record the caller may read still work.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type StoreKind, startTestServer, storeKinds, type TestServer } from '../helpers/server.ts';
import { TestWsClient } from '../helpers/ws-client.ts';
import { type RestResponse, restClient } from '../http/rest.ts';

const kinds = await storeKinds();
const T = 'private-docs';
const DOC_RULES = { read: 'record.ownerId == auth.user' };

type Client = ReturnType<typeof restClient>;

/** The parts of an answer a caller could tell two records apart by. */
function answer(res: RestResponse): unknown {
  return { status: res.status, body: res.body, etag: res.headers.get('etag') ?? null };
}

/** An answer with the record id left out, so the same request on two ids compares equal. */
function sameAs(res: RestResponse, id: string): unknown {
  return JSON.parse(JSON.stringify(answer(res)).replaceAll(id, '<id>'));
}

describe.each(kinds)('a hidden record answers as a missing one (%s)', (kind: StoreKind) => {
  let srv: TestServer;
  let alice: Client;
  let bob: Client;
  let bobWs: TestWsClient;

  beforeAll(async () => {
    srv = await startTestServer(kind);
    const admin = restClient(srv.url, { token: await srv.token(T, 'boss', { roles: ['admin'] }) });
    const res = await admin.put('/v1/collections/documents', {
      json: { strategy: 'manual', rules: DOC_RULES },
    });
    expect(res.status, res.text).toBe(200);
    // No create rule: bob may create any id, so the one answer that differs between a missing id and a
    // hidden one is that the hidden one cannot be created (docs/access-rules.md says so).
    alice = restClient(srv.url, { token: await srv.token(T, 'alice') });
    const bobToken = await srv.token(T, 'bob');
    bob = restClient(srv.url, { token: bobToken });
    bobWs = await TestWsClient.connect(srv.wsUrl, bobToken);
    for (const id of ['hidden-1', 'hidden-2']) {
      const put = await alice.put(`/v1/records/documents/${id}`, { json: { ownerId: 'alice', v: 1 } });
      expect(put.status, put.text).toBe(201);
      await alice.put(`/v1/records/documents/${id}`, { json: { ownerId: 'alice', v: 2 } });
    }
  });
  afterAll(async () => {
    await bobWs?.close();
    await srv?.close();
  });

  it('answers REST reads of a hidden record as for a missing one', async () => {
    for (const path of ['', '/history', '/versions/1', '/versions/2']) {
      const hidden = await bob.get(`/v1/records/documents/hidden-1${path}`);
      const missing = await bob.get(`/v1/records/documents/missing-1${path}`);
      expect(hidden.status, path).toBe(404);
      expect(sameAs(hidden, 'hidden-1'), path).toEqual(sameAs(missing, 'missing-1'));
    }
    expect((await alice.get('/v1/records/documents/hidden-1')).status).toBe(200);
    expect((await alice.get('/v1/records/documents/hidden-1/versions/1')).status).toBe(200);
  });

  it('answers a REST delete of a hidden record 404 NOT_FOUND, as for a missing one', async () => {
    const hidden = await bob.delete('/v1/records/documents/hidden-1');
    const missing = await bob.delete('/v1/records/documents/missing-1');
    expect(hidden.status).toBe(404);
    expect(sameAs(hidden, 'hidden-1')).toEqual(sameAs(missing, 'missing-1'));
    for (const version of ['1', '2', '7']) {
      const withBase = await bob.delete('/v1/records/documents/hidden-1', {
        headers: { 'if-match': `"${version}"` },
      });
      const withBaseMissing = await bob.delete('/v1/records/documents/missing-1', {
        headers: { 'if-match': `"${version}"` },
      });
      expect(sameAs(withBase, 'hidden-1')).toEqual(sameAs(withBaseMissing, 'missing-1'));
    }
    expect((await alice.get('/v1/records/documents/hidden-1')).body.version).toBe(2);
  });

  it('never shows a conflict, a version or the stored data to a writer of a hidden record', async () => {
    // A stale If-Match on a manual collection: a readable record would raise a conflict with its data.
    const put = await bob.put('/v1/records/documents/hidden-1', {
      json: { ownerId: 'bob' },
      headers: { 'if-match': '"1"' },
    });
    const patch = await bob.patch('/v1/records/documents/hidden-1', {
      json: { v: 3 },
      headers: { 'content-type': 'application/merge-patch+json', 'if-match': '"1"' },
    });
    for (const res of [put, patch]) {
      expect(res.status, res.text).toBe(403);
      expect(res.body.error.code).toBe('FORBIDDEN');
      expect(res.body.error.message).toBe('the access rules of documents do not allow this create');
      expect(res.text).not.toContain('alice');
      expect(res.body.error.details).toBeUndefined();
    }
    const open = await bob.get('/v1/conflicts?status=open');
    expect(open.body.conflicts).toEqual([]);
    const stored = await alice.get('/v1/records/documents/hidden-1');
    expect(stored.body).toMatchObject({ version: 2, data: { ownerId: 'alice', v: 2 } });
  });

  it('answers WebSocket and batch mutations of a hidden record as for a missing one', async () => {
    const mutations = (id: string, tag: string) => [
      { mid: `${tag}-del`, collection: 'documents', id, op: 'delete' },
      { mid: `${tag}-del-base`, collection: 'documents', id, op: 'delete', baseVersion: 1 },
      { mid: `${tag}-patch-nodata`, collection: 'documents', id, op: 'patch' },
    ];
    const strip = (results: unknown, tag: string, id: string) =>
      JSON.parse(JSON.stringify(results).replaceAll(tag, '<tag>').replaceAll(id, '<id>'));
    const ws = await bobWs.request({ type: 'mutate', mutations: mutations('hidden-2', 'wh') });
    const wsMissing = await bobWs.request({ type: 'mutate', mutations: mutations('missing-2', 'wm') });
    expect(strip(ws.results, 'wh', 'hidden-2')).toEqual(strip(wsMissing.results, 'wm', 'missing-2'));
    expect((ws.results as { error: { code: string } }[]).map((r) => r.error.code)).toEqual([
      'NOT_FOUND',
      'NOT_FOUND',
      'BAD_REQUEST',
    ]);
    const batch = await bob.post('/v1/mutations', { json: { mutations: mutations('hidden-2', 'bh') } });
    const batchMissing = await bob.post('/v1/mutations', {
      json: { mutations: mutations('missing-2', 'bm') },
    });
    expect(strip(batch.body, 'bh', 'hidden-2')).toEqual(strip(batchMissing.body, 'bm', 'missing-2'));
    expect((await alice.get('/v1/records/documents/hidden-2')).body.version).toBe(2);
  });

  it("shows nothing of a hidden record to a replay of its writer's mid or Idempotency-Key", async () => {
    const first = await alice.post('/v1/mutations', {
      json: {
        mutations: [
          {
            mid: 'first-mid',
            collection: 'documents',
            id: 'replayed',
            op: 'put',
            data: { ownerId: 'alice' },
          },
        ],
      },
    });
    expect(first.body.results[0]).toMatchObject({
      status: 'applied',
      record: { data: { ownerId: 'alice' } },
    });
    const again = await alice.post('/v1/mutations', {
      json: { mutations: [{ mid: 'first-mid', collection: 'documents', id: 'replayed', op: 'delete' }] },
    });
    expect(again.body.results[0]).toMatchObject({
      status: 'duplicate',
      record: { data: { ownerId: 'alice' } },
    });
    const ws = await bobWs.request({
      type: 'mutate',
      mutations: [{ mid: 'first-mid', collection: 'documents', id: 'replayed', op: 'delete' }],
    });
    expect(ws.results).toMatchObject([{ status: 'duplicate' }]);
    expect(JSON.stringify(ws.results)).not.toContain('ownerId');
    expect(ws.results).not.toMatchObject([{ version: expect.anything() }]);
    await alice.put('/v1/records/documents/keyed', {
      json: { ownerId: 'alice' },
      headers: { 'idempotency-key': 'first-key' },
    });
    const rest = await bob.put('/v1/records/documents/keyed', {
      json: { ownerId: 'bob' },
      headers: { 'idempotency-key': 'first-key' },
    });
    expect(rest.status, rest.text).toBe(409);
    expect(rest.text).not.toContain('ownerId');
    expect((await alice.get('/v1/records/documents/keyed')).body.data).toEqual({ ownerId: 'alice' });
  });

  it('lets the owner delete and conflict on the same record', async () => {
    const stale = await alice.put('/v1/records/documents/hidden-2', {
      json: { ownerId: 'alice', v: 9 },
      headers: { 'if-match': '"1"' },
    });
    expect(stale.status, stale.text).toBe(409);
    expect(stale.body.error.details.record.data).toEqual({ ownerId: 'alice', v: 2 });
    const deleted = await alice.delete('/v1/records/documents/hidden-2');
    expect(deleted.status, deleted.text).toBeLessThan(300);
  });

  it('answers a resolve of a conflict on a record that became hidden as a missing conflict', async () => {
    const stale = await alice.put('/v1/records/documents/hidden-1', {
      json: { ownerId: 'alice', v: 5 },
      headers: { 'if-match': '"1"' },
    });
    const conflictId = stale.body.error.details.conflictId as string;
    // Bob may not read the record: the conflict does not exist for him, whoever wrote it.
    const byBob = await bob.post(`/v1/conflicts/${conflictId}/resolve`, {
      json: { resolution: 'accept_server' },
    });
    const missing = await bob.post('/v1/conflicts/00000000-0000-4000-8000-000000000000/resolve', {
      json: { resolution: 'accept_server' },
    });
    expect(byBob.status).toBe(404);
    expect(byBob.body.error.code).toBe(missing.body.error.code);
    const byAlice = await alice.post(`/v1/conflicts/${conflictId}/resolve`, {
      json: { resolution: 'accept_server' },
    });
    expect(byAlice.status, byAlice.text).toBe(200);
    // Resolved, and still hidden from bob: he hears NOT_FOUND, not that it was already resolved.
    const again = await bob.post(`/v1/conflicts/${conflictId}/resolve`, {
      json: { resolution: 'accept_server' },
    });
    expect(again.status).toBe(404);
  });
});
