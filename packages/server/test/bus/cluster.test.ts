/**
 * Several nodes on one PostgreSQL database: a write on one node reaches subscribers on the others in
 * the tenant's order, with nothing lost or repeated, even when the bus drops messages or is absent.
 */
import { Redis } from 'ioredis';
import pg from 'pg';
import { afterEach, describe, expect, it } from 'vitest';
import type { ServerConfig } from '../../src/config/config.ts';
import {
  createTestStorage,
  POSTGRES_URL,
  startTestServer,
  storeKinds,
  type TestServer,
  type TestStorage,
} from '../helpers/server.ts';
import { NATS_URL, REDIS_URL, requireService, tcpAvailable } from '../helpers/services.ts';
import { TestWsClient } from '../helpers/ws-client.ts';

const hasPostgres = (await storeKinds()).includes('postgres');
const hasRedis = requireService(`Redis at ${REDIS_URL}`, await tcpAvailable(REDIS_URL, 6379));
const hasNats = requireService(`NATS at ${NATS_URL}`, await tcpAvailable(NATS_URL, 4222));

let nodes: TestServer[] = [];
let storage: TestStorage | null = null;

async function startCluster(count: number, config: Partial<ServerConfig>): Promise<TestServer[]> {
  storage = createTestStorage('postgres');
  nodes = [];
  for (let i = 0; i < count; i++) {
    nodes.push(await startTestServer('postgres', { nodeId: `node-${i}`, ...config }, storage));
  }
  return nodes;
}

afterEach(async () => {
  for (const node of nodes) await node.close({ keepData: true });
  await storage?.cleanup();
  nodes = [];
  storage = null;
});

/** Writers on node 0 send `total` increments; subscribers on the other nodes must see 1..total. */
async function burst(cluster: TestServer[], total: number, midway?: () => Promise<void>): Promise<void> {
  const tenant = `c${Math.random().toString(36).slice(2, 8)}`;
  const subscribers: TestWsClient[] = [];
  for (const node of cluster.slice(1)) {
    const client = await TestWsClient.connect(node.wsUrl, await node.token(tenant, 'reader'));
    await client.request({ type: 'subscribe', channel: 'records:counters' });
    subscribers.push(client);
  }
  const writers = await Promise.all(
    [0, 1, 2].map(async (w) =>
      TestWsClient.connect(cluster[0]!.wsUrl, await cluster[0]!.token(tenant, `w${w}`)),
    ),
  );
  const sends: Promise<unknown>[] = [];
  for (let i = 0; i < total; i++) {
    const writer = writers[i % writers.length]!;
    sends.push(
      writer.request({
        type: 'mutate',
        mutations: [
          { mid: `m${i}`, collection: 'counters', id: `k${i % 7}`, op: 'increment', data: { n: 1 } },
        ],
      }),
    );
    if (i === Math.floor(total / 2) && midway) {
      await Promise.all(sends.splice(0));
      await midway();
    }
    if (i % 50 === 49) await Promise.all(sends.splice(0));
  }
  await Promise.all(sends);
  for (const client of subscribers) {
    const events = await client.waitForEvents(total, 'records:counters', 15_000);
    expect(events.map((e) => e.seq)).toEqual(Array.from({ length: total }, (_, k) => k + 1));
  }
  for (const client of [...subscribers, ...writers]) await client.close();
}

describe.skipIf(!hasPostgres)('cluster on PostgreSQL', () => {
  it.skipIf(!hasRedis)('fans out across three nodes over Redis, in order', async () => {
    await burst(await startCluster(3, { busUrl: REDIS_URL }), 300);
  });

  it.skipIf(!hasNats)('fans out across three nodes over NATS, in order', async () => {
    await burst(await startCluster(3, { busUrl: NATS_URL }), 300);
  });

  it('fans out across three nodes over PostgreSQL LISTEN/NOTIFY, in order', async () => {
    await burst(await startCluster(3, { busUrl: POSTGRES_URL }), 300);
  });

  it('loses nothing when the PostgreSQL bus connections are cut mid-burst', async () => {
    const cluster = await startCluster(2, { busUrl: POSTGRES_URL, busResyncMs: 300 });
    const admin = new pg.Client({ connectionString: POSTGRES_URL });
    await admin.connect();
    try {
      await burst(cluster, 300, async () => {
        const { rowCount } = await admin.query(
          'SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1',
          [`syncbridge-bus syncbridge_${storage!.config.databaseSchema}`],
        );
        expect(rowCount).toBe(2);
      });
    } finally {
      await admin.end();
    }
  });

  it.skipIf(!hasRedis)(
    '8 tenants written on 3 nodes at once: each tenant gap-free and in order everywhere',
    async () => {
      const cluster = await startCluster(3, { busUrl: REDIS_URL });
      const run = Math.random().toString(36).slice(2, 8);
      const tenants = Array.from({ length: 8 }, (_, t) => `m${run}${t}`);
      const PER_WRITER = 15;
      const total = PER_WRITER * cluster.length;
      const subscribers = await Promise.all(
        tenants.map(async (tenant, t) => {
          const node = cluster[t % cluster.length]!;
          const client = await TestWsClient.connect(node.wsUrl, await node.token(tenant, 'reader'));
          await client.request({ type: 'subscribe', channel: 'records:counters' });
          return client;
        }),
      );
      // One writer per tenant and node, all sending at once: commits of one tenant race across nodes,
      // commits of different tenants run side by side on each node.
      const writers = await Promise.all(
        tenants.flatMap((tenant) =>
          cluster.map(async (node, n) => TestWsClient.connect(node.wsUrl, await node.token(tenant, `w${n}`))),
        ),
      );
      const seqs = new Map<string, number[]>(tenants.map((t) => [t, []]));
      await Promise.all(
        writers.map(async (writer, k) => {
          const tenant = tenants[Math.floor(k / cluster.length)]!;
          for (let i = 0; i < PER_WRITER; i++) {
            const reply = (await writer.request({
              type: 'mutate',
              mutations: [
                {
                  mid: `m${k}-${i}`,
                  collection: 'counters',
                  id: `k${i % 3}`,
                  op: 'increment',
                  data: { n: 1 },
                },
              ],
            })) as { results: Array<{ status: string; seq: number }> };
            expect(reply.results[0]!.status).toBe('applied');
            seqs.get(tenant)!.push(reply.results[0]!.seq);
          }
        }),
      );
      const expected = Array.from({ length: total }, (_, i) => i + 1);
      for (const [t, tenant] of tenants.entries()) {
        expect([...seqs.get(tenant)!].sort((a, b) => a - b)).toEqual(expected);
        const events = await subscribers[t]!.waitForEvents(total, 'records:counters', 15_000);
        expect(events.map((e) => e.seq)).toEqual(expected);
      }
      for (const client of [...subscribers, ...writers]) await client.close();
    },
  );

  it.skipIf(!hasRedis)('loses nothing when the Redis subscriptions are cut mid-burst', async () => {
    const cluster = await startCluster(2, { busUrl: REDIS_URL, busResyncMs: 300 });
    const admin = new Redis(REDIS_URL);
    try {
      await burst(cluster, 300, async () => {
        await admin.client('KILL', 'TYPE', 'pubsub');
      });
    } finally {
      admin.disconnect();
    }
  });

  it.for([
    ['Redis', REDIS_URL, hasRedis],
    ['PostgreSQL', POSTGRES_URL, true],
  ] as const)(
    'shows every live node and the connections on all of them (%s bus)',
    async ([, busUrl, up], { skip }) => {
      if (!up) skip();
      const cluster = await startCluster(3, { busUrl });
      const tenant = `p${Math.random().toString(36).slice(2, 8)}`;
      const clients = await Promise.all(
        cluster.map(async (node, i) =>
          TestWsClient.connect(node.wsUrl, await node.token(tenant, `user${i}`)),
        ),
      );
      const deadline = Date.now() + 8000;
      let ready: { nodes: Array<{ node: string; self: boolean }> } = { nodes: [] };
      while (Date.now() < deadline) {
        ready = (await (await fetch(`${cluster[0]!.url}/v1/ready`)).json()) as typeof ready;
        if (ready.nodes.length === 3) break;
        await new Promise((r) => setTimeout(r, 100));
      }
      expect(ready.nodes.map((n) => n.node).sort()).toEqual(['node-0', 'node-1', 'node-2']);
      const res = await fetch(`${cluster[0]!.url}/v1/connections`, {
        headers: {
          authorization: `Bearer ${await cluster[0]!.token(tenant, 'admin', { roles: ['admin'] })}`,
        },
      });
      const { connections } = (await res.json()) as { connections: Array<{ user: string; node: string }> };
      expect(connections.map((c) => `${c.user}@${c.node}`).sort()).toEqual([
        'user0@node-0',
        'user1@node-1',
        'user2@node-2',
      ]);
      for (const client of clients) await client.close();
    },
  );

  it('fills every gap from the store when no bus connects the nodes', async () => {
    // Each node on its own in-process bus: nothing is announced across nodes, only resync finds it.
    await burst(await startCluster(2, { busResyncMs: 200 }), 120);
  });
});
