import { spawnSync } from 'node:child_process';
import { join, resolve } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SyncError } from '../../src/core/errors.ts';
import type { Middleware, Projection } from '../../src/plugins/types.ts';
import { type StoreKind, startTestServer, storeKinds, type TestServer } from '../helpers/server.ts';

const kinds = await storeKinds();
const CLI = resolve(import.meta.dirname, '../../src/cli/main.ts');

type Json = Record<string, unknown>;

const noNegativeStock: Middleware = {
  beforeMutation({ mutation, current }) {
    if (mutation.collection !== 'stock' || mutation.op !== 'increment') return undefined;
    const qty = Number(current?.data.qty ?? 0) + Number(mutation.data?.qty ?? 0);
    if (qty < 0) throw new SyncError('BAD_REQUEST', 'stock cannot go below zero');
    return undefined;
  },
};

const totals: Projection<Record<string, number>> = {
  name: 'stock_totals',
  initial: () => ({}),
  apply(state, event) {
    if (event.kind !== 'record' || event.collection !== 'stock') return state;
    const product = String(event.data?.product ?? '');
    const next = { ...state };
    next[`${event.id}`] = Number(event.data?.qty ?? 0);
    next[`total:${product}`] = Object.entries(next)
      .filter(([k]) => !k.startsWith('total:'))
      .reduce((sum, [, v]) => sum + v, 0);
    return next;
  },
};

describe.each(kinds)('history, audit, retention, replay and plugins (%s)', (kind: StoreKind) => {
  let srv: TestServer;
  let token: string;
  const rest = async (method: string, path: string, body?: unknown, headers: Record<string, string> = {}) => {
    const res = await fetch(`${srv.url}${path}`, {
      method,
      headers: {
        authorization: `Bearer ${token}`,
        ...(body ? { 'content-type': 'application/json' } : {}),
        ...headers,
      },
      body: body ? JSON.stringify(body) : undefined,
    });
    return { status: res.status, body: (await res.json()) as Json };
  };

  beforeAll(async () => {
    srv = await startTestServer(
      kind,
      { retentionIntervalMs: 150, collections: { logs: { retention: { maxVersions: 2 } } } },
      undefined,
      { middleware: [noNegativeStock], projections: [totals] },
    );
    token = await srv.token('t1', 'auditor', { roles: ['admin'] });
  });
  afterAll(async () => srv?.close({ keepData: false }));

  it('lists versions with actor, device and what changed, and serves any kept version', async () => {
    await rest('PUT', '/v1/records/notes/n1', { title: 'a', meta: { x: 1 } }, { 'x-device-id': 'laptop-1' });
    await rest('PATCH', '/v1/records/notes/n1', { meta: { x: 2 }, tag: 'new' });
    const history = await rest('GET', '/v1/records/notes/n1/history');
    const versions = history.body.versions as Json[];
    expect(versions.map((v) => v.version)).toEqual([1, 2]);
    expect(versions[0]).toMatchObject({ actor: 'auditor', device: 'laptop-1', op: 'put' });
    expect(versions[1]!.changes).toEqual([
      { path: 'meta.x', from: 1, to: 2 },
      { path: 'tag', to: 'new' },
    ]);
    const v1 = await rest('GET', '/v1/records/notes/n1/versions/1');
    expect(v1.body).toMatchObject({ version: 1, data: { title: 'a', meta: { x: 1 } } });
    expect((await rest('GET', '/v1/records/notes/n1/versions/9')).status).toBe(404);
    // The same through ?version= on the record itself; without it, the current record.
    expect((await rest('GET', '/v1/records/notes/n1?version=1')).body).toEqual(v1.body);
    expect((await rest('GET', '/v1/records/notes/n1?version=9')).status).toBe(404);
    expect((await rest('GET', '/v1/records/notes/n1?version=zero')).status).toBe(400);
    expect((await rest('GET', '/v1/records/notes/n1')).body).toMatchObject({
      version: 2,
      data: { tag: 'new' },
    });
  });

  it('answers audit queries by actor, record, collection and time range', async () => {
    const other = await srv.token('t1', 'clerk');
    const start = new Date().toISOString();
    await fetch(`${srv.url}/v1/records/audit/a1`, {
      method: 'PUT',
      headers: { authorization: `Bearer ${other}`, 'content-type': 'application/json' },
      body: JSON.stringify({ n: 1 }),
    });
    await rest('PUT', '/v1/records/audit/a2', { n: 2 });
    const byActor = await rest('GET', `/v1/events?actor=clerk&from=${encodeURIComponent(start)}`);
    expect((byActor.body.events as Json[]).map((e) => e.id)).toEqual(['a1']);
    const byRecord = await rest('GET', '/v1/events?collection=audit&id=a2');
    expect((byRecord.body.events as Json[]).map((e) => e.actor)).toEqual(['auditor']);
    const future = await rest(
      'GET',
      `/v1/events?from=${encodeURIComponent(new Date(Date.now() + 60_000).toISOString())}`,
    );
    expect(future.body.events).toEqual([]);
  });

  it('compacts superseded versions per the collection retention, never the current one', async () => {
    for (let i = 1; i <= 5; i++) await rest('PUT', '/v1/records/logs/l1', { i });
    const deadline = Date.now() + 5000;
    let versions: number[] = [];
    while (Date.now() < deadline) {
      versions = ((await rest('GET', '/v1/records/logs/l1/history')).body.versions as Json[]).map(
        (v) => v.version as number,
      );
      if (versions.length === 2) break;
      await new Promise((r) => setTimeout(r, 50));
    }
    expect(versions).toEqual([4, 5]);
    expect((await rest('GET', '/v1/records/logs/l1')).body).toMatchObject({ version: 5, data: { i: 5 } });
  });

  it('runs beforeMutation middleware inside the write path and keeps projections in log order', async () => {
    await rest('PUT', '/v1/records/stock/p1@wh1', { product: 'p1', qty: 3 });
    await rest('PUT', '/v1/records/stock/p1@wh2', { product: 'p1', qty: 4 });
    const refused = await rest('POST', '/v1/mutations', {
      mutations: [
        { mid: 'too-many', collection: 'stock', id: 'p1@wh1', op: 'increment', data: { qty: -10 } },
      ],
    });
    expect((refused.body.results as Json[])[0]).toMatchObject({
      status: 'rejected',
      error: { code: 'BAD_REQUEST', message: 'stock cannot go below zero' },
    });
    const first = await rest('GET', '/v1/projections/stock_totals');
    expect((first.body.state as Json)['total:p1']).toBe(7);
    await rest('POST', '/v1/mutations', {
      mutations: [{ mid: 'ok', collection: 'stock', id: 'p1@wh1', op: 'increment', data: { qty: -1 } }],
    });
    const deadline = Date.now() + 3000;
    let total = 0;
    while (Date.now() < deadline) {
      total = ((await rest('GET', '/v1/projections/stock_totals')).body.state as Json)['total:p1'] as number;
      if (total === 6) break;
      await new Promise((r) => setTimeout(r, 20));
    }
    expect(total).toBe(6);
    expect((await rest('GET', '/v1/projections/nope')).status).toBe(404);
  });

  it('replay --verify finds the records table equal to the log, and names a record that is not', async () => {
    if (kind !== 'sqlite') return; // the tampering below edits the SQLite file directly
    await srv.server.close();
    const env = { ...process.env, SYNCBRIDGE_DATA_DIR: srv.storage.dataDir, SYNCBRIDGE_LOG_LEVEL: 'warn' };
    const clean = spawnSync(process.execPath, ['--import', 'tsx', CLI, 'replay', '--verify'], {
      env,
      encoding: 'utf8',
    });
    expect(clean.stdout).toContain('no differences');
    expect(clean.status).toBe(0);
    const db = new Database(join(srv.storage.dataDir, 'syncbridge.db'));
    db.prepare(`UPDATE records SET data = '{"title":"forged"}' WHERE tenant = 't1' AND id = 'n1'`).run();
    db.close();
    const dirty = spawnSync(process.execPath, ['--import', 'tsx', CLI, 'replay', '--verify'], {
      env,
      encoding: 'utf8',
    });
    expect(dirty.stdout).toContain('DIFF t1 notes/n1: data differs from the log');
    expect(dirty.status).toBe(2);
  });
});
