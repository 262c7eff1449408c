/**
 * Webhook deliveries shared by several nodes on one PostgreSQL database: every scheduled attempt is
 * made exactly once across the nodes (no node sends a delivery another holds), failed attempts are
 * retried on the schedule, the work is spread over the nodes, and the deliveries a node held when it
 * was killed (kill -9) are taken over by another node once their leases run out; an endpoint created or
 * changed on one node is used by every other node from its next commit.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import pg from 'pg';
import { afterEach, describe, expect, it } from 'vitest';
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
import { restClient } from '../http/rest.ts';
import { eventually } from './receiver.ts';

const hasPostgres = (await storeKinds()).includes('postgres');

/**
 * A receiver that counts the requests per delivery (`webhook-id`) and answers as `answer` says: a
 * status, or `hold` (the response waits until `release()`).
 */
class CountingReceiver {
  readonly attempts = new Map<string, number>();
  private held: ServerResponse[] = [];
  answer: (attempt: number, payload: { i: number }) => number | 'hold' = () => 200;

  private constructor(
    private readonly server: Server,
    readonly url: string,
  ) {}

  static async start(): Promise<CountingReceiver> {
    let self: CountingReceiver | null = null;
    const server = createServer((req: IncomingMessage, res: ServerResponse) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const body = JSON.parse(Buffer.concat(chunks).toString()) as { data: { i: number } };
        self!.handle(String(req.headers['webhook-id']), body.data, res);
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as AddressInfo;
    self = new CountingReceiver(server, `http://127.0.0.1:${port}/hook`);
    return self;
  }

  private handle(eventId: string, payload: { i: number }, res: ServerResponse): void {
    const attempt = (this.attempts.get(eventId) ?? 0) + 1;
    this.attempts.set(eventId, attempt);
    const answer = this.answer(attempt, payload);
    if (answer === 'hold') this.held.push(res);
    else res.writeHead(answer).end();
  }

  get total(): number {
    let n = 0;
    for (const c of this.attempts.values()) n += c;
    return n;
  }

  /** Answers every held request with 200 (those whose sender died fail silently). */
  release(): void {
    for (const res of this.held.splice(0)) if (!res.destroyed) res.writeHead(200).end();
  }

  async close(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

/** This node's `syncbridge_webhook_attempts_total`, all outcomes. */
async function attemptsMadeBy(url: string): Promise<number> {
  const text = await (await fetch(`${url}/metrics`)).text();
  let n = 0;
  for (const m of text.matchAll(/^syncbridge_webhook_attempts_total\{[^}]*\} (\d+)/gm)) n += Number(m[1]);
  return n;
}

const WEBHOOK_SETTINGS = {
  webhookAllowPrivate: ['127.0.0.1/32'],
  webhookRetrySchedule: '150ms,300ms',
  webhookPollMs: 100,
  webhookLeaseMs: 1000,
};

describe.skipIf(!hasPostgres)('webhook deliveries shared by several nodes', () => {
  let storage: TestStorage | null = null;
  let receiver: CountingReceiver | null = null;
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
    await receiver?.close();
    await storage?.cleanup();
    storage = null;
  });

  it('makes each scheduled attempt once across three nodes, retries failures, and spreads the work', async () => {
    storage = createTestStorage('postgres');
    for (let i = 0; i < 3; i++) {
      nodes.push(await startTestServer('postgres', { nodeId: `node-${i}`, ...WEBHOOK_SETTINGS }, storage));
    }
    receiver = await CountingReceiver.start();
    const apis = nodes.map((n) => restClient(n.url, { apiKey: TEST_ADMIN_KEY, tenant: 'shared' }));
    const hook = await apis[0]!.post('/v1/webhooks', {
      json: { name: 'shared', url: receiver.url, eventTypes: ['job'], maxConcurrency: 4 },
    });
    expect(hook.status, hook.text).toBe(201);
    const webhookId = hook.body.id as string;

    // No waiting: nodes 1 and 2 learn of the endpoint created on node 0 from the version their first
    // commit reads under the tenant's lock, so none of their events misses a delivery.
    // Event i fails its first i % 3 attempts with 500: it needs i % 3 + 1 attempts in all.
    receiver.answer = (attempt, payload) => (attempt <= payload.i % 3 ? 500 : 200);
    const failuresOf = new Map<string, number>();
    const total = 90;
    const published = await Promise.all(
      Array.from({ length: total }, async (_, i) => {
        // Published on every node in turn: each node hears of its own commits at once, the others poll.
        const res = await apis[i % 3]!.post('/v1/events', { json: { type: 'job', payload: { i } } });
        expect(res.status, res.text).toBe(201);
        failuresOf.set(res.body.eventId, i % 3);
        return res.body.eventId as string;
      }),
    );

    const done = await eventually(
      async () => {
        const res = await apis[1]!.get(`/v1/webhooks/${webhookId}/deliveries?limit=1000&attempts=true`);
        const list = res.body.deliveries as Array<{
          eventId: string;
          status: string;
          attemptLog: Array<{ attempt: number; success: boolean; responseStatus: number | null }>;
        }>;
        return list.length === total && list.every((d) => d.status === 'success') ? list : undefined;
      },
      30_000,
      'every delivery to succeed',
    );

    // The receiver saw exactly the scheduled attempts: no delivery sent twice for one attempt.
    for (const eventId of published) {
      expect(receiver.attempts.get(eventId), `attempts of ${eventId}`).toBe(failuresOf.get(eventId)! + 1);
    }
    // The delivery log agrees, attempt by attempt.
    for (const d of done) {
      const failures = failuresOf.get(d.eventId)!;
      expect(d.attemptLog.map((a) => a.attempt)).toEqual(
        Array.from({ length: failures + 1 }, (_, k) => k + 1),
      );
      expect(d.attemptLog.map((a) => a.responseStatus)).toEqual([
        ...Array.from({ length: failures }, () => 500),
        200,
      ]);
    }
    // Each node counts the attempts it made; together they are the receiver's, and more than one node worked.
    const perNode = await Promise.all(nodes.map((n) => attemptsMadeBy(n.url)));
    expect(perNode.reduce((a, b) => a + b, 0)).toBe(receiver.total);
    expect(perNode.filter((n) => n > 0).length, `attempts per node: ${perNode}`).toBeGreaterThan(1);
  }, 60_000);

  it('plans deliveries for an endpoint created or changed on another node from that node’s next commit', async () => {
    storage = createTestStorage('postgres');
    receiver = await CountingReceiver.start();
    // Polls too rare to help: each node must learn of the other's endpoint changes from its own commits.
    const settings = { ...WEBHOOK_SETTINGS, webhookPollMs: 60_000 };
    for (const nodeId of ['writer', 'admin']) {
      nodes.push(await startTestServer('postgres', { nodeId, ...settings }, storage));
    }
    const [onWriter, onAdmin] = nodes.map((n) =>
      restClient(n.url, { apiKey: TEST_ADMIN_KEY, tenant: 'fresh' }),
    );
    const publish = async (type: string, i: number) => {
      const res = await onWriter!.post('/v1/events', { json: { type, payload: { i } } });
      expect(res.status, res.text).toBe(201);
      return res.body.eventId as string;
    };
    const before = await publish('job', 0);

    const hook = await onAdmin!.post('/v1/webhooks', {
      json: { name: 'fresh', url: receiver.url, eventTypes: ['job'] },
    });
    expect(hook.status, hook.text).toBe(201);
    const first = await publish('job', 1);
    await eventually(
      () => receiver!.attempts.get(first) === 1,
      10_000,
      'the event committed on the other node',
    );

    const narrowed = await onAdmin!.patch(`/v1/webhooks/${hook.body.id}`, {
      json: { eventTypes: ['other'] },
    });
    expect(narrowed.status, narrowed.text).toBe(200);
    const dropped = await publish('job', 2);
    const kept = await publish('other', 3);
    await eventually(() => receiver!.attempts.get(kept) === 1, 10_000, 'the event of the new type');
    expect(receiver.attempts.has(dropped), 'an event of the type the endpoint no longer takes').toBe(false);
    expect(receiver.attempts.has(before), 'an event committed before the endpoint existed').toBe(false);
  });

  it('takes over the deliveries a killed node held, once their leases run out', async () => {
    storage = createTestStorage('postgres');
    receiver = await CountingReceiver.start();
    receiver.answer = () => 'hold';
    const env = {
      SYNCBRIDGE_NODE_ID: 'doomed',
      SYNCBRIDGE_WEBHOOK_ALLOW_PRIVATE: '127.0.0.1/32',
      SYNCBRIDGE_WEBHOOK_POLL_MS: '100',
      SYNCBRIDGE_WEBHOOK_LEASE_MS: '1000',
      SYNCBRIDGE_WEBHOOK_TIMEOUT_MS: '30000',
    };
    const doomed = await spawnServerProcess(storage, env);
    processes.push(doomed);
    const survivor = await startTestServer(
      'postgres',
      { nodeId: 'survivor', ...WEBHOOK_SETTINGS, webhookTimeoutMs: 30_000 },
      storage,
    );
    nodes.push(survivor);
    const onDoomed = restClient(doomed.url, { apiKey: TEST_ADMIN_KEY, tenant: 'takeover' });
    const onSurvivor = restClient(survivor.url, { apiKey: TEST_ADMIN_KEY, tenant: 'takeover' });
    const hook = await onDoomed.post('/v1/webhooks', {
      json: { name: 'takeover', url: receiver.url, eventTypes: ['job'], maxConcurrency: 20 },
    });
    expect(hook.status, hook.text).toBe(201);
    const webhookId = hook.body.id as string;

    const total = 24;
    const published: string[] = [];
    for (let i = 0; i < total; i++) {
      const api = i % 2 === 0 ? onDoomed : onSurvivor;
      const res = await api.post('/v1/events', { json: { type: 'job', payload: { i } } });
      expect(res.status, res.text).toBe(201);
      published.push(res.body.eventId as string);
    }
    // Every delivery is in flight (held by the receiver) on one node or the other.
    await eventually(() => receiver!.attempts.size === total, 15_000, 'every delivery in flight');
    const db = new pg.Client({ connectionString: POSTGRES_URL });
    await db.connect();
    let holders: Map<string, string>;
    try {
      const { rows } = await db.query<{ event_id: string; locked_by: string }>(
        `SELECT event_id, locked_by FROM ${storage.config.databaseSchema}.webhook_deliveries`,
      );
      holders = new Map(rows.map((r) => [r.event_id, r.locked_by]));
    } finally {
      await db.end();
    }
    const heldByDoomed = published.filter((id) => holders.get(id) === 'doomed');
    const heldBySurvivor = published.filter((id) => holders.get(id) === 'survivor');
    expect(heldByDoomed.length + heldBySurvivor.length).toBe(total);
    expect(heldByDoomed.length, 'the node to kill holds some leases').toBeGreaterThan(0);

    doomed.child.kill('SIGKILL');
    await doomed.exited;
    receiver.answer = () => 200;
    receiver.release();

    const done = await eventually(
      async () => {
        const res = await onSurvivor.get(`/v1/webhooks/${webhookId}/deliveries?limit=100`);
        const list = res.body.deliveries as Array<{ eventId: string; status: string; attempts: number }>;
        return list.length === total && list.every((d) => d.status === 'success') ? list : undefined;
      },
      20_000,
      'every delivery to succeed on the surviving node',
    );
    // The dead node's deliveries were sent once more (their first answer never reached it); the
    // survivor's own were not repeated.
    for (const id of heldByDoomed) expect(receiver.attempts.get(id), id).toBe(2);
    for (const id of heldBySurvivor) expect(receiver.attempts.get(id), id).toBe(1);
    const attempts = new Map(done.map((d) => [d.eventId, d.attempts]));
    for (const id of heldByDoomed) expect(attempts.get(id)).toBe(2);
    for (const id of heldBySurvivor) expect(attempts.get(id)).toBe(1);
    expect(await attemptsMadeBy(survivor.url)).toBe(heldBySurvivor.length + heldByDoomed.length);
  }, 60_000);
});
