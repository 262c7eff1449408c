/**
 * Subscribes sent back to back on one connection, without waiting for each reply: the same channel
 * many times must leave one subscription (one event per write, not one per subscribe), and many
 * channels must stop at the per-connection limit of 1000. Both are checked on the server's own count
 * of subscriptions, so a client cannot multiply the server's fan-out work or memory by pipelining.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { scrape } from '../helpers/prometheus.ts';
import { type StoreKind, startTestServer, storeKinds, type TestServer } from '../helpers/server.ts';
import { TestWsClient } from '../helpers/ws-client.ts';

const kinds = await storeKinds();

/** The server's own count of channel subscriptions (the syncbridge_subscriptions gauge). */
async function subscriptions(srv: TestServer): Promise<number> {
  return (await scrape(srv.url)).value('syncbridge_subscriptions');
}

describe.each(kinds)('pipelined subscribes (%s)', (kind: StoreKind) => {
  let srv: TestServer;
  beforeAll(async () => {
    srv = await startTestServer(kind);
  });
  afterAll(async () => srv?.close());

  it('one channel subscribed 50 times at once is one subscription: each write arrives once', async () => {
    const token = await srv.token('acme', 'mallory');
    const client = await TestWsClient.connect(srv.wsUrl, token);
    for (let i = 0; i < 50; i++) client.send({ type: 'subscribe', rid: `s${i}`, channel: 'records:same' });
    await client.waitFor((m) => m.rid === 's49', 20_000);
    await client.waitFor(() => client.messages.filter((m) => m.type === 'subscribed').length === 50, 20_000);
    expect(await subscriptions(srv)).toBe(1);

    const writer = await TestWsClient.connect(srv.wsUrl, await srv.token('acme', 'alice'));
    await writer.request({
      type: 'mutate',
      mutations: [{ mid: 'w1', collection: 'same', id: 'a', op: 'put', data: { n: 1 } }],
    });
    await writer.request({
      type: 'mutate',
      mutations: [{ mid: 'w2', collection: 'same', id: 'b', op: 'put', data: { n: 2 } }],
    });
    const events = await client.waitForEvents(2, 'records:same');
    // A ping answered after both writes' fan-out: any duplicate would have arrived before it.
    await client.request({ type: 'ping' });
    expect(events.map((e) => e.id)).toEqual(['a', 'b']);
    expect(client.events('records:same')).toHaveLength(2);

    await client.close();
    await writer.close();
    await expect.poll(() => subscriptions(srv), { timeout: 10_000 }).toBe(0);
  });

  it('1,200 channels subscribed at once stop at 1,000 subscriptions', async () => {
    const client = await TestWsClient.connect(srv.wsUrl, await srv.token('acme', 'mallory'));
    for (let i = 0; i < 1200; i++) client.send({ type: 'subscribe', rid: `c${i}`, channel: `records:c${i}` });
    const replied = () => client.messages.filter((m) => typeof m.rid === 'string' && m.rid.startsWith('c'));
    await client.waitFor(() => replied().length === 1200, 60_000);
    const subscribed = replied().filter((m) => m.type === 'subscribed');
    const refused = replied().filter((m) => m.type === 'error');
    expect(subscribed).toHaveLength(1000);
    expect(refused).toHaveLength(200);
    for (const error of refused) {
      expect(error.code).toBe('BAD_REQUEST');
      expect(error.message).toBe('at most 1000 subscriptions per connection');
    }
    expect(await subscriptions(srv)).toBe(1000);
    expect((await client.request({ type: 'ping' })).type).toBe('pong');
    await client.close();
  });
});
