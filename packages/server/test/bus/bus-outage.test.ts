/**
 * The bus goes away under a running node and comes back: a TCP proxy in front of the shared Redis or
 * NATS (the test's own, so the broker stays up for everyone else) is cut while another node keeps
 * writing. During the outage `GET /v1/ready` on the cut node answers 503 with `bus.ok: false` (it used
 * to wait for the reconnect); after it, the node is ready again and its subscriber holds every event
 * once, in order.
 */
import { afterEach, describe, expect, it } from 'vitest';
import {
  createTestStorage,
  startTestServer,
  storeKinds,
  type TestServer,
  type TestStorage,
} from '../helpers/server.ts';
import { NATS_URL, REDIS_URL, requireService, tcpAvailable } from '../helpers/services.ts';
import { startTcpProxy, type TcpProxy } from '../helpers/tcp-proxy.ts';
import { TestWsClient } from '../helpers/ws-client.ts';

const hasPostgres = (await storeKinds()).includes('postgres');
const hasRedis = requireService(`Redis at ${REDIS_URL}`, await tcpAvailable(REDIS_URL, 6379));
const hasNats = requireService(`NATS at ${NATS_URL}`, await tcpAvailable(NATS_URL, 4222));

let nodes: TestServer[] = [];
let storage: TestStorage | null = null;
let proxy: TcpProxy | null = null;

afterEach(async () => {
  for (const node of nodes) await node.close({ keepData: true });
  await storage?.cleanup();
  await proxy?.close();
  nodes = [];
  storage = null;
  proxy = null;
});

async function ready(
  node: TestServer,
): Promise<{ status: number; body: { status: string; bus: { ok: boolean } } }> {
  const res = await fetch(`${node.url}/v1/ready`);
  return { status: res.status, body: (await res.json()) as { status: string; bus: { ok: boolean } } };
}

async function outage(kind: 'redis' | 'nats'): Promise<void> {
  const shared = new URL(kind === 'redis' ? REDIS_URL : NATS_URL);
  proxy = await startTcpProxy(shared.hostname, Number(shared.port || (kind === 'redis' ? 6379 : 4222)));
  storage = createTestStorage('postgres');
  nodes.push(
    await startTestServer('postgres', { nodeId: 'direct', busUrl: shared.href, busResyncMs: 300 }, storage),
  );
  const cutUrl = `${kind}://127.0.0.1:${proxy.port}`;
  nodes.push(
    await startTestServer('postgres', { nodeId: 'proxied', busUrl: cutUrl, busResyncMs: 300 }, storage),
  );
  const [writerNode, cutNode] = nodes as [TestServer, TestServer];
  expect(await ready(cutNode)).toMatchObject({ status: 200, body: { status: 'ready', bus: { ok: true } } });

  const tenant = `o${Math.random().toString(36).slice(2, 8)}`;
  const reader = await TestWsClient.connect(cutNode.wsUrl, await cutNode.token(tenant, 'reader'));
  await reader.request({ type: 'subscribe', channel: 'records:ticks' });
  const writer = await TestWsClient.connect(writerNode.wsUrl, await writerNode.token(tenant, 'writer'));
  const total = 90;
  for (let i = 0; i < total; i++) {
    if (i === 30) {
      await proxy.cut();
      const during = await ready(cutNode);
      expect(during.status).toBe(503);
      expect(during.body).toMatchObject({ status: 'unavailable', bus: { kind, ok: false } });
    }
    if (i === 60) await proxy.restore();
    await writer.request({
      type: 'mutate',
      mutations: [{ mid: `m${i}`, collection: 'ticks', id: `t${i % 7}`, op: 'put', data: { i } }],
    });
  }
  const events = await reader.waitForEvents(total, 'records:ticks', 20_000);
  expect(events.map((e) => e.seq)).toEqual(Array.from({ length: total }, (_, k) => k + 1));
  let after = await ready(cutNode);
  for (let tries = 0; after.status !== 200 && tries < 100; tries++) {
    await new Promise((r) => setTimeout(r, 100));
    after = await ready(cutNode);
  }
  expect(after).toMatchObject({ status: 200, body: { status: 'ready', bus: { ok: true } } });
  await reader.close();
  await writer.close();
}

describe.skipIf(!hasPostgres)('the bus goes down under a running node and comes back', () => {
  it.skipIf(!hasRedis)(
    'Redis: ready answers 503 during the outage; no event lost or repeated',
    async () => {
      await outage('redis');
    },
    60_000,
  );

  it.skipIf(!hasNats)(
    'NATS: ready answers 503 during the outage; no event lost or repeated',
    async () => {
      await outage('nats');
    },
    60_000,
  );
});
