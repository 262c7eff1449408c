/**
 * Access rules on WebSocket subscriptions, on both stores: a clerk of wh-1 gets neither in a snapshot,
 * nor in a backlog (resuming with `since`), nor live, nor through a filtered channel, a wh-2 record; a
 * record moved away from wh-1 reaches the wh-1 clerk as a removal; hidden fields never reach clerks; a
 * rule change sends a live subscription its records again, then the next events.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type StoreKind, startTestServer, storeKinds, type TestServer } from '../helpers/server.ts';
import { TestWsClient } from '../helpers/ws-client.ts';
import { restClient } from '../http/rest.ts';

const kinds = await storeKinds();
const T = 'inventory';
const RULES = {
  read: "auth.roles.exists(r, r == 'manager') || record.locationId in auth.claims.locations",
  hide: { costPrice: "!auth.roles.exists(r, r == 'manager')" },
};
const CHANNEL = 'records:stock';

type Message = Record<string, unknown>;
const ids = (events: Message[]) => events.map((e) => `${e.id}:${e.op}`);

describe.each(kinds)('access rules on WebSocket subscriptions (%s)', (kind: StoreKind) => {
  let srv: TestServer;
  let admin: ReturnType<typeof restClient>;
  let clerk1: TestWsClient;
  let clerk2: TestWsClient;
  let manager: TestWsClient;
  const clients: TestWsClient[] = [];

  async function put(id: string, locationId: string) {
    const res = await admin.put(`/v1/records/stock/${id}`, { json: { locationId, sku: id, costPrice: 7 } });
    expect(res.status, res.text).toBeLessThan(300);
  }
  async function connect(user: string, options: Parameters<TestServer['token']>[2]) {
    const client = await TestWsClient.connect(srv.wsUrl, await srv.token(T, user, options));
    clients.push(client);
    return client;
  }

  beforeAll(async () => {
    srv = await startTestServer(kind);
    admin = restClient(srv.url, { token: await srv.token(T, 'boss', { roles: ['admin'] }) });
    expect((await admin.put('/v1/collections/stock', { json: { rules: RULES } })).status).toBe(200);
    await put('a1', 'wh-1');
    await put('b2', 'wh-2');
    clerk1 = await connect('c1', { claims: { locations: ['wh-1'] } });
    clerk2 = await connect('c2', { claims: { locations: ['wh-2'] } });
    manager = await connect('meg', { roles: ['manager'] });
  });
  afterAll(async () => {
    for (const c of clients) await c.close();
    await srv?.close();
  });

  it('sends a snapshot of the readable records only, without hidden fields', async () => {
    const reply = await clerk1.request({ type: 'subscribe', channel: CHANNEL, snapshot: true });
    expect(reply.type).toBe('subscribed');
    const snapshot = await clerk1.waitFor((m) => m.type === 'snapshot' && m.channel === CHANNEL);
    expect(snapshot.records).toMatchObject([{ id: 'a1', data: { locationId: 'wh-1', sku: 'a1' } }]);
    expect((snapshot.records as { data: object }[])[0]!.data).not.toHaveProperty('costPrice');
    await clerk2.request({ type: 'subscribe', channel: CHANNEL, snapshot: true });
    const other = await clerk2.waitFor((m) => m.type === 'snapshot' && m.channel === CHANNEL);
    expect((other.records as { id: string }[]).map((r) => r.id)).toEqual(['b2']);
    await manager.request({ type: 'subscribe', channel: CHANNEL, snapshot: true });
    const all = await manager.waitFor((m) => m.type === 'snapshot' && m.channel === CHANNEL);
    expect(all.records).toHaveLength(2);
  });

  it('replays a backlog (resume with since) of readable records only', async () => {
    const resumed = await connect('c1-phone', { claims: { locations: ['wh-1'] } });
    await resumed.request({ type: 'subscribe', channel: CHANNEL, since: 0 });
    const events = await resumed.waitForEvents(1, CHANNEL);
    await new Promise((r) => setTimeout(r, 200));
    expect(ids(resumed.events(CHANNEL))).toEqual(['a1:put']);
    expect(events[0]!.data).toEqual({ locationId: 'wh-1', sku: 'a1' });
  });

  it('delivers live events to the subscribers who may read them, each view built for its readers', async () => {
    await put('a3', 'wh-1');
    await put('b4', 'wh-2');
    const forManager = await manager.waitForEvents(2, CHANNEL);
    expect(forManager.map((e) => (e.data as { costPrice: number }).costPrice)).toEqual([7, 7]);
    await clerk2.waitForEvents(1, CHANNEL);
    await clerk1.waitForEvents(1, CHANNEL);
    await new Promise((r) => setTimeout(r, 200));
    expect(ids(clerk1.events(CHANNEL))).toEqual(['a3:put']);
    expect(ids(clerk2.events(CHANNEL))).toEqual(['b4:put']);
    expect(clerk1.events(CHANNEL)[0]!.data).toEqual({ locationId: 'wh-1', sku: 'a3' });
  });

  it('sends a removal to a subscriber whose record left what it may read', async () => {
    const res = await admin.patch('/v1/records/stock/a1', {
      json: { locationId: 'wh-2' },
      headers: { 'content-type': 'application/merge-patch+json' },
    });
    expect(res.status, res.text).toBe(200);
    const [, removal] = await clerk1.waitForEvents(2, CHANNEL);
    expect(removal).toMatchObject({ id: 'a1', op: 'delete', data: null, version: 2 });
    expect(removal).not.toHaveProperty('previous');
    const [, arrival] = await clerk2.waitForEvents(2, CHANNEL);
    expect(arrival).toMatchObject({ id: 'a1', op: 'patch', data: { locationId: 'wh-2' } });
    expect(arrival!.data).not.toHaveProperty('costPrice');
    // `previous` would tell clerk2 where the record was before (wh-1): it is left out.
    expect(arrival).not.toHaveProperty('previous');
  });

  it('gives a filtered channel of another location nothing', async () => {
    const channel = 'records:stock?locationId=wh-2';
    await clerk1.request({ type: 'subscribe', channel, snapshot: true });
    const snapshot = await clerk1.waitFor((m) => m.type === 'snapshot' && m.channel === channel);
    expect(snapshot.records).toEqual([]);
    await put('b5', 'wh-2');
    await clerk2.waitForEvents(3, CHANNEL);
    await new Promise((r) => setTimeout(r, 200));
    expect(clerk1.events(channel)).toEqual([]);
  });

  it('never sent a clerk of wh-1 a wh-2 record or a cost price', () => {
    // The channel name is the clerk's own words (the filtered channel names wh-2): leave it out.
    const texts = clerk1.messages.map(({ channel: _channel, ...rest }) => JSON.stringify(rest));
    expect(texts.length).toBeGreaterThan(4);
    for (const text of texts) {
      expect(text).not.toContain('costPrice');
      expect(text).not.toContain('wh-2');
    }
  });

  it('applies a rule change to a live subscription: its records again, then the next events', async () => {
    const before = clerk1.events(CHANNEL).length;
    expect((await admin.put('/v1/collections/stock', { json: { rules: { read: 'true' } } })).status).toBe(
      200,
    );
    // The subscription is sent again under the new rule (rule-change.test.ts), then goes on live.
    await clerk1.waitFor((m) => m.type === 'reset' && m.channel === CHANNEL);
    const snapshot = await clerk1.waitFor(
      (m) =>
        m.type === 'snapshot' &&
        m.channel === CHANNEL &&
        m.done === true &&
        m.cursor !== undefined &&
        clerk1.messages.indexOf(m) > clerk1.messages.findIndex((r) => r.type === 'reset'),
    );
    expect((snapshot.records as { data: object }[]).some((r) => 'costPrice' in r.data)).toBe(true);
    await put('b6', 'wh-2');
    const events = await clerk1.waitForEvents(before + 1, CHANNEL);
    expect(events.at(-1)).toMatchObject({ id: 'b6', data: { locationId: 'wh-2', costPrice: 7 } });
  });
});
