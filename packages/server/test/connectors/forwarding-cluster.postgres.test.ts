/**
 * Any node of a cluster answers a connector's trigger and feed-subscription routes: a node standing by
 * for the connector forwards the call over the bus to the node running it and answers with that node's
 * answer (status and body, or typed error). When the running node dies mid-call, the standing-by node
 * answers UNAVAILABLE with when to retry instead of hanging, and once another node took the lease over
 * the next call works. Real nodes on PostgreSQL, over the Redis bus (and NATS and PostgreSQL for the feed routes).
 */
import { randomUUID } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import {
  providerPullSpec,
  type SimulatedProvider,
  startSimulatedProvider,
} from '../../../../examples/open-banking-pull/provider.ts';
import type { Connector, ConnectorContext, ConnectorHealth } from '../../src/connectors/index.ts';
import {
  createTestStorage,
  POSTGRES_URL,
  type ServerProcess,
  spawnServerProcess,
  startTestServer,
  storeKinds,
  TEST_ADMIN_KEY,
  type TestServer,
  type TestStorage,
} from '../helpers/server.ts';
import { NATS_URL, REDIS_URL, requireService, tcpAvailable } from '../helpers/services.ts';
import type { Json } from '../http/rest.ts';
import { adminRest, metricValue, waitFor } from './support.ts';

const hasPostgres = (await storeKinds()).includes('postgres');
const hasRedis = requireService(`Redis at ${REDIS_URL}`, await tcpAvailable(REDIS_URL, 6379));
const hasNats = requireService(`NATS at ${NATS_URL}`, await tcpAvailable(NATS_URL, 4222));
const API_KEY = 'provider-api-key';

/** A feed written in code that records the symbols it was asked to subscribe upstream. */
class RecordingFeed implements Connector {
  readonly tenant = 'acme';
  readonly kind = 'recording-feed';
  ctx: ConnectorContext | null = null;
  upstream: string[] = [];
  readonly feed = {
    topic: 'prices',
    setSymbols: (symbols: string[]) => {
      this.upstream = symbols;
    },
    activeSymbols: () => this.upstream,
  };

  constructor(readonly name: string) {}

  async start(ctx: ConnectorContext): Promise<void> {
    await ctx.topics.declare('prices');
    this.ctx = ctx;
  }
  stop(): void {
    this.ctx = null;
  }
  health(): ConnectorHealth {
    const state = this.ctx ? 'running' : 'stopped';
    return { state, lastSuccessAt: null, lastError: null, stalenessMs: null, stale: false };
  }
}

describe.skipIf(!hasPostgres)('connector calls answered by any node', () => {
  let storage: TestStorage | null = null;
  let provider: SimulatedProvider | null = null;
  let nodes: TestServer[] = [];
  const processes: ServerProcess[] = [];
  afterEach(async () => {
    for (const p of processes) {
      if (p.child.exitCode === null && p.child.signalCode === null) p.child.kill('SIGKILL');
      await p.exited;
    }
    processes.length = 0;
    for (const node of nodes) await node.close({ keepData: true });
    nodes = [];
    await provider?.close();
    provider = null;
    await storage?.cleanup();
    storage = null;
  });

  const buses = [
    { bus: 'Redis', url: REDIS_URL, up: hasRedis },
    { bus: 'NATS', url: NATS_URL, up: hasNats },
    { bus: 'PostgreSQL', url: POSTGRES_URL, up: true },
  ];
  for (const { bus, url, up } of buses) {
    it.skipIf(!up)(
      `makes, reads and ends a feed subscription through a standing-by node (${bus})`,
      async () => {
        storage = createTestStorage('postgres');
        // Unique per run: other clusters may share the broker.
        const name = `feed-${randomUUID().slice(0, 8)}`;
        const feeds = [new RecordingFeed(name), new RecordingFeed(name)];
        for (const [i, feed] of feeds.entries()) {
          const node = await startTestServer(
            'postgres',
            { nodeId: `node-${i}`, busUrl: url, connectors: { leaseCheckMs: 200 } },
            storage,
            { connectors: [feed] },
          );
          nodes.push(node);
        }
        const [leader, standby] = nodes.map((n) => adminRest(n.url, TEST_ADMIN_KEY, 'acme')) as [
          ReturnType<typeof adminRest>,
          ReturnType<typeof adminRest>,
        ];
        expect(feeds[0]!.ctx).not.toBeNull();
        expect(((await standby('GET', `/v1/connectors/${name}`)).body as Json).role).toBe('standby');
        const base = `/v1/connectors/${name}/subscriptions`;

        const made = await standby('POST', base, { symbols: ['AAPL', 'MSFT', 'AAPL'] });
        expect(made.status).toBe(201);
        expect(made.body).toMatchObject({ symbols: ['AAPL', 'MSFT'], createdBy: expect.any(String) });
        const id = made.body.id as string;
        // Subscribed upstream by the node running the feed, not by the one standing by.
        expect(feeds[0]!.upstream).toEqual(['AAPL', 'MSFT']);
        expect(feeds[1]!.upstream).toEqual([]);

        for (const path of [base, `${base}/${id}`, `/v1/connectors/${name}/symbols`]) {
          const there = await standby('GET', path);
          expect(there.status).toBe(200);
          expect(there.body).toEqual((await leader('GET', path)).body);
        }
        expect((await standby('GET', `${base}/${id}`)).body.status).toEqual([
          { symbol: 'AAPL', subscribed: true, active: true, ticks: 0, lastTickAt: null },
          { symbol: 'MSFT', subscribed: true, active: true, ticks: 0, lastTickAt: null },
        ]);

        expect((await standby('DELETE', `${base}/${id}`)).status).toBe(204);
        expect(feeds[0]!.upstream).toEqual([]);
        // A refusal of the running node comes back as its typed error.
        const again = await standby('DELETE', `${base}/${id}`);
        expect(again.status).toBe(404);
        expect(again.body).toEqual({ error: { code: 'NOT_FOUND', message: `no subscription ${id}` } });
        expect((await leader('DELETE', `${base}/${id}`)).body).toEqual(again.body);
        // A feed cannot be triggered: every node says so itself.
        const trigger = await standby('POST', `/v1/connectors/${name}/trigger`, {});
        expect(trigger.status).toBe(400);
        expect(trigger.body.error.code).toBe('BAD_REQUEST');
      },
      60_000,
    );
  }

  it.skipIf(!hasRedis)(
    'triggers a pull through a standing-by node; answers 503 when the running node dies mid-run, then works once the lease moved',
    async () => {
      storage = createTestStorage('postgres');
      provider = await startSimulatedProvider({ apiKey: API_KEY });
      provider.upsertAccount('c1', {
        id: 'acc-1',
        name: 'Checking',
        iban: 'FR76',
        balance: 10,
        currency: 'EUR',
      });
      const name = `bank-${randomUUID().slice(0, 8)}`;
      const spec = providerPullSpec({
        name,
        tenant: 'acme',
        baseUrl: provider.url,
        apiKey: API_KEY,
        connections: [{ id: 'c1' }],
      });
      const connectors = { leaseCheckMs: 200, instances: [spec] };
      const configFile = join(storage.dataDir, 'cluster.json');
      writeFileSync(configFile, JSON.stringify({ connectors }));
      // The first node (a process, to be killed) takes the lease; the two others stand by.
      const first = await spawnServerProcess(storage, {
        SYNCBRIDGE_CONFIG: configFile,
        SYNCBRIDGE_NODE_ID: 'node-a',
        SYNCBRIDGE_BUS_URL: REDIS_URL,
      });
      processes.push(first);
      for (const id of ['node-b', 'node-c']) {
        nodes.push(await startTestServer('postgres', { nodeId: id, busUrl: REDIS_URL, connectors }, storage));
      }
      const onA = adminRest(first.url, TEST_ADMIN_KEY, 'acme');
      const [onB, onC] = nodes.map((n) => adminRest(n.url, TEST_ADMIN_KEY, 'acme')) as [
        typeof onA,
        typeof onA,
      ];
      const status = async (api: typeof onA) => (await api('GET', `/v1/connectors/${name}`)).body as Json;
      expect(await status(onA)).toMatchObject({ role: 'leader', state: 'running' });
      expect(await status(onB)).toMatchObject({ role: 'standby' });
      const trigger = `/v1/connectors/${name}/trigger`;

      // The first pull of a never-synced connection, on node A.
      const initial = await waitFor(
        () => status(onA),
        (s) => s.metrics.runs_total >= 1,
        'the first pull',
      );
      const asked = provider.requests.length;

      // Run now through node B: node A runs it, once, and B answers with A's run report.
      const ran = await onB('POST', trigger, { reason: 'from b' });
      expect(ran.status).toBe(200);
      expect(ran.body.runs).toEqual([
        expect.objectContaining({ connection: 'c1', kind: 'delta', status: 'ok', reason: 'from b' }),
      ]);
      expect(provider.requests).toHaveLength(asked + 1);
      expect((await status(onA)).metrics.runs_total).toBe(initial.metrics.runs_total + 1);
      expect((await status(onB)).metrics.runs_total).toBe(0);
      expect((await onB('GET', '/v1/records/accounts')).body.records.map((a: Json) => a.id)).toEqual([
        'c1:acc-1',
      ]);
      // Its refusals come back as its typed errors; `wait: false` as its 202.
      const unknown = await onC('POST', trigger, { connection: 'nope' });
      expect(unknown.status).toBe(404);
      expect(unknown.body).toEqual((await onA('POST', trigger, { connection: 'nope' })).body);
      const queued = await onC('POST', trigger, { wait: false });
      expect(queued.status).toBe(202);
      expect(queued.body).toEqual({ queued: true });
      await waitFor(
        () => status(onA),
        (s) => s.metrics.runs_total === initial.metrics.runs_total + 2,
        'the queued run on node A',
      );

      // Node A dies while it runs a slow pull for node B: B answers 503 (no hang), saying when to retry.
      provider.delayMs = 60_000;
      const before = provider.requests.length;
      const pending = onB('POST', trigger, {});
      await waitFor(
        () => provider!.requests.length,
        (n) => n > before,
        'node A to call the provider',
      );
      // Only that request is slow.
      provider.delayMs = 0;
      first.child.kill('SIGKILL');
      await first.exited;
      const refused = await pending;
      expect(refused.status).toBe(503);
      expect(refused.body.error).toMatchObject({
        code: 'UNAVAILABLE',
        message: expect.stringMatching(/node-a .*stopped answering/),
        details: { retryAfterMs: expect.any(Number) },
      });
      expect(Number(refused.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
      const outcome = (o: string) =>
        metricValue(
          nodes[0]!.url,
          TEST_ADMIN_KEY,
          `syncbridge_connector_calls_forwarded_total{outcome="${o}"}`,
        );
      expect(await outcome('silent')).toBe(1);
      expect(await outcome('answered')).toBe(1);

      // Another node takes the lease over; then the trigger works through either node.
      const leaders = await waitFor(
        async () => [await status(onB), await status(onC)].map((s) => s.role),
        (roles) => roles.includes('leader'),
        'node B or C to take the connector over',
      );
      const [newLeader, other] = leaders[0] === 'leader' ? [onB, onC] : [onC, onB];
      const runsBefore = (await status(newLeader)).metrics.runs_total;
      const via = await other('POST', trigger, { reason: 'after takeover' });
      expect(via.status).toBe(200);
      expect(via.body.runs).toEqual([expect.objectContaining({ status: 'ok', reason: 'after takeover' })]);
      expect((await status(newLeader)).metrics.runs_total).toBe(runsBefore + 1);
      expect((await status(other)).metrics.runs_total).toBe(0);
      expect((await newLeader('POST', trigger, {})).status).toBe(200);
    },
    90_000,
  );
});
