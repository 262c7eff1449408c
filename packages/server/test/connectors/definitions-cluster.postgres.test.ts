/**
 * Connectors defined over REST on several nodes sharing PostgreSQL: a definition made, changed or removed
 * on one node is known to the others from their next lease check (they stand by for it, take it over,
 * and answer for it), not only after a restart.
 */
import { afterEach, describe, expect, it } from 'vitest';
import {
  createTestStorage,
  startTestServer,
  storeKinds,
  type TestServer,
  type TestStorage,
} from '../helpers/server.ts';
import { REDIS_URL, requireService, tcpAvailable } from '../helpers/services.ts';
import { adminRest, waitFor } from './support.ts';
import { RecordingUpstream } from './upstream.ts';

const hasPostgres = (await storeKinds()).includes('postgres');
const hasRedis = requireService(`Redis at ${REDIS_URL}`, await tcpAvailable(REDIS_URL, 6379));

describe.skipIf(!hasPostgres)('REST connector definitions across nodes on PostgreSQL', () => {
  let storage: TestStorage | null = null;
  let nodes: TestServer[] = [];
  let upstream: RecordingUpstream | null = null;
  afterEach(async () => {
    for (const node of nodes) await node.close({ keepData: true });
    nodes = [];
    await upstream?.close();
    await storage?.cleanup();
    storage = null;
  });

  it('a definition made, changed and removed on one node is known to the other from its next lease check', async () => {
    storage = createTestStorage('postgres');
    upstream = await RecordingUpstream.start();
    const settings = { webhookAllowPrivate: ['127.0.0.1/32'], connectors: { leaseCheckMs: 100 } };
    for (const nodeId of ['a', 'b'])
      nodes.push(await startTestServer('postgres', { nodeId, ...settings }, storage));
    const [a, b] = nodes.map((n) => adminRest(n.url, n.adminKey, 'acme'));
    const spec = (version: string) => ({
      name: 'bank',
      kind: 'pull',
      connections: [{ id: 'c1' }],
      http: { baseUrl: upstream!.httpUrl, changesPath: 'bank/changes', headers: { 'X-Version': version } },
    });

    const created = await a!('POST', '/v1/connectors', spec('1'));
    expect(created.status, created.text).toBe(201);
    const onB = await waitFor(
      () => b!('GET', '/v1/connectors/bank'),
      (res) => res.status === 200,
      'node b to know the connector',
      15_000,
    );
    expect(onB.body).toMatchObject({ origin: 'api', role: 'standby' });

    // Changed on b: whichever node runs it next, it runs the new definition.
    const changed = await b!('PUT', '/v1/connectors/bank', spec('2'));
    expect(changed.status, changed.text).toBe(200);
    await waitFor(
      async () => {
        const statuses = await Promise.all([a!, b!].map((api) => api('GET', '/v1/connectors/bank')));
        return statuses.map((s) => s.body.spec?.http?.headers?.['X-Version'] === '***' && s.body.role);
      },
      (roles) => roles.includes('leader') && roles.includes('standby'),
      'one leader and one standby on the new definition',
      15_000,
    );
    // The other node learns of the change at its next lease check and restarts the connector then: a
    // trigger in that moment is refused (UNAVAILABLE) or may still run the old definition. Once the change
    // has reached both, every trigger runs the new one.
    const versions = await waitFor(
      async () => {
        upstream!.received.length = 0;
        for (const api of [a!, b!]) {
          const status = (await api('GET', '/v1/connectors/bank')).body;
          if (status.role !== 'leader') continue;
          const run = await api('POST', '/v1/connectors/bank/trigger', {});
          if (run.status !== 200) return [];
        }
        return upstream!.received.map((r) => r.headers['x-version']);
      },
      (seen) => seen.length > 0 && seen.every((v) => v === '2'),
      'a trigger on the leader to run the new definition',
      15_000,
    );
    expect(new Set(versions)).toEqual(new Set(['2']));

    // Removed on a: gone from b too, and nothing pulls any more.
    expect((await a!('DELETE', '/v1/connectors/bank')).status).toBe(204);
    await waitFor(
      () => b!('GET', '/v1/connectors/bank'),
      (res) => res.status === 404,
      'node b to forget the connector',
      15_000,
    );
    expect((await b!('GET', '/v1/connectors')).body.connectors).toEqual([]);
  }, 60_000);

  it.skipIf(!hasRedis)(
    'with a bus, the other node takes a definition made, changed or removed in at once, not at its next lease check',
    async () => {
      storage = createTestStorage('postgres');
      upstream = await RecordingUpstream.start();
      // An hour between lease checks: only the bus notice can bring the change within the test.
      const settings = {
        webhookAllowPrivate: ['127.0.0.1/32'],
        busUrl: REDIS_URL,
        connectors: { leaseCheckMs: 3_600_000 },
      };
      for (const nodeId of ['a', 'b'])
        nodes.push(await startTestServer('postgres', { nodeId, ...settings }, storage));
      const [a, b] = nodes.map((n) => adminRest(n.url, n.adminKey, 'acme'));
      const spec = (version: string) => ({
        name: 'bank',
        kind: 'pull',
        connections: [{ id: 'c1' }],
        http: { baseUrl: upstream!.httpUrl, changesPath: 'bank/changes', headers: { 'X-Version': version } },
      });
      const created = await a!('POST', '/v1/connectors', spec('1'));
      expect(created.status, created.text).toBe(201);
      expect(created.body.role).toBe('leader');
      const onB = await waitFor(
        () => b!('GET', '/v1/connectors/bank'),
        (res) => res.status === 200,
        'node b to know the connector',
        15_000,
      );
      expect(onB.body).toMatchObject({ origin: 'api', role: 'standby' });

      const changed = await a!('PUT', '/v1/connectors/bank', { ...spec('2'), enabled: false });
      expect(changed.status, changed.text).toBe(200);
      await waitFor(
        () => b!('GET', '/v1/connectors/bank'),
        (res) => res.body.enabled === false,
        'node b to take the change in',
        15_000,
      );

      expect((await a!('DELETE', '/v1/connectors/bank')).status).toBe(204);
      await waitFor(
        () => b!('GET', '/v1/connectors/bank'),
        (res) => res.status === 404,
        'node b to forget the connector',
        15_000,
      );
    },
    60_000,
  );
});
