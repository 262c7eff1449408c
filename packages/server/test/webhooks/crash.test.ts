/**
 * kill -9 of syncbridge in the middle of delivering, then a restart, on every store: every event that
 * was acknowledged reaches the endpoint at least once, and every request verifies. The restarted
 * process is a new node (its id names its pid), so the dead node's in-flight deliveries come back when
 * their leases run out.
 */
import { afterEach, describe, expect, it } from 'vitest';
import {
  createTestStorage,
  type ServerProcess,
  type StoreKind,
  spawnServerProcess,
  storeKinds,
  TEST_ADMIN_KEY,
  type TestStorage,
} from '../helpers/server.ts';
import { restClient } from '../http/rest.ts';
import { eventually, Receiver } from './receiver.ts';
import { verifySignatures } from './support.ts';

const kinds = await storeKinds();
const SECRET = 'crash-test-secret-0001';
const ENV = {
  SYNCBRIDGE_WEBHOOK_ALLOW_PRIVATE: '127.0.0.1/32',
  SYNCBRIDGE_WEBHOOK_LEASE_MS: '1000',
  SYNCBRIDGE_WEBHOOK_POLL_MS: '200',
  SYNCBRIDGE_WEBHOOK_RETRY_SCHEDULE: '100ms,200ms,400ms,1s,2s',
};

describe.each(kinds)('webhook deliveries across kill -9 (%s)', (kind: StoreKind) => {
  let storage: TestStorage | null = null;
  let receiver: Receiver | null = null;
  const processes: ServerProcess[] = [];
  afterEach(async () => {
    for (const p of processes) {
      if (p.child.exitCode === null && p.child.signalCode === null) p.child.kill('SIGKILL');
      await p.exited;
    }
    processes.length = 0;
    await receiver?.close();
    await storage?.cleanup();
  });

  it('delivers every acknowledged event at least once after a crash mid-delivery', async () => {
    storage = createTestStorage(kind);
    receiver = await Receiver.start(() => ({ status: 200, delayMs: 25 }));
    const first = await spawnServerProcess(storage, ENV);
    processes.push(first);
    const api = restClient(first.url, { apiKey: TEST_ADMIN_KEY, tenant: 'crash' });
    const hook = await api.post('/v1/webhooks', {
      json: { name: 'crash', url: receiver.url, eventTypes: ['tick'], secret: SECRET, maxConcurrency: 4 },
    });
    expect(hook.status, hook.text).toBe(201);

    const total = 50;
    const acked = await Promise.all(
      Array.from({ length: total }, async (_, i) => {
        const res = await api.post('/v1/events', { json: { type: 'tick', payload: { i } } });
        expect(res.status, res.text).toBe(201);
        return res.body.eventId as string;
      }),
    );
    await receiver.waitFor(8);
    first.child.kill('SIGKILL');
    await first.exited;
    const seenBefore = new Set(receiver.requests.map((r) => r.headers['webhook-id']));
    expect(seenBefore.size).toBeLessThan(total); // the crash did interrupt the deliveries

    const second = await spawnServerProcess(storage, ENV);
    processes.push(second);
    await eventually(
      () => {
        const seen = new Set(receiver!.requests.map((r) => r.headers['webhook-id']));
        return acked.every((id) => seen.has(id)) ? true : undefined;
      },
      20_000,
      'every acknowledged event at the receiver',
    );
    for (const req of receiver.requests) {
      const body = verifySignatures(req, SECRET);
      expect(acked).toContain(body.id);
    }
    // The delivery log agrees: nothing pending, nothing failed.
    const api2 = restClient(second.url, { apiKey: TEST_ADMIN_KEY, tenant: 'crash' });
    const health = await eventually(async () => {
      const [h] = (await api2.get('/v1/sync/health')).body.health;
      return h && h.pendingEvents === 0 ? h : undefined;
    });
    expect(health).toMatchObject({ pendingEvents: 0, failedEvents: 0 });
    const stats = (await api2.get('/v1/stats')).body.stats;
    expect(stats.completedEvents).toBe(total);
  }, 45_000);
});
