/**
 * Access rules on the manual conflict queue, on both stores: a writer sees its conflict only while the
 * read rule lets it read the record (hidden fields removed), and resolves it with a change only while the
 * write rule allows that change; a refused resolution is FORBIDDEN and leaves the conflict open.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type StoreKind, startTestServer, storeKinds, type TestServer } from '../helpers/server.ts';
import { TestWsClient } from '../helpers/ws-client.ts';
import { expectError, restClient } from '../http/rest.ts';

const kinds = await storeKinds();
const T = 'inventory';
const RULES = {
  read: 'record.locationId in auth.claims.locations',
  write: 'record.locationId in auth.claims.locations',
  hide: { costPrice: 'true' },
};

describe.each(kinds)('access rules on conflicts (%s)', (kind: StoreKind) => {
  let srv: TestServer;
  let admin: ReturnType<typeof restClient>;
  let clerk: ReturnType<typeof restClient>;
  let ws: TestWsClient;
  let conflictId = '';

  async function setRules(rules: object) {
    const res = await admin.put('/v1/collections/guarded', { json: { strategy: 'manual', rules } });
    expect(res.status, res.text).toBe(200);
  }

  beforeAll(async () => {
    srv = await startTestServer(kind);
    admin = restClient(srv.url, { token: await srv.token(T, 'boss', { roles: ['admin'] }) });
    const token = await srv.token(T, 'c1', { claims: { locations: ['wh-1'] } });
    clerk = restClient(srv.url, { token });
    ws = await TestWsClient.connect(srv.wsUrl, token);
    await setRules(RULES);
    await admin.put('/v1/records/guarded/g1', { json: { locationId: 'wh-1', n: 1, costPrice: 3 } });
    await admin.put('/v1/records/guarded/g1', { json: { locationId: 'wh-1', n: 2, costPrice: 3 } });
    const reply = await ws.request({
      type: 'mutate',
      mutations: [
        { mid: 'stale', collection: 'guarded', id: 'g1', op: 'patch', baseVersion: 1, data: { n: 5 } },
      ],
    });
    const [result] = reply.results as { status: string; conflictId: string; record: { data: object } }[];
    expect(result!.status).toBe('conflict');
    expect(result!.record.data).not.toHaveProperty('costPrice');
    conflictId = result!.conflictId;
  });
  afterAll(async () => {
    await ws?.close();
    await srv?.close();
  });

  it('shows the writer its conflict while it may read the record, without hidden fields', async () => {
    const list = await clerk.get('/v1/conflicts');
    expect(list.body.conflicts.map((c: { id: string }) => c.id)).toEqual([conflictId]);
    const one = await clerk.get(`/v1/conflicts/${conflictId}`);
    expect(one.status).toBe(200);
    expect(one.text).not.toContain('costPrice');
    expect((await admin.get(`/v1/conflicts/${conflictId}`)).body.server.costPrice).toBe(3);
    // The conflict pushed to the writer's connection leaves out the hidden field too.
    const pushed = await ws.waitFor((m) => m.type === 'conflict');
    expect(pushed.conflict).toMatchObject({ id: conflictId, server: { n: 2 } });
    expect(JSON.stringify(pushed)).not.toContain('costPrice');
  });

  it('hides the conflict once the read rule refuses the record, as if it did not exist', async () => {
    await setRules({ ...RULES, read: "record.locationId == 'wh-9'" });
    expect((await clerk.get('/v1/conflicts')).body.conflicts).toEqual([]);
    const refused = await clerk.get(`/v1/conflicts/${conflictId}`);
    const missing = await clerk.get('/v1/conflicts/no-such-conflict');
    expect(refused.status).toBe(404);
    expect(refused.text).toBe(missing.text);
    expectError(
      await clerk.post(`/v1/conflicts/${conflictId}/resolve`, { json: { resolution: 'accept_local' } }),
      404,
      'NOT_FOUND',
    );
    const overWs = await ws.request({ type: 'resolve', conflictId, resolution: 'accept_local' });
    expect(overWs).toMatchObject({ type: 'error', code: 'NOT_FOUND', message: `no conflict ${conflictId}` });
  });

  it('refuses a resolution the write rule does not allow, and accepts it once it does', async () => {
    await setRules({ ...RULES, write: 'false' });
    const refused = await clerk.post(`/v1/conflicts/${conflictId}/resolve`, {
      json: { resolution: 'accept_local' },
    });
    expectError(refused, 403, 'FORBIDDEN');
    expect((await admin.get(`/v1/conflicts/${conflictId}`)).body.status).toBe('open');
    expect((await admin.get('/v1/records/guarded/g1')).body.version).toBe(2);
    await setRules(RULES);
    const allowed = await clerk.post(`/v1/conflicts/${conflictId}/resolve`, {
      json: { resolution: 'accept_local' },
    });
    expect(allowed.status, allowed.text).toBe(200);
    expect(allowed.text).not.toContain('costPrice');
    expect((await admin.get('/v1/records/guarded/g1')).body.data).toMatchObject({ n: 5 });
  });
});
