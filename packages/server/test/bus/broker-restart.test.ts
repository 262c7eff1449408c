/**
 * The broker itself restarts in the middle of a burst: a private Redis or NATS server (started by the
 * test on a free port, so the machine's shared broker is untouched) is killed and started again while
 * writers on one node keep writing; subscribers on the other node still end with the full sequence.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createServer } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import {
  createTestStorage,
  startTestServer,
  storeKinds,
  type TestServer,
  type TestStorage,
} from '../helpers/server.ts';
import { requireService, tcpAvailable } from '../helpers/services.ts';
import { TestWsClient } from '../helpers/ws-client.ts';

const REDIS_BIN = '/usr/bin/redis-server';
const NATS_BIN = '/usr/sbin/nats-server';
const hasPostgres = (await storeKinds()).includes('postgres');
const hasRedisBin = requireService(`redis-server binary at ${REDIS_BIN}`, existsSync(REDIS_BIN));
const hasNatsBin = requireService(`nats-server binary at ${NATS_BIN}`, existsSync(NATS_BIN));

async function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const server = createServer();
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

interface Broker {
  url: string;
  start(): Promise<void>;
  stop(): Promise<void>;
}

function broker(kind: 'redis' | 'nats', port: number): Broker {
  let child: ChildProcess | null = null;
  const args =
    kind === 'redis'
      ? ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no']
      : ['-a', '127.0.0.1', '-p', String(port)];
  return {
    url: `${kind}://127.0.0.1:${port}`,
    async start() {
      child = spawn(kind === 'redis' ? REDIS_BIN : NATS_BIN, args, { stdio: 'ignore' });
      const deadline = Date.now() + 5000;
      while (!(await tcpAvailable(`tcp://127.0.0.1:${port}`, port))) {
        if (Date.now() > deadline) throw new Error(`${kind} did not start on ${port}`);
        await new Promise((r) => setTimeout(r, 50));
      }
    },
    async stop() {
      if (!child) return;
      const exited = new Promise((r) => child!.once('exit', r));
      child.kill('SIGKILL');
      await exited;
      child = null;
    },
  };
}

let nodes: TestServer[] = [];
let storage: TestStorage | null = null;
let running: Broker | null = null;

afterEach(async () => {
  for (const node of nodes) await node.close({ keepData: true });
  await storage?.cleanup();
  await running?.stop();
  nodes = [];
  storage = null;
  running = null;
});

async function restartMidBurst(kind: 'redis' | 'nats'): Promise<void> {
  running = broker(kind, await freePort());
  await running.start();
  storage = createTestStorage('postgres');
  for (const id of ['a', 'b']) {
    nodes.push(
      await startTestServer(
        'postgres',
        { nodeId: `node-${id}`, busUrl: running.url, busResyncMs: 300 },
        storage,
      ),
    );
  }
  const tenant = `r${Math.random().toString(36).slice(2, 8)}`;
  const reader = await TestWsClient.connect(nodes[1]!.wsUrl, await nodes[1]!.token(tenant, 'reader'));
  await reader.request({ type: 'subscribe', channel: 'records:ticks' });
  const writer = await TestWsClient.connect(nodes[0]!.wsUrl, await nodes[0]!.token(tenant, 'writer'));
  const total = 300;
  for (let i = 0; i < total; i++) {
    await writer.request({
      type: 'mutate',
      mutations: [{ mid: `m${i}`, collection: 'ticks', id: `t${i % 9}`, op: 'put', data: { i } }],
    });
    if (i === 100) await running.stop();
    if (i === 200) await running.start();
  }
  const events = await reader.waitForEvents(total, 'records:ticks', 20_000);
  expect(events.map((e) => e.seq)).toEqual(Array.from({ length: total }, (_, k) => k + 1));
  await reader.close();
  await writer.close();
}

describe.skipIf(!hasPostgres)('broker restarts mid-burst', () => {
  it.skipIf(!hasRedisBin)('Redis restarts: subscribers on the other node get the full sequence', async () => {
    await restartMidBurst('redis');
  });

  it.skipIf(!hasNatsBin)('NATS restarts: subscribers on the other node get the full sequence', async () => {
    await restartMidBurst('nats');
  });
});
