/**
 * Access rules on a device's pending summary, on both stores: the WebSocket `pending` frame and
 * `GET /v1/devices/{id}` count only the changes the device's user would receive (a record moved out of
 * what it reads counts, as the removal it gets); a collection with nothing readable pending is left out.
 * Without a read rule, and for admins, every change counts.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type StoreKind, startTestServer, storeKinds, type TestServer } from '../helpers/server.ts';
import { TestWsClient } from '../helpers/ws-client.ts';
import { restClient } from '../http/rest.ts';

const kinds = await storeKinds();
const T = 'docs-pending';

describe.each(kinds)('pending counts under access rules (%s)', (kind: StoreKind) => {
  let srv: TestServer;
  let admin: ReturnType<typeof restClient>;
  const clients: TestWsClient[] = [];

  async function hello(token: string, deviceId: string) {
    const client = await TestWsClient.connect(srv.wsUrl);
    clients.push(client);
    await client.request({ type: 'hello', token, deviceId });
    return client.waitFor((m) => m.type === 'pending');
  }
  async function put(collection: string, id: string, data: object) {
    const res = await admin.put(`/v1/records/${collection}/${id}`, { json: data });
    expect(res.status, res.text).toBeLessThan(300);
  }

  beforeAll(async () => {
    srv = await startTestServer(kind);
    admin = restClient(srv.url, { token: await srv.token(T, 'root', { roles: ['admin'] }) });
    const rules = { read: 'record.ownerId == auth.user' };
    expect((await admin.put('/v1/collections/documents', { json: { rules } })).status).toBe(200);
  });
  afterAll(async () => {
    for (const c of clients) await c.close();
    await srv?.close();
  });

  it('counts only the changes a user would receive, on connect and over REST', async () => {
    const alice = await srv.token(T, 'alice');
    const bob = await srv.token(T, 'bob');
    const root = await srv.token(T, 'root', { roles: ['admin'] });
    // Cursors at 0 (new devices); then alice's two documents, bob's one, a note, and bob's moved to alice.
    await put('documents', 'a1', { ownerId: 'alice', v: 1 });
    await put('documents', 'a2', { ownerId: 'alice', v: 1 });
    await put('documents', 'b1', { ownerId: 'bob', v: 1 });
    await put('notes', 'n1', { v: 1 });
    await put('documents', 'b1', { ownerId: 'alice', v: 2 });

    const forAlice = await hello(alice, 'alice-phone');
    // a1, a2, and b1's move to alice (arriving); not b1's creation by bob.
    expect(forAlice).toMatchObject({ count: 4, collections: { documents: 3, notes: 1 } });
    const forBob = await hello(bob, 'bob-phone');
    // b1's creation, and its move away from bob (a removal); nothing of alice's.
    expect(forBob).toMatchObject({ count: 3, collections: { documents: 2, notes: 1 } });
    const forRoot = await hello(root, 'root-laptop');
    expect(forRoot).toMatchObject({ count: 5, collections: { documents: 4, notes: 1 } });

    const bobRest = restClient(srv.url, { token: bob });
    expect((await bobRest.post('/v1/devices', { json: { id: 'bob-phone' } })).status).toBeLessThan(300);
    const rest = await bobRest.get('/v1/devices/bob-phone');
    expect(rest.status, rest.text).toBe(200);
    expect(rest.body.pending).toMatchObject({ count: 3, collections: { documents: 2, notes: 1 } });
  });

  it('leaves out a collection with nothing readable pending', async () => {
    const carol = await srv.token(T, 'carol');
    const pending = await hello(carol, 'carol-phone');
    expect(pending.collections).toEqual({ notes: 1 });
    expect(pending.count).toBe(1);
  });
});
