/**
 * Connectors on several nodes sharing one PostgreSQL database: every node knows every connector, but
 * exactly one runs each (the holder of its lease) and the others stand by. A scheduled pull's
 * provider sees one puller; when that node is killed (kill -9), another takes the connector over. A
 * feed running on one node reaches `topic:` subscribers on the others over the bus, and a node that
 * starts later has the topic's latest values.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import {
  providerPullSpec,
  type SimulatedProvider,
  startSimulatedProvider,
} from '../../../../examples/open-banking-pull/provider.ts';
import type { Connector, ConnectorContext, ConnectorHealth, TickInput } from '../../src/connectors/index.ts';
import {
  createTestStorage,
  type ServerProcess,
  spawnServerProcess,
  startTestServer,
  storeKinds,
  TEST_ADMIN_KEY,
  type TestServer,
  type TestStorage,
} from '../helpers/server.ts';
import { REDIS_URL, requireService, tcpAvailable } from '../helpers/services.ts';
import { TestWsClient } from '../helpers/ws-client.ts';
import type { Json } from '../http/rest.ts';
import { adminRest, type Frame, waitFor, waitForFrame } from './support.ts';

const hasPostgres = (await storeKinds()).includes('postgres');
const hasRedis = requireService(`Redis at ${REDIS_URL}`, await tcpAvailable(REDIS_URL, 6379));
const API_KEY = 'provider-api-key';

/** A feed written in code whose ticks the test sends by hand, while it runs on its node. */
class HandFeed implements Connector {
  readonly name = 'prices-feed';
  readonly tenant = 'acme';
  readonly kind = 'hand-feed';
  ctx: ConnectorContext | null = null;
  readonly feed = { topic: 'prices', setSymbols: () => {}, activeSymbols: () => [] };

  async start(ctx: ConnectorContext): Promise<void> {
    await ctx.topics.declare('prices');
    this.ctx = ctx;
  }
  stop(): void {
    this.ctx = null;
  }
  health(): ConnectorHealth {
    return {
      state: this.ctx ? 'running' : 'stopped',
      lastSuccessAt: null,
      lastError: null,
      stalenessMs: null,
      stale: false,
    };
  }
  tick(input: TickInput) {
    if (!this.ctx) throw new Error(`${this.name} does not run on this node`);
    return this.ctx.topics.tick('prices', input);
  }
}

describe.skipIf(!hasPostgres)('connectors on several nodes', () => {
  let storage: TestStorage | null = null;
  let provider: SimulatedProvider | null = null;
  let nodes: TestServer[] = [];
  const processes: ServerProcess[] = [];
  const clients: TestWsClient[] = [];
  afterEach(async () => {
    for (const c of clients.splice(0)) await c.close();
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

  it('runs a scheduled pull on one node only, and on another once that node is killed', async () => {
    storage = createTestStorage('postgres');
    provider = await startSimulatedProvider({ apiKey: API_KEY });
    provider.upsertAccount('c1', {
      id: 'acc-1',
      name: 'Checking',
      iban: 'FR76 0001',
      balance: 10,
      currency: 'EUR',
    });
    const spec = providerPullSpec({
      name: 'bank',
      tenant: 'acme',
      baseUrl: provider.url,
      apiKey: API_KEY,
      schedule: '* * * * * *',
      connections: [{ id: 'c1' }],
    });
    const connectors = { leaseCheckMs: 200, instances: [spec] };
    const configFile = join(storage.dataDir, 'cluster.json');
    writeFileSync(configFile, JSON.stringify({ connectors }));
    // The first node takes the lease; the second, started after it with the same definition, stands by.
    const first = await spawnServerProcess(storage, {
      SYNCBRIDGE_CONFIG: configFile,
      SYNCBRIDGE_NODE_ID: 'node-a',
    });
    processes.push(first);
    const second = await startTestServer('postgres', { nodeId: 'node-b', connectors }, storage);
    nodes.push(second);
    const onFirst = adminRest(first.url, TEST_ADMIN_KEY, 'acme');
    const onSecond = adminRest(second.url, TEST_ADMIN_KEY, 'acme');
    const status = async (api: typeof onFirst) => (await api('GET', '/v1/connectors/bank')).body as Json;

    expect(await status(onFirst)).toMatchObject({ role: 'leader', state: 'running' });
    expect(await status(onSecond)).toMatchObject({ role: 'standby', state: 'stopped' });
    // Several scheduled runs: all made by the first node.
    const led = await waitFor(
      () => status(onFirst),
      (s) => s.metrics.runs_total >= 3,
      'three scheduled runs',
      15_000,
    );
    const standing = await status(onSecond);
    expect(standing).toMatchObject({ role: 'standby' });
    expect(standing.metrics.runs_total).toBe(0);
    expect(provider.requests.length).toBeGreaterThanOrEqual(led.metrics.runs_total);
    // A trigger on the standing-by node says where the connector runs.
    const refused = await onSecond('POST', '/v1/connectors/bank/trigger', {});
    expect(refused.status).toBe(503);
    expect(refused.body.error.message).toMatch(/another node/);

    first.child.kill('SIGKILL');
    await first.exited;
    const requestsAtKill = provider.requests.length;
    const took = await waitFor(
      () => status(onSecond),
      (s) => s.role === 'leader' && s.metrics.runs_total >= 2,
      'the second node to take the pull over and run it',
      15_000,
    );
    expect(took.state).not.toBe('stopped');
    expect(provider.requests.length).toBeGreaterThan(requestsAtKill);
    const accounts = (await onSecond('GET', '/v1/records/accounts')).body.records as Json[];
    expect(accounts.map((a) => a.id)).toEqual(['c1:acc-1']);
  }, 60_000);

  it.skipIf(!hasRedis)(
    "carries a feed's ticks to subscribers on other nodes, and its latest values to a node that starts later",
    async () => {
      storage = createTestStorage('postgres');
      const feeds = [new HandFeed(), new HandFeed(), new HandFeed()];
      const start = async (i: number) => {
        const node = await startTestServer(
          'postgres',
          { nodeId: `node-${i}`, busUrl: REDIS_URL, connectors: { leaseCheckMs: 200 } },
          storage!,
          { connectors: [feeds[i]!] },
        );
        nodes.push(node);
        return node;
      };
      const a = await start(0);
      const b = await start(1);
      expect(feeds[0]!.ctx).not.toBeNull();
      expect(feeds[1]!.ctx).toBeNull();

      // A screen on node B, the feed on node A.
      const screen = await TestWsClient.connect(b.wsUrl, await b.token('acme', 'screen'));
      clients.push(screen);
      await screen.request({ type: 'subscribe', channel: 'topic:prices' });
      for (let i = 1; i <= 20; i++) feeds[0]!.tick({ symbol: i % 2 ? 'AAPL' : 'MSFT', price: 100 + i });
      const seqs = async () =>
        (screen.messages as Frame[]).filter((m) => m.type === 'tick').map((m) => m.seq as number);
      const seen = await waitFor(seqs, (s) => s.length === 20, 'the 20 ticks on node B');
      expect(seen).toEqual(Array.from({ length: 20 }, (_, k) => k + 1));
      expect((screen.messages as Frame[]).filter((m) => m.type === 'tick').at(-1)).toMatchObject({
        symbol: 'MSFT',
        price: 120,
      });

      // A node started now asks for the latest values and has them; a screen joining it gets them.
      const c = await start(2);
      expect(feeds[2]!.ctx).toBeNull();
      const onC = adminRest(c.url, TEST_ADMIN_KEY, 'acme');
      const latest = await waitFor(
        async () => (await onC('GET', '/v1/connectors/prices-feed/latest/AAPL')).body as Json,
        (l) => l.tick?.seq === 19,
        'the latest AAPL value on node C',
      );
      expect(latest.tick).toMatchObject({ symbol: 'AAPL', price: 119 });
      const late = await TestWsClient.connect(c.wsUrl, await c.token('acme', 'late'));
      clients.push(late);
      await late.request({ type: 'subscribe', channel: 'topic:prices' });
      const snapshot = await waitForFrame(late, (m) => m.type === 'ticks');
      expect((snapshot.ticks as Json[]).map((t) => `${t.symbol}@${t.price}#${t.seq}`).sort()).toEqual([
        'AAPL@119#19',
        'MSFT@120#20',
      ]);

      // Node A stops: another node runs the feed, and its ticks continue the topic's seq.
      await a.close({ keepData: true });
      nodes.splice(nodes.indexOf(a), 1);
      const runner = await waitFor(
        () => feeds.slice(1).find((f) => f.ctx !== null) ?? null,
        (f) => f !== null,
        'another node to run the feed',
      );
      const next = runner!.tick({ symbol: 'AAPL', price: 200 });
      expect(next.seq).toBe(21);
      const onScreen = await waitForFrame(screen, (m) => m.type === 'tick' && m.seq === 21);
      expect(onScreen).toMatchObject({ symbol: 'AAPL', price: 200 });
    },
    60_000,
  );
});
