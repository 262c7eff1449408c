/**
 * Branches of records, on both stores, over REST and WebSocket: fork a document at a version, write on
 * the branch (its own versions and history, on its own channel only), compare it with the main line,
 * merge it back with the collection's three-way merge (clashes to the manual queue when so configured),
 * delete it. Branch writes are log entries like any other: the audit query and replay verification see
 * them, and the collection's access rules judge them.
 */
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { verifyReplay } from '../../src/replay/verify.ts';
import { type StoreKind, startTestServer, storeKinds, type TestServer } from '../helpers/server.ts';
import { TestWsClient } from '../helpers/ws-client.ts';
import { expectError, restClient } from '../http/rest.ts';

const kinds = await storeKinds();
const T = 'docs-tenant';

type Client = ReturnType<typeof restClient>;

describe.each(kinds)('record branches (%s)', (kind: StoreKind) => {
  let srv: TestServer;
  let alice: Client;
  let bob: Client;
  let admin: Client;
  let wsMain: TestWsClient;
  let wsBranch: TestWsClient;

  beforeAll(async () => {
    srv = await startTestServer(kind, {
      collections: {
        docs: { strategy: 'merge', textFields: ['body'] },
        strict: { strategy: 'merge', mergeFallback: 'manual' },
        byhand: { strategy: 'manual' },
        private: {
          rules: {
            read: 'record.ownerId == auth.user',
            write: 'record.ownerId == auth.user && next.ownerId == auth.user',
            create: 'next.ownerId == auth.user',
            delete: 'record.ownerId == auth.user',
          },
        },
      },
    });
    alice = restClient(srv.url, { token: await srv.token(T, 'alice') });
    bob = restClient(srv.url, { token: await srv.token(T, 'bob') });
    admin = restClient(srv.url, { token: await srv.token(T, 'boss', { roles: ['admin'] }) });
    wsMain = await TestWsClient.connect(srv.wsUrl, await srv.token(T, 'carol'));
    wsBranch = await TestWsClient.connect(srv.wsUrl, await srv.token(T, 'dave'));
  });

  afterAll(async () => {
    await wsMain?.close();
    await wsBranch?.close();
    await srv?.close();
  });

  it('forks a record at its current version and refuses bad forks with typed errors', async () => {
    expect(
      (await alice.put('/v1/records/docs/d1', { json: { title: 'Plan', body: 'one two' } })).status,
    ).toBe(201);
    expect((await alice.patch('/v1/records/docs/d1', { json: { status: 'draft' } })).status).toBe(200);
    const fork = await bob.post('/v1/records/docs/d1/branches', { json: { name: 'review' } });
    expect(fork.status, fork.text).toBe(201);
    expect(fork.body.branch).toMatchObject({
      name: 'review',
      collection: 'docs',
      id: 'd1',
      ref: 'docs@review',
      channel: 'records:docs@review',
      forkVersion: 2,
      createdBy: 'bob',
    });
    expect(fork.body.record).toMatchObject({
      collection: 'docs@review',
      id: 'd1',
      version: 1,
      data: { title: 'Plan', body: 'one two', status: 'draft' },
    });
    expectError(
      await bob.post('/v1/records/docs/d1/branches', { json: { name: 'review' } }),
      409,
      'CONFLICT',
    );
    expectError(
      await bob.post('/v1/records/docs/d1/branches', { json: { name: 'a@b' } }),
      400,
      'BAD_REQUEST',
    );
    expectError(await bob.post('/v1/records/docs/d1/branches', { json: { name: '..' } }), 400, 'BAD_REQUEST');
    expectError(
      await bob.post('/v1/records/docs/d1/branches', { json: { name: 'x'.repeat(65) } }),
      400,
      'BAD_REQUEST',
    );
    expectError(await bob.post('/v1/records/docs/d1/branches', { json: {} }), 400, 'BAD_REQUEST');
    expectError(await bob.post('/v1/records/docs/nope/branches', { json: { name: 'r' } }), 404, 'NOT_FOUND');
    expectError(
      await bob.post('/v1/records/docs/d1/branches', { json: { name: 'r', fromVersion: 9 } }),
      404,
      'NOT_FOUND',
    );
  });

  it('forks from an earlier kept version', async () => {
    const fork = await bob.post('/v1/records/docs/d1/branches', { json: { name: 'old', fromVersion: 1 } });
    expect(fork.status, fork.text).toBe(201);
    expect(fork.body.record.data).toEqual({ title: 'Plan', body: 'one two' });
    const list = await alice.get('/v1/records/docs/d1/branches');
    expect(list.body.branches.map((b: { name: string }) => b.name)).toEqual(['old', 'review']);
    expect((await alice.delete('/v1/records/docs/d1/branches/old')).status).toBe(204);
    expectError(await alice.get('/v1/records/docs/d1/branches/old'), 404, 'NOT_FOUND');
  });

  it('writes on the branch with its own versions and history, seen only on its channel', async () => {
    const mainSub = await wsMain.request({ type: 'subscribe', channel: 'records:docs' });
    expect(mainSub.type).toBe('subscribed');
    const branchSub = await wsBranch.request({ type: 'subscribe', channel: 'records:docs@review' });
    expect(branchSub.type, JSON.stringify(branchSub)).toBe('subscribed');
    const bad = await wsBranch.request({ type: 'subscribe', channel: 'records:docs@a b' });
    expect(bad.type).toBe('error');

    const put = await bob.patch('/v1/records/docs@review/d1', {
      json: { title: 'Plan, reviewed' },
      headers: { 'if-match': '"1"' },
    });
    expect(put.status, put.text).toBe(200);
    expect(put.body).toMatchObject({ collection: 'docs@review', version: 2 });
    // A WebSocket mutate on the branch, too.
    const ws = await wsBranch.request({
      type: 'mutate',
      mutations: [
        {
          mid: 'b-ws-1',
          collection: 'docs@review',
          id: 'd1',
          op: 'patch',
          data: { reviewer: 'bob' },
          baseVersion: 2,
        },
      ],
    });
    expect((ws.results as unknown[])[0], JSON.stringify(ws)).toMatchObject({ status: 'applied', version: 3 });
    // Meanwhile on main.
    expect((await alice.patch('/v1/records/docs/d1', { json: { status: 'final' } })).status).toBe(200);

    const branchEvents = await wsBranch.waitForEvents(2, 'records:docs@review');
    expect(branchEvents.map((m) => (m as unknown as { version: number }).version)).toEqual([2, 3]);
    await wsMain.waitForEvents(1, 'records:docs');
    expect(
      wsMain.events('records:docs').map((m) => (m as unknown as { collection: string }).collection),
    ).toEqual(['docs']);
    expect(
      wsBranch
        .events('records:docs@review')
        .every((m) => (m as unknown as { collection: string }).collection === 'docs@review'),
    ).toBe(true);

    expect((await alice.get('/v1/records/docs/d1')).body).toMatchObject({
      version: 3,
      data: { title: 'Plan', status: 'final' },
    });
    const history = await alice.get('/v1/records/docs@review/d1/history');
    expect(history.body.versions.map((v: { version: number }) => v.version)).toEqual([1, 2, 3]);
    const branch = await alice.get('/v1/records/docs/d1/branches/review');
    expect(branch.body.record).toMatchObject({
      version: 3,
      data: { title: 'Plan, reviewed', reviewer: 'bob' },
    });
  });

  it('refuses writes to a branch that was never forked, by REST and WebSocket', async () => {
    expectError(await bob.put('/v1/records/docs@nobranch/d1', { json: { a: 1 } }), 404, 'NOT_FOUND');
    expectError(await bob.put('/v1/records/docs@review/d2', { json: { a: 1 } }), 404, 'NOT_FOUND');
    expectError(await bob.put('/v1/records/docs@bad%20name/d1', { json: { a: 1 } }), 400, 'BAD_REQUEST');
    const ws = await wsBranch.request({
      type: 'mutate',
      mutations: [{ mid: 'b-ws-2', collection: 'docs@ghost', id: 'd1', op: 'put', data: { a: 1 } }],
    });
    expect((ws.results as unknown[])[0]).toMatchObject({ status: 'rejected', error: { code: 'NOT_FOUND' } });
    expect((await bob.get('/v1/records/docs@ghost/d1')).status).toBe(404);
  });

  it('diffs the branch against the main line since the fork', async () => {
    const diff = await alice.get('/v1/records/docs/d1/branches/review/diff');
    expect(diff.status, diff.text).toBe(200);
    expect(diff.body).toMatchObject({ mainVersion: 3, branchVersion: 3 });
    expect(diff.body.changes).toEqual([
      { path: 'reviewer', branch: 'bob', changedOn: 'branch' },
      { path: 'status', base: 'draft', main: 'final', branch: 'draft', changedOn: 'main' },
      { path: 'title', base: 'Plan', main: 'Plan', branch: 'Plan, reviewed', changedOn: 'branch' },
    ]);
  });

  it('merges the branch back with the three-way merge, then closes it to writes', async () => {
    const merge = await alice.post('/v1/records/docs/d1/branches/review/merge');
    expect(merge.status, merge.text).toBe(200);
    expect(merge.body.status).toBe('merged');
    expect(merge.body.record).toMatchObject({
      collection: 'docs',
      version: 4,
      data: { title: 'Plan, reviewed', body: 'one two', status: 'final', reviewer: 'bob' },
    });
    expect(merge.body.branch).toMatchObject({ mergedVersion: 4 });
    expect(typeof merge.body.branch.mergedAt).toBe('string');
    await wsMain.waitForEvents(2, 'records:docs');
    expectError(await bob.patch('/v1/records/docs@review/d1', { json: { x: 1 } }), 409, 'CONFLICT');
    expectError(await alice.post('/v1/records/docs/d1/branches/review/merge'), 409, 'CONFLICT');
  });

  it('sends fields both sides changed to the manual queue when the collection says so', async () => {
    expect((await alice.put('/v1/records/strict/s1', { json: { title: 'A', n: 1 } })).status).toBe(201);
    expect((await bob.post('/v1/records/strict/s1/branches', { json: { name: 'edit' } })).status).toBe(201);
    expect((await bob.patch('/v1/records/strict@edit/s1', { json: { title: 'B' } })).status).toBe(200);
    expect((await alice.patch('/v1/records/strict/s1', { json: { title: 'C' } })).status).toBe(200);
    const diff = await bob.get('/v1/records/strict/s1/branches/edit/diff');
    expect(diff.body.changes).toEqual([
      { path: 'title', base: 'A', main: 'C', branch: 'B', changedOn: 'both' },
    ]);
    const merge = await bob.post('/v1/records/strict/s1/branches/edit/merge');
    expect(merge.status, merge.text).toBe(202);
    expect(merge.body).toMatchObject({ status: 'conflict', clashes: ['title'], record: { version: 2 } });
    const conflicts = await admin.get('/v1/conflicts?collection=strict');
    const stored = conflicts.body.conflicts.find((c: { id: string }) => c.id === merge.body.conflictId);
    expect(stored).toMatchObject({ collection: 'strict', recordId: 's1', status: 'open', baseVersion: 1 });
    expect((await alice.get('/v1/records/strict/s1')).body.data.title).toBe('C');
    // Under strategy manual, too; a change on one side only merges cleanly.
    expect((await alice.put('/v1/records/byhand/h1', { json: { a: 1, b: 1 } })).status).toBe(201);
    expect((await bob.post('/v1/records/byhand/h1/branches', { json: { name: 'edit' } })).status).toBe(201);
    expect((await bob.patch('/v1/records/byhand@edit/h1', { json: { a: 2 } })).status).toBe(200);
    expect((await alice.patch('/v1/records/byhand/h1', { json: { a: 3 } })).status).toBe(200);
    const byHand = await bob.post('/v1/records/byhand/h1/branches/edit/merge');
    expect(byHand.status, byHand.text).toBe(202);
    expect(byHand.body).toMatchObject({ status: 'conflict', clashes: ['a'] });
    expect((await bob.post('/v1/records/byhand/h1/branches', { json: { name: 'other' } })).status).toBe(201);
    expect((await bob.patch('/v1/records/byhand@other/h1', { json: { b: 5 } })).status).toBe(200);
    const clean = await bob.post('/v1/records/byhand/h1/branches/other/merge');
    expect(clean.status, clean.text).toBe(200);
    expect(clean.body).toMatchObject({ status: 'merged', record: { version: 3, data: { a: 3, b: 5 } } });
  });

  it('applies the collection access rules to forks, branch reads and branch writes', async () => {
    expect((await alice.put('/v1/records/private/p1', { json: { ownerId: 'alice', t: 1 } })).status).toBe(
      201,
    );
    expectError(
      await bob.post('/v1/records/private/p1/branches', { json: { name: 'mine' } }),
      404,
      'NOT_FOUND',
    );
    expect((await alice.post('/v1/records/private/p1/branches', { json: { name: 'mine' } })).status).toBe(
      201,
    );
    expectError(await bob.get('/v1/records/private@mine/p1'), 404, 'NOT_FOUND');
    expectError(await bob.get('/v1/records/private/p1/branches/mine'), 404, 'NOT_FOUND');
    expectError(await bob.get('/v1/records/private/p1/branches/mine/diff'), 404, 'NOT_FOUND');
    expectError(await bob.put('/v1/records/private@mine/p1', { json: { ownerId: 'bob' } }), 403, 'FORBIDDEN');
    // Subscribers of the branch's channel get what the rules let them read, as on the main line.
    const aliceWs = await TestWsClient.connect(srv.wsUrl, await srv.token(T, 'alice'));
    const bobWs = await TestWsClient.connect(srv.wsUrl, await srv.token(T, 'bob'));
    try {
      expect((await aliceWs.request({ type: 'subscribe', channel: 'records:private@mine' })).type).toBe(
        'subscribed',
      );
      expect((await bobWs.request({ type: 'subscribe', channel: 'records:private@mine' })).type).toBe(
        'subscribed',
      );
      expect((await alice.patch('/v1/records/private@mine/p1', { json: { t: 2 } })).status).toBe(200);
      expect((await alice.put('/v1/records/docs/d9', { json: { marker: true } })).status).toBe(201);
      await aliceWs.waitForEvents(1, 'records:private@mine');
      // Bob is subscribed to docs too: once its later event arrived, the refused one would have.
      expect((await bobWs.request({ type: 'subscribe', channel: 'records:docs', since: 0 })).type).toBe(
        'subscribed',
      );
      await bobWs.waitFor((m) => m.type === 'event' && (m as { id?: string }).id === 'd9');
      expect(bobWs.events('records:private@mine')).toEqual([]);
    } finally {
      await aliceWs.close();
      await bobWs.close();
    }
    const events = await bob.get('/v1/events?collection=private@mine');
    expect(events.body.events).toEqual([]);
  });

  it('deletes a branch: its record becomes a tombstone, its name is free again', async () => {
    expect((await alice.delete('/v1/records/private/p1/branches/mine')).status).toBe(204);
    expect((await alice.get('/v1/records/private/p1/branches')).body.branches).toEqual([]);
    expect((await alice.get('/v1/records/private@mine/p1')).status).toBe(404);
    expectError(await alice.delete('/v1/records/private/p1/branches/mine'), 404, 'NOT_FOUND');
    const again = await alice.post('/v1/records/private/p1/branches', { json: { name: 'mine' } });
    expect(again.status).toBe(201);
    expect(again.body.record.version).toBe(4);
  });

  it('lists and deletes the branches of a record deleted since the fork, and refuses to merge into it', async () => {
    expect((await alice.put('/v1/records/docs/d5', { json: { t: 1 } })).status).toBe(201);
    expect((await alice.post('/v1/records/docs/d5/branches', { json: { name: 'b' } })).status).toBe(201);
    expect((await alice.delete('/v1/records/docs/d5')).status).toBe(200);
    expect((await alice.get('/v1/records/docs/d5/branches')).body.branches).toHaveLength(1);
    expectError(await alice.post('/v1/records/docs/d5/branches/b/merge'), 404, 'NOT_FOUND');
    expect((await alice.delete('/v1/records/docs/d5/branches/b')).status).toBe(204);
  });

  it('keeps branch writes in the audit log and in replay verification', async () => {
    const audit = await admin.get('/v1/events?collection=docs@review&id=d1');
    expect(audit.body.events.map((e: { version: number; actor: string }) => [e.version, e.actor])).toEqual([
      [1, 'bob'],
      [2, 'bob'],
      [3, 'dave'],
    ]);
    const report = await verifyReplay(srv.server.store, { tenants: [T] });
    expect(report.differences).toEqual([]);
    expect(report.records).toBeGreaterThanOrEqual(6);
    if (kind !== 'sqlite') return; // the tampering below edits the SQLite file directly
    const db = new Database(join(srv.storage.dataDir, 'syncbridge.db'));
    db.prepare(
      `UPDATE records SET data = '{"title":"forged"}' WHERE tenant = ? AND collection = 'docs@review' AND id = 'd1'`,
    ).run(T);
    db.close();
    const dirty = await verifyReplay(srv.server.store, { tenants: [T] });
    expect(dirty.differences).toEqual([
      { tenant: T, collection: 'docs@review', id: 'd1', problem: 'data differs from the log' },
    ]);
  });
});
