/**
 * docs/deploy.md's way to try several nodes: `npm run cluster` (scripts/cluster.ts). Run as documented
 * with two nodes on the local PostgreSQL (a schema of the test's own) and the Redis bus, it prints the
 * shared admin key and the client URLs; both nodes list each other in `GET /v1/ready`, a write on one
 * reaches a subscriber on the other, and SIGTERM stops them all.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { createServer } from 'node:net';
import { resolve } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { createTestStorage, storeKinds, type TestStorage } from '../helpers/server.ts';
import { REDIS_URL, requireService, tcpAvailable } from '../helpers/services.ts';
import { TestWsClient } from '../helpers/ws-client.ts';

const ROOT = resolve(import.meta.dirname, '../../../..');
const hasPostgres = (await storeKinds()).includes('postgres');
const hasRedis = requireService(`Redis at ${REDIS_URL}`, await tcpAvailable(REDIS_URL, 6379));

/** A port whose next one is free too (the script takes consecutive ports). */
async function twoFreePorts(): Promise<number> {
  const listen = (port: number) =>
    new Promise<number | null>((done) => {
      const s = createServer();
      s.once('error', () => done(null));
      s.listen(port, '127.0.0.1', () => {
        const got = (s.address() as { port: number }).port;
        s.close(() => done(got));
      });
    });
  for (;;) {
    const first = await listen(0);
    if (first !== null && first < 65535 && (await listen(first + 1)) !== null) return first;
  }
}

let child: ChildProcess | null = null;
let storage: TestStorage | null = null;

afterEach(async () => {
  if (child && child.exitCode === null) {
    const exited = new Promise((r) => child!.once('exit', r));
    child.kill('SIGTERM');
    await exited;
  }
  await storage?.cleanup();
  child = null;
  storage = null;
});

describe.skipIf(!hasPostgres || !hasRedis)('npm run cluster (docs/deploy.md)', () => {
  it('starts nodes that see each other and carry a write from one to the other', async () => {
    storage = createTestStorage('postgres');
    const port = await twoFreePorts();
    // A fresh data dir: the script generates the shared secrets there, as it does for a newcomer.
    const { SYNCBRIDGE_ADMIN_KEY: _key, SYNCBRIDGE_JWT_SECRET: _secret, ...inherited } = process.env;
    child = spawn(
      process.execPath,
      ['--conditions=@syncbridge/source', '--import', 'tsx', 'scripts/cluster.ts'],
      {
        cwd: ROOT,
        env: {
          ...inherited,
          SYNCBRIDGE_NODES: '2',
          SYNCBRIDGE_PORT: String(port),
          SYNCBRIDGE_DATA_DIR: storage.dataDir,
          SYNCBRIDGE_DATABASE_URL: storage.config.databaseUrl,
          SYNCBRIDGE_DATABASE_SCHEMA: storage.config.databaseSchema,
          SYNCBRIDGE_BUS_URL: REDIS_URL,
        },
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    let out = '';
    child.stdout!.on('data', (c: Buffer) => {
      out += c.toString();
    });
    child.stderr!.on('data', (c: Buffer) => {
      out += c.toString();
    });
    for (let i = 0; i < 600 && (out.match(/syncbridge listening on/g) ?? []).length < 2; i++) {
      if (child.exitCode !== null) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    expect(out).toMatch(/\[node-2\] syncbridge listening on/);
    const adminKey = /admin key: (\S+)/.exec(out)?.[1];
    const urls = JSON.parse(/client URLs: (.+)/.exec(out)?.[1] ?? '[]') as string[];
    expect(adminKey).toMatch(/^sb_admin_/);
    expect(urls).toEqual([`ws://127.0.0.1:${port}/v1/realtime`, `ws://127.0.0.1:${port + 1}/v1/realtime`]);

    let nodes: string[] = [];
    for (let i = 0; i < 100 && nodes.length < 2; i++) {
      const ready = (await (await fetch(`http://127.0.0.1:${port}/v1/ready`)).json()) as {
        bus: { kind: string };
        nodes: Array<{ node: string }>;
      };
      expect(ready.bus.kind).toBe('redis');
      nodes = ready.nodes.map((n) => n.node).sort();
      if (nodes.length < 2) await new Promise((r) => setTimeout(r, 200));
    }
    expect(nodes).toEqual(['node-1', 'node-2']);

    const token = async (p: number) => {
      const res = await fetch(`http://127.0.0.1:${p}/v1/auth/token`, {
        method: 'POST',
        headers: { 'X-Api-Key': adminKey!, 'Content-Type': 'application/json' },
        body: JSON.stringify({ tenant: 'demo', user: 'alice' }),
      });
      return ((await res.json()) as { token: string }).token;
    };
    const reader = await TestWsClient.connect(urls[1]!, await token(port + 1));
    await reader.request({ type: 'subscribe', channel: 'records:todos' });
    const res = await fetch(`http://127.0.0.1:${port}/v1/records/todos/t1`, {
      method: 'PUT',
      headers: { Authorization: `Bearer ${await token(port)}`, 'Content-Type': 'application/json' },
      body: JSON.stringify({ title: 'Buy milk' }),
    });
    expect(res.status).toBe(201);
    const [event] = await reader.waitForEvents(1, 'records:todos');
    expect(event).toMatchObject({ seq: 1 });
    await reader.close();

    const exited = new Promise<number | null>((r) => child!.once('exit', r));
    child.kill('SIGTERM');
    expect(await exited).toBe(0);
  }, 90_000);
});
