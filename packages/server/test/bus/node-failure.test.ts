/**
 * A node dies (kill -9) in the middle of a burst; its subscribers reconnect to another node with their
 * last seq and end with every event exactly once, in order.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { TokenService } from '../../src/auth/tokens.ts';
import {
  createTestStorage,
  POSTGRES_URL,
  type ServerProcess,
  spawnServerProcess,
  storeKinds,
  TEST_JWT_SECRET,
  type TestStorage,
} from '../helpers/server.ts';
import { REDIS_URL, requireService, tcpAvailable } from '../helpers/services.ts';
import { TestWsClient } from '../helpers/ws-client.ts';

const hasPostgres = (await storeKinds()).includes('postgres');
const hasRedis = requireService(`Redis at ${REDIS_URL}`, await tcpAvailable(REDIS_URL, 6379));

describe.skipIf(!hasPostgres).for([
  ['Redis', REDIS_URL, hasRedis],
  ['PostgreSQL', POSTGRES_URL, true],
] as const)('node failure (%s bus)', ([, busUrl, up]) => {
  let storage: TestStorage;
  const processes: ServerProcess[] = [];
  afterAll(async () => {
    for (const p of processes) p.child.kill('SIGKILL');
    await Promise.all(processes.map((p) => p.exited));
    await storage?.cleanup();
  });

  it.skipIf(!up)(
    'subscribers of a killed node resume on another with nothing lost or repeated',
    { timeout: 90_000 },
    async () => {
      storage = createTestStorage('postgres');
      const a = await spawnServerProcess(storage, {
        SYNCBRIDGE_BUS_URL: busUrl,
        SYNCBRIDGE_NODE_ID: 'node-a',
      });
      processes.push(a);
      const b = await spawnServerProcess(storage, {
        SYNCBRIDGE_BUS_URL: busUrl,
        SYNCBRIDGE_NODE_ID: 'node-b',
      });
      processes.push(b);
      const tokens = new TokenService({ jwtSecret: TEST_JWT_SECRET });
      const token = async (user: string) => (await tokens.mint({ tenant: 'failover', user })).token;

      const seen: number[] = [];
      let reader = await TestWsClient.connect(b.wsUrl, await token('reader'));
      const track = (client: TestWsClient) =>
        client.ws.on('message', (data) => {
          const m = JSON.parse(data.toString()) as { type: string; seq?: number };
          if (m.type === 'event') seen.push(m.seq!);
        });
      track(reader);
      await reader.request({ type: 'subscribe', channel: 'records:ticks', since: 0 });

      const writer = await TestWsClient.connect(a.wsUrl, await token('writer'));
      const total = 400;
      let killed = false;
      for (let i = 0; i < total; i++) {
        await writer.request({
          type: 'mutate',
          mutations: [{ mid: `w${i}`, collection: 'ticks', id: `t${i % 5}`, op: 'put', data: { i } }],
        });
        if (i === 150) {
          b.child.kill('SIGKILL');
          killed = true;
          await b.exited;
        }
        if (killed && i === 200) {
          // The client notices the dead node and reconnects elsewhere with its last seq.
          await reader.closed;
          reader = await TestWsClient.connect(a.wsUrl, await token('reader'));
          track(reader);
          const since = seen.length > 0 ? seen[seen.length - 1]! : 0;
          await reader.request({ type: 'subscribe', channel: 'records:ticks', since });
        }
      }
      const deadline = Date.now() + 20_000;
      while (seen.length < total && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
      expect(seen).toEqual(Array.from({ length: total }, (_, k) => k + 1));
      await reader.close();
      await writer.close();
    },
  );
});
