/**
 * A change of access rules on live WebSocket subscriptions, on both stores: a subscriber whose read rule
 * changed gets `reset` and an authoritative snapshot under the new rule (records it may no longer read are
 * left out, so the SDK's cache drops them; records it may now read are in it), and then live events under
 * the new rule, with nothing lost between. Subscribers the change does not concern (admins, another
 * collection, a settings change that leaves the read rules alone) get no reset; a branch's channel of
 * the collection is sent again as the collection's is.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type StoreKind, startTestServer, storeKinds, type TestServer } from '../helpers/server.ts';
import { TestWsClient } from '../helpers/ws-client.ts';
import { restClient } from '../http/rest.ts';

const kinds = await storeKinds();
const T = 'inventory';
const CHANNEL = 'records:stock';
/** A branch of the collection (`c@b`) has the collection's rules. */
const BRANCH = 'records:stock@draft';
const BY_LOCATION = { read: 'record.locationId in auth.claims.locations' };
const BY_AUDIT = { read: 'record.locationId in auth.claims.audits' };

type Message = Record<string, unknown>;
const resets = (client: TestWsClient, channel = CHANNEL) =>
  client.messages.filter((m) => m.type === 'reset' && m.channel === channel);

describe.each(kinds)('access rule changes on live subscriptions (%s)', (kind: StoreKind) => {
  let srv: TestServer;
  let admin: ReturnType<typeof restClient>;
  let clerk: TestWsClient;
  let boss: TestWsClient;
  const clients: TestWsClient[] = [];

  async function put(id: string, locationId: string) {
    const res = await admin.put(`/v1/records/stock/${id}`, { json: { locationId, qty: 1 } });
    expect(res.status, res.text).toBeLessThan(300);
  }
  async function setRules(rules: object, extra: object = {}) {
    const res = await admin.put('/v1/collections/stock', { json: { rules, ...extra } });
    expect(res.status, res.text).toBe(200);
  }
  /** The records of the last complete snapshot on the channel that follows the `n`th reset. */
  async function snapshotAfterReset(client: TestWsClient, n: number): Promise<string[]> {
    await client.waitFor(() => resets(client).length >= n);
    const from = client.messages.indexOf(resets(client)[n - 1]!);
    const done = await client.waitFor(
      (m) =>
        m.type === 'snapshot' &&
        m.channel === CHANNEL &&
        m.done === true &&
        client.messages.indexOf(m) > from,
    );
    const chunks = client.messages
      .slice(from, client.messages.indexOf(done) + 1)
      .filter((m) => m.type === 'snapshot' && m.channel === CHANNEL);
    return chunks.flatMap((m) => (m.records as Message[]).map((r) => r.id as string)).sort();
  }

  beforeAll(async () => {
    srv = await startTestServer(kind);
    admin = restClient(srv.url, { token: await srv.token(T, 'admin', { roles: ['admin'] }) });
    await setRules(BY_LOCATION);
    await put('a1', 'wh-1');
    await put('b2', 'wh-2');
    clerk = await TestWsClient.connect(
      srv.wsUrl,
      await srv.token(T, 'c1', { claims: { locations: ['wh-1'], audits: ['wh-2'] } }),
    );
    boss = await TestWsClient.connect(srv.wsUrl, await srv.token(T, 'boss', { roles: ['admin'] }));
    clients.push(clerk, boss);
    const fork = await admin.post('/v1/records/stock/b2/branches', { json: { name: 'draft' } });
    expect(fork.status, fork.text).toBe(201);
    for (const c of clients) {
      await c.request({ type: 'subscribe', channel: CHANNEL, snapshot: true });
      await c.request({ type: 'subscribe', channel: 'records:other', snapshot: true });
      await c.request({ type: 'subscribe', channel: BRANCH, snapshot: true });
    }
  });
  afterAll(async () => {
    for (const c of clients) await c.close();
    await srv?.close();
  });

  it('leaves subscriptions alone when a settings change keeps the read rules', async () => {
    await setRules(BY_LOCATION, { strategy: 'lww' });
    await put('a3', 'wh-1');
    await clerk.waitForEvents(1, CHANNEL);
    expect(resets(clerk)).toEqual([]);
  });

  it('sends a subscriber whose read rule changed its records again: retracted and newly readable', async () => {
    await setRules(BY_AUDIT);
    // a1 and a3 (wh-1) are no longer readable and are left out of the authoritative snapshot; b2 arrives.
    expect(await snapshotAfterReset(clerk, 1)).toEqual(['b2']);
    expect(resets(clerk)).toMatchObject([{ reason: 'the access rules of stock changed' }]);
    // Live events follow the new rule, with nothing lost in the hand-over.
    const before = clerk.events(CHANNEL).length;
    await put('a4', 'wh-1');
    await put('b5', 'wh-2');
    const events = await clerk.waitForEvents(before + 1, CHANNEL);
    await boss.waitForEvents(3, CHANNEL);
    expect(events.slice(before).map((e) => e.id)).toEqual(['b5']);
  });

  it('sends newly readable records when a rule gets wider, and none to admins or other channels', async () => {
    await setRules({ read: 'true' });
    expect(await snapshotAfterReset(clerk, 2)).toEqual(['a1', 'a3', 'a4', 'b2', 'b5']);
    expect(resets(boss)).toEqual([]);
    expect(resets(clerk, 'records:other')).toEqual([]);
    // The branch's channel follows its collection's rules: sent again at each change of them.
    await clerk.waitFor(() => resets(clerk, BRANCH).length >= 2);
    expect(resets(boss, BRANCH)).toEqual([]);
  });
});
