/**
 * Two deployments in separate database schemas sharing one Redis or NATS broker never hear each
 * other: each schema's nodes use a channel (subject) of their own, as the PostgreSQL bus does. Before,
 * every deployment on a broker shared one channel, and a write of tenant `acme` in one reached
 * subscribers of tenant `acme` in the other.
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { ServerConfig } from '../../src/config/config.ts';
import { busTopic } from '../../src/startup/open-bus.ts';
import {
  createTestStorage,
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

const servers: TestServer[] = [];
const storages: TestStorage[] = [];

afterEach(async () => {
  for (const s of servers.splice(0)) await s.close({ keepData: true });
  for (const s of storages.splice(0)) await s.cleanup();
});

async function subscriber(node: TestServer): Promise<TestWsClient> {
  const client = await TestWsClient.connect(node.wsUrl, await node.token('acme', 'reader'));
  await client.request({ type: 'subscribe', channel: 'records:notes' });
  return client;
}

async function put(node: TestServer, id: string): Promise<void> {
  const client = await TestWsClient.connect(node.wsUrl, await node.token('acme', 'writer'));
  const reply = await client.request({
    type: 'mutate',
    mutations: [{ mid: `m-${id}`, collection: 'notes', id, op: 'put', data: { id } }],
  });
  expect(reply.type).toBe('results');
  await client.close();
}

async function isolation(config: Partial<ServerConfig>): Promise<void> {
  const storeA = createTestStorage('postgres');
  const storeB = createTestStorage('postgres');
  storages.push(storeA, storeB);
  const a1 = await startTestServer('postgres', { nodeId: 'a-1', ...config }, storeA);
  const a2 = await startTestServer('postgres', { nodeId: 'a-2', ...config }, storeA);
  const b1 = await startTestServer('postgres', { nodeId: 'b-1', ...config }, storeB);
  servers.push(a1, a2, b1);
  const onA2 = await subscriber(a2);
  const onB1 = await subscriber(b1);

  await put(a1, 'from-a');
  // The broker delivered deployment A's message: A's other node shows it.
  await onA2.waitForEvents(1, 'records:notes');
  await put(b1, 'from-b');
  const seen = await onB1.waitForEvents(1, 'records:notes');
  expect(seen.map((e) => (e as { id?: string }).id ?? (e as { data?: { id: string } }).data?.id)).toEqual([
    'from-b',
  ]);
  expect(onB1.events('records:notes')).toHaveLength(1);
  await onA2.close();
  await onB1.close();
}

describe.skipIf(!hasPostgres)('deployments sharing a broker', () => {
  it('names a channel per schema', () => {
    expect(busTopic('redis', undefined)).toBe('syncbridge:events');
    expect(busTopic('redis', 'tenant_a')).toBe('syncbridge:events:tenant_a');
    expect(busTopic('nats', 'tenant_a')).toBe('syncbridge.events.tenant_a');
  });

  it.skipIf(!hasRedis)('never hear each other on Redis', () => isolation({ busUrl: REDIS_URL }));
  it.skipIf(!hasNats)('never hear each other on NATS', () => isolation({ busUrl: NATS_URL }));
});
