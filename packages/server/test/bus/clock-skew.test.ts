/**
 * A node whose clock is off: a second node runs with its wall clock five minutes behind (a preload
 * shifts Date.now). Both share PostgreSQL and Redis; the skewed node logs a warning naming the peer and
 * how far apart the clocks are, and writes still flow both ways with every event once.
 */
import { resolve } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import {
  createTestStorage,
  type ServerProcess,
  spawnServerProcess,
  startTestServer,
  storeKinds,
  type TestServer,
  type TestStorage,
} from '../helpers/server.ts';
import { REDIS_URL, requireService, tcpAvailable } from '../helpers/services.ts';
import { TestWsClient } from '../helpers/ws-client.ts';

const hasPostgres = (await storeKinds()).includes('postgres');
const hasRedis = requireService(`Redis at ${REDIS_URL}`, await tcpAvailable(REDIS_URL, 6379));
const SKEW = resolve(import.meta.dirname, '../helpers/skew-clock.mjs');

let node: TestServer | null = null;
let skewed: ServerProcess | null = null;
let storage: TestStorage | null = null;

afterEach(async () => {
  if (skewed && skewed.child.exitCode === null) {
    skewed.child.kill('SIGTERM');
    await skewed.exited;
  }
  await node?.close({ keepData: true });
  await storage?.cleanup();
  node = null;
  skewed = null;
  storage = null;
});

describe.skipIf(!hasPostgres || !hasRedis)('a node whose clock is off', () => {
  it('warns, naming the peer and the offset, and still carries every event once', async () => {
    storage = createTestStorage('postgres');
    skewed = await spawnServerProcess(storage, {
      SYNCBRIDGE_NODE_ID: 'behind',
      SYNCBRIDGE_BUS_URL: REDIS_URL,
      NODE_OPTIONS: `--import ${SKEW}`,
      SKEW_MS: String(-300_000),
    });
    let out = ''; // the log goes to stderr
    skewed.child.stderr!.on('data', (d: Buffer) => {
      out += d.toString();
    });
    // Started after the skewed node listens, so its first heartbeat lands in the output read here.
    node = await startTestServer('postgres', { nodeId: 'on-time', busUrl: REDIS_URL }, storage);
    for (let i = 0; i < 150 && !out.includes("node on-time's clock"); i++) {
      await new Promise((r) => setTimeout(r, 100));
    }
    const warning = out.split('\n').find((line) => line.includes("node on-time's clock"));
    expect(warning, `skewed node printed: ${out}`).toBeDefined();
    const msg = (JSON.parse(warning!) as { msg: string }).msg;
    expect(msg).toMatch(/^node on-time's clock is \d+ ms ahead of this node's \(behind\)/);
    expect(Number(/is (\d+) ms/.exec(msg)![1])).toBeGreaterThan(290_000);

    const tenant = `k${Math.random().toString(36).slice(2, 8)}`;
    const reader = await TestWsClient.connect(skewed.wsUrl, await node!.token(tenant, 'reader'));
    await reader.request({ type: 'subscribe', channel: 'records:notes' });
    const writer = await TestWsClient.connect(node!.wsUrl, await node!.token(tenant, 'writer'));
    for (let i = 0; i < 20; i++) {
      await writer.request({
        type: 'mutate',
        mutations: [{ mid: `m${i}`, collection: 'notes', id: `n${i % 3}`, op: 'put', data: { i } }],
      });
    }
    const events = await reader.waitForEvents(20, 'records:notes', 20_000);
    expect(events.map((e) => e.seq)).toEqual(Array.from({ length: 20 }, (_, k) => k + 1));
    await reader.close();
    await writer.close();
  }, 90_000);
});
