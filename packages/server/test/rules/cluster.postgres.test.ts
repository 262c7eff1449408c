/**
 * Access rules across two nodes on one PostgreSQL database: rules set on one node hold on the other, for
 * its writes at once (its next commit reads the new settings) and for its reads and live subscriptions
 * within about the settings' maximum age (2 s), although that node had the collection cached without rules
 * and takes no write meanwhile.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  createTestStorage,
  startTestServer,
  storeKinds,
  type TestServer,
  type TestStorage,
} from '../helpers/server.ts';
import { TestWsClient } from '../helpers/ws-client.ts';
import { expectError, restClient } from '../http/rest.ts';

const hasPostgres = (await storeKinds()).includes('postgres');
const T = 'inventory';
const RULES = {
  read: 'record.locationId in auth.claims.locations',
  write: 'record.locationId in auth.claims.locations',
};

describe.skipIf(!hasPostgres)('access rules on two nodes (postgres)', () => {
  let storage: TestStorage;
  let a: TestServer;
  let b: TestServer;
  let ws: TestWsClient;

  beforeAll(async () => {
    storage = createTestStorage('postgres');
    a = await startTestServer('postgres', { nodeId: 'a' }, storage);
    b = await startTestServer('postgres', { nodeId: 'b' }, storage);
  });
  afterAll(async () => {
    await ws?.close();
    await b?.close({ keepData: true });
    await a?.close({ keepData: true });
    await storage?.cleanup();
  });

  it('applies rules set on one node to the reads, subscriptions and writes of the other', async () => {
    const adminA = restClient(a.url, { token: await a.token(T, 'boss', { roles: ['admin'] }) });
    const clerkToken = await b.token(T, 'c1', { claims: { locations: ['wh-1'] } });
    const clerkB = restClient(b.url, { token: clerkToken });
    await adminA.put('/v1/records/stock/s1', { json: { locationId: 'wh-1' } });
    await adminA.put('/v1/records/stock/s2', { json: { locationId: 'wh-2' } });
    // Node b caches the collection without rules: its clerk reads wh-2 stock.
    expect((await clerkB.get('/v1/records/stock/s2')).status).toBe(200);
    ws = await TestWsClient.connect(b.wsUrl, clerkToken);
    await ws.request({ type: 'subscribe', channel: 'records:stock' });

    expect((await adminA.put('/v1/collections/stock', { json: { rules: RULES } })).status).toBe(200);
    // Reads on b, with no write on b meanwhile: once its cached copy is older than the maximum age.
    const started = Date.now();
    let status = 200;
    while (status === 200 && Date.now() - started < 5_000) {
      status = (await clerkB.get('/v1/records/stock/s2')).status;
      if (status === 200) await new Promise((r) => setTimeout(r, 100));
    }
    expect(status).toBe(404);
    expect(Date.now() - started).toBeLessThan(4_000);
    // Live events on b follow the same rules.
    await adminA.put('/v1/records/stock/s3', { json: { locationId: 'wh-2' } });
    await adminA.put('/v1/records/stock/s4', { json: { locationId: 'wh-1' } });
    const events = await ws.waitForEvents(1, 'records:stock');
    await new Promise((r) => setTimeout(r, 300));
    expect(events.map((e) => e.id)).toEqual(['s4']);
    expect(ws.events('records:stock').map((e) => e.id)).toEqual(['s4']);
    // Writes on b: its commits read settings changed since (here already read for their age).
    expectError(await clerkB.put('/v1/records/stock/s2', { json: { locationId: 'wh-1' } }), 403, 'FORBIDDEN');
  });
});
