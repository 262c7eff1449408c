/**
 * Collection settings shared by three nodes on one PostgreSQL database: a `PUT /v1/collections/{c}` on
 * one node (strategy, schema, retention) is what every other node applies from its next commit and
 * answers from its next read, though each had the old settings cached from writes it made before.
 */
import { afterEach, describe, expect, it } from 'vitest';
import {
  createTestStorage,
  startTestServer,
  storeKinds,
  TEST_ADMIN_KEY,
  type TestServer,
  type TestStorage,
} from '../helpers/server.ts';
import { expectError, restClient } from './rest.ts';

const hasPostgres = (await storeKinds()).includes('postgres');

describe.skipIf(!hasPostgres)('collection settings across three nodes on PostgreSQL', () => {
  let storage: TestStorage | null = null;
  let nodes: TestServer[] = [];
  afterEach(async () => {
    for (const node of nodes) await node.close({ keepData: true });
    nodes = [];
    await storage?.cleanup();
    storage = null;
  });

  it('a strategy, schema and retention set on one node hold on the others from their next commit', async () => {
    storage = createTestStorage('postgres');
    for (const nodeId of ['a', 'b', 'c']) nodes.push(await startTestServer('postgres', { nodeId }, storage));
    const [a, b, c] = nodes.map((n) => restClient(n.url, { apiKey: TEST_ADMIN_KEY, tenant: 'shared' }));

    // Every node writes the collection first, so each one has its (default, lww) settings cached.
    for (const [i, api] of [a!, b!, c!].entries()) {
      const put = await api.put(`/v1/records/docs/d${i}`, { json: { title: 'one' } });
      expect(put.status, put.text).toBe(201);
      const again = await api.put(`/v1/records/docs/d${i}`, { json: { title: 'two' } });
      expect(again.body.version).toBe(2);
    }

    const set = await a!.put('/v1/collections/docs', {
      json: {
        strategy: 'server_wins',
        schema: { type: 'object', required: ['title'], properties: { title: { type: 'string' } } },
        retention: { maxVersions: 5 },
      },
    });
    expect(set.status, set.text).toBe(200);

    for (const [i, api] of [b!, c!].entries()) {
      const node = i === 0 ? 'b' : 'c';
      // server_wins: a write based on version 1 of a record now at version 2 is refused with the current one.
      const stale = await api.put(`/v1/records/docs/d${i + 1}`, {
        json: { title: 'stale' },
        headers: { 'if-match': '1' },
      });
      expectError(stale, 409, 'CONFLICT');
      // The schema: a record without a title is refused.
      const untitled = await api.put(`/v1/records/docs/new-${node}`, { json: { body: 'x' } });
      expectError(untitled, 400, 'BAD_REQUEST');
      // The settings as this node answers them.
      const got = await api.get('/v1/collections/docs');
      expect(got.body.settings, `node ${node}`).toMatchObject({
        strategy: 'server_wins',
        retention: { maxVersions: 5 },
      });
      const listed = await api.get('/v1/collections');
      expect(
        listed.body.collections.find((x: { name: string }) => x.name === 'docs')?.settings.strategy,
      ).toBe('server_wins');
    }

    // Back to lww on node c: nodes a and b apply it from their next commit.
    const back = await c!.put('/v1/collections/docs', { json: { strategy: 'lww' } });
    expect(back.status, back.text).toBe(200);
    for (const api of [a!, b!]) {
      const stale = await api.put('/v1/records/docs/d0', { json: { body: 'no title, any base' } });
      expect(stale.status, stale.text).toBe(200);
      const based = await api.put('/v1/records/docs/d0', {
        json: { title: 'old base' },
        headers: { 'if-match': '1' },
      });
      expect(based.status, based.text).toBe(200);
    }
  }, 60_000);
});
