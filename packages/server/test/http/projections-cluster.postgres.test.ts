/**
 * Projections on several nodes sharing PostgreSQL: each node builds its own view of a tenant's log,
 * and a read on any node reflects every event committed before it, on any node (a node hears only its
 * own commits, so it reads the rest from the log).
 */
import type { LogEvent } from '@syncbridge/protocol';
import { afterEach, describe, expect, it } from 'vitest';
import type { Projection } from '../../src/plugins/types.ts';
import {
  createTestStorage,
  startTestServer,
  storeKinds,
  TEST_ADMIN_KEY,
  type TestServer,
  type TestStorage,
} from '../helpers/server.ts';
import { restClient } from './rest.ts';

const hasPostgres = (await storeKinds()).includes('postgres');

const orders: Projection<{ count: number }> = {
  name: 'orders',
  initial: () => ({ count: 0 }),
  apply: (state, event: LogEvent) => (event.type === 'order' ? { count: state.count + 1 } : state),
};

describe.skipIf(!hasPostgres)('projections across nodes on PostgreSQL', () => {
  let storage: TestStorage | null = null;
  let nodes: TestServer[] = [];
  afterEach(async () => {
    for (const node of nodes) await node.close({ keepData: true });
    nodes = [];
    await storage?.cleanup();
    storage = null;
  });

  it('a read on one node reflects the events committed on the others before it', async () => {
    storage = createTestStorage('postgres');
    for (const nodeId of ['a', 'b', 'c']) {
      nodes.push(await startTestServer('postgres', { nodeId }, storage, { projections: [orders] }));
    }
    const apis = nodes.map((n) => restClient(n.url, { apiKey: TEST_ADMIN_KEY, tenant: 'shop' }));
    // Every node builds its view first.
    for (const api of apis)
      expect((await api.get('/v1/projections/orders')).body.state).toEqual({ count: 0 });
    for (let i = 0; i < 6; i++) {
      const res = await apis[i % 3]!.post('/v1/events', { json: { type: 'order', payload: { i } } });
      expect(res.status, res.text).toBe(201);
      for (const api of apis) {
        const view = await api.get('/v1/projections/orders');
        expect(view.body, `after event ${i}`).toMatchObject({ seq: i + 1, state: { count: i + 1 } });
      }
    }
  }, 60_000);
});
