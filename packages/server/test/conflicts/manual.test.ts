import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type StoreKind, startTestServer, storeKinds, type TestServer } from '../helpers/server.ts';
import { TestWsClient } from '../helpers/ws-client.ts';

const kinds = await storeKinds();

describe.each(kinds)('manual conflict queue (%s)', (kind: StoreKind) => {
  let srv: TestServer;
  let admin: string;
  beforeAll(async () => {
    srv = await startTestServer(kind, {
      collections: {
        stock: { strategy: 'manual' },
        docs: { strategy: 'merge', textFields: ['body'] },
      },
    });
    admin = await srv.token('shop', 'boss', { roles: ['admin'] });
  });
  afterAll(async () => srv?.close());

  const rest = async (method: string, path: string, token: string, body?: unknown) => {
    const res = await fetch(`${srv.url}${path}`, {
      method,
      headers: { authorization: `Bearer ${token}`, ...(body ? { 'content-type': 'application/json' } : {}) },
      body: body ? JSON.stringify(body) : undefined,
    });
    return { status: res.status, body: (await res.json()) as Record<string, unknown> };
  };

  it('stores a conflict, tells the writer and admins, and applies the chosen resolution as new events', async () => {
    const alice = await TestWsClient.connect(srv.wsUrl, await srv.token('shop', 'alice'));
    const watcher = await TestWsClient.connect(srv.wsUrl, admin);
    await alice.request({
      type: 'mutate',
      mutations: [{ mid: 'a1', collection: 'stock', id: 'p1', op: 'put', data: { qty: 5 } }],
    });
    await alice.request({
      type: 'mutate',
      mutations: [{ mid: 'a2', collection: 'stock', id: 'p1', op: 'put', data: { qty: 7 }, baseVersion: 1 }],
    });
    const reply = await alice.request({
      type: 'mutate',
      mutations: [{ mid: 'a3', collection: 'stock', id: 'p1', op: 'put', data: { qty: 3 }, baseVersion: 1 }],
    });
    const [result] = reply.results as Array<Record<string, unknown>>;
    expect(result).toMatchObject({ status: 'conflict', version: 2 });
    const conflictId = result!.conflictId as string;
    const pushed = await alice.waitFor((m) => m.type === 'conflict');
    expect(pushed.conflict).toMatchObject({
      id: conflictId,
      status: 'open',
      base: { qty: 5 },
      server: { qty: 7 },
      client: { qty: 3 },
    });
    await watcher.waitFor((m) => m.type === 'conflict');

    const open = await rest('GET', '/v1/conflicts', admin);
    expect((open.body.conflicts as unknown[]).length).toBe(1);

    const resolved = await alice.request({ type: 'resolve', conflictId, resolution: 'accept_local' });
    expect((resolved.results as Array<Record<string, unknown>>)[0]).toMatchObject({
      status: 'applied',
      version: 3,
    });
    const record = await rest('GET', '/v1/records/stock/p1', admin);
    expect(record.body.data).toEqual({ qty: 3 });
    const again = await rest('POST', `/v1/conflicts/${conflictId}/resolve`, admin, {
      resolution: 'accept_server',
    });
    expect(again.status).toBe(409);
    const log = await rest('GET', '/v1/events?type=syncbridge.conflict_resolved', admin);
    expect((log.body.events as Array<Record<string, unknown>>)[0]).toMatchObject({
      actor: 'alice',
      payload: { conflictId, resolution: 'accept_local', version: 3 },
    });
    await alice.close();
    await watcher.close();
  });

  it('detects a resolution of a conflict whose record moved on', async () => {
    await rest('PUT', '/v1/records/stock/p2', admin, { qty: 1 });
    await rest('PUT', '/v1/records/stock/p2', admin, { qty: 2 });
    const res = await fetch(`${srv.url}/v1/records/stock/p2`, {
      method: 'PUT',
      headers: { authorization: `Bearer ${admin}`, 'content-type': 'application/json', 'if-match': '1' },
      body: JSON.stringify({ qty: 9 }),
    });
    expect(res.status).toBe(409);
    const { error } = (await res.json()) as { error: { details: { conflictId: string } } };
    await rest('PUT', '/v1/records/stock/p2', admin, { qty: 4 });
    const stale = await rest('POST', `/v1/conflicts/${error.details.conflictId}/resolve`, admin, {
      resolution: 'accept_local',
    });
    expect(stale.status).toBe(409);
    const retry = await rest('POST', `/v1/conflicts/${error.details.conflictId}/resolve`, admin, {
      resolution: 'merge',
      data: { qty: 13 },
    });
    expect(retry.status).toBe(200);
    expect((retry.body.result as Record<string, unknown>).version).toBe(4);
  });

  it('merges two offline edits of one document body', async () => {
    await rest('PUT', '/v1/records/docs/d1', admin, { title: 'Plan', body: 'We ship on Monday.' });
    const a = await rest('POST', '/v1/mutations', admin, {
      mutations: [
        {
          mid: 'd-a',
          collection: 'docs',
          id: 'd1',
          op: 'patch',
          data: { body: 'We ship on Monday morning.' },
          baseVersion: 1,
        },
      ],
    });
    expect((a.body.results as Array<Record<string, unknown>>)[0]!.status).toBe('applied');
    const b = await rest('POST', '/v1/mutations', admin, {
      mutations: [
        {
          mid: 'd-b',
          collection: 'docs',
          id: 'd1',
          op: 'patch',
          data: { body: 'Team: we ship on Monday.', title: 'Plan B' },
          baseVersion: 1,
        },
      ],
    });
    expect((b.body.results as Array<Record<string, unknown>>)[0]).toMatchObject({
      status: 'merged',
      record: { data: { title: 'Plan B', body: 'Team: we ship on Monday morning.' } },
    });
  });
});
