/**
 * The upstream WebSocket feed connector against a simulated broker (a real ws server started here) and a
 * real syncbridge server: symbols subscribed and unsubscribed over REST reach the broker, screens get the
 * latest value and depth on join and live ticks after, the feed reconnects and subscribes again after
 * the broker drops it, a stalled screen gets conflated values while another keeps every tick, and ticks
 * are stored in batches and answer history queries after a restart.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  brokerFeedSpec,
  type SimulatedBroker,
  startSimulatedBroker,
} from '../../../../examples/market-data-feed/broker.ts';
import { type StoreKind, startTestServer, storeKinds, type TestServer } from '../helpers/server.ts';
import { TestWsClient } from '../helpers/ws-client.ts';
import { adminRest, frames, metricValue, waitFor, waitForFrame } from './support.ts';

const kinds = await storeKinds();
const TOKEN = 'broker-secret-token';

describe.each(kinds)('upstream WebSocket feed (%s)', (kind: StoreKind) => {
  let broker: SimulatedBroker;
  let srv: TestServer;
  let admin: ReturnType<typeof adminRest>;
  const clients: TestWsClient[] = [];

  const start = async (storage?: TestServer['storage']) => {
    srv = await startTestServer(
      kind,
      {
        connectors: {
          tickFlushMs: 50,
          tickFlushRows: 10_000,
          // Above what a screen reading as fast as it can (in this same process) ever has waiting.
          conflateAboveBytes: 2 * 1024 * 1024,
          instances: [
            {
              ...brokerFeedSpec({ name: 'nse', tenant: 'acme', url: broker.url, token: TOKEN }),
              heartbeat: { intervalMs: 100, timeoutMs: 600, message: { action: 'ping' } },
            } as { name: string; tenant: string; kind: string },
          ],
        },
      },
      storage,
    );
    admin = adminRest(srv.url, srv.adminKey, 'acme');
  };

  const screen = async (user: string, channel = 'topic:nse') => {
    const client = await TestWsClient.connect(srv.wsUrl, await srv.token('acme', user));
    clients.push(client);
    const reply = await client.request({ type: 'subscribe', channel });
    expect(reply.type, JSON.stringify(reply)).toBe('subscribed');
    return client;
  };

  const status = async () => (await admin('GET', '/v1/connectors/nse')).body;

  beforeAll(async () => {
    broker = await startSimulatedBroker({ token: TOKEN });
    await start();
  });
  afterEach(async () => {
    await Promise.all(
      clients.splice(0).map((c) => {
        c.ws.resume();
        return c.close();
      }),
    );
  });
  afterAll(async () => {
    await srv?.close();
    await broker?.close();
  });

  it('subscribes symbols over REST; screens get the latest value and depth on join, then live ticks', async () => {
    await waitFor(
      () => broker.connections(),
      (n) => n === 1,
      'the feed to connect',
    );
    const sub = await admin('POST', '/v1/connectors/nse/subscriptions', { symbols: ['RELIANCE', 'TCS'] });
    expect(sub.status, sub.text).toBe(201);
    await broker.waitForSubscribed(['RELIANCE', 'TCS']);
    broker.tick('RELIANCE', 2500.5, { volume: 1000 });
    broker.depth('RELIANCE', [[2500.4, 10]], [[2500.6, 12]]);
    broker.tick('TCS', 3400);
    const latest = await waitFor(
      async () => (await admin('GET', '/v1/connectors/nse/latest/RELIANCE')).body,
      (b) => b?.tick?.price === 2500.5 && b?.depth !== null && b?.depth !== undefined,
      'RELIANCE to be known',
    );
    expect(latest.tick).toMatchObject({ symbol: 'RELIANCE', price: 2500.5, volume: 1000 });
    expect(latest.depth).toMatchObject({ bids: [[2500.4, 10]], asks: [[2500.6, 12]] });
    await waitFor(
      async () => (await admin('GET', '/v1/connectors/nse/latest')).body.ticks.length,
      (n) => n === 2,
      'TCS',
    );

    const trader = await screen('trader');
    const snapshot = await waitForFrame(trader, (m) => m.type === 'ticks');
    expect(snapshot.snapshot).toBe(true);
    const prices = Object.fromEntries(
      (snapshot.ticks as Array<{ symbol: string; price: number }>).map((t) => [t.symbol, t.price]),
    );
    expect(prices).toEqual({ RELIANCE: 2500.5, TCS: 3400 });
    expect(snapshot.depth).toEqual([expect.objectContaining({ symbol: 'RELIANCE', bids: [[2500.4, 10]] })]);

    const tcsOnly = await screen('analyst', 'topic:nse?symbols=TCS');
    const tcsSnapshot = await waitForFrame(tcsOnly, (m) => m.type === 'ticks');
    expect((tcsSnapshot.ticks as unknown[]).length).toBe(1);

    broker.tick('RELIANCE', 2501);
    broker.tick('TCS', 3401);
    const live = await waitForFrame(
      trader,
      (m) => m.type === 'tick' && m.symbol === 'RELIANCE' && m.price === 2501,
    );
    expect(live.channel).toBe('topic:nse');
    await waitForFrame(trader, (m) => m.type === 'tick' && m.symbol === 'TCS' && m.price === 3401);
    await waitForFrame(tcsOnly, (m) => m.type === 'tick' && m.symbol === 'TCS' && m.price === 3401);
    expect(frames(tcsOnly).some((m) => m.type === 'tick' && m.symbol === 'RELIANCE')).toBe(false);

    const one = await admin('GET', `/v1/connectors/nse/subscriptions/${sub.body.id}`);
    expect(one.status).toBe(200);
    expect(one.body.status).toEqual([
      expect.objectContaining({ symbol: 'RELIANCE', subscribed: true, active: true, price: 2501 }),
      expect.objectContaining({ symbol: 'TCS', subscribed: true, active: true, price: 3401 }),
    ]);

    // A second subscription holds TCS: ending the first unsubscribes RELIANCE only.
    const second = await admin('POST', '/v1/connectors/nse/subscriptions', { symbols: ['TCS'] });
    expect(second.status).toBe(201);
    expect((await admin('DELETE', `/v1/connectors/nse/subscriptions/${sub.body.id}`)).status).toBe(204);
    await waitFor(
      () => broker.subscribed(),
      (s) => s.join() === 'TCS',
      'RELIANCE to be unsubscribed upstream',
    );
    expect(broker.received.filter((m) => m.action === 'unsubscribe').at(-1)?.symbols).toEqual(['RELIANCE']);
    const symbols = (await admin('GET', '/v1/connectors/nse/symbols')).body.symbols;
    expect(symbols).toEqual([
      expect.objectContaining({ symbol: 'RELIANCE', subscribed: false, active: false }),
      expect.objectContaining({ symbol: 'TCS', subscribed: true, active: true }),
    ]);
    expect((await admin('DELETE', `/v1/connectors/nse/subscriptions/${second.body.id}`)).status).toBe(204);
    await waitFor(
      () => broker.subscribed(),
      (s) => s.length === 0,
      'TCS to be unsubscribed upstream',
    );

    const unknown = await trader.request({ type: 'subscribe', channel: 'topic:nope' });
    expect(unknown).toMatchObject({ type: 'error', code: 'NOT_FOUND' });
    const user = await srv.token('acme', 'trader');
    const refused = await fetch(`${srv.url}/v1/connectors/nse/subscriptions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${user}`, 'content-type': 'application/json' },
      body: JSON.stringify({ symbols: ['INFY'] }),
    });
    expect(refused.status).toBe(403);
  });

  it('reconnects with backoff after the broker drops it, and subscribes every symbol again', async () => {
    const sub = await admin('POST', '/v1/connectors/nse/subscriptions', { symbols: ['HDFC', 'ITC'] });
    await broker.waitForSubscribed(['HDFC', 'ITC']);
    const trader = await screen('trader');
    const before = broker.accepted;
    const reconnectsBefore = (await status()).metrics.reconnects_total;

    broker.refuse(true);
    broker.drop();
    const down = await waitFor(status, (s) => s.state === 'backing_off', 'the feed to back off');
    expect(down.details.connected).toBe(false);
    expect(down.lastError).toMatch(/503|closed|Unexpected/);
    await waitFor(status, (s) => s.metrics.reconnects_total >= reconnectsBefore + 2, 'retries');

    broker.refuse(false);
    await broker.waitForConnections(before + 1);
    await broker.waitForSubscribed(['HDFC', 'ITC']);
    const up = await waitFor(
      status,
      (s) => s.state === 'running' && s.details.connected === true,
      'the feed to run',
    );
    expect(up.details.activeSymbols).toBe(2);

    // The screen's subscription outlived the upstream outage: ticks flow again.
    broker.tick('HDFC', 1600.25);
    await waitForFrame(trader, (m) => m.type === 'tick' && m.symbol === 'HDFC' && m.price === 1600.25);
    const reconnects = await metricValue(
      srv.url,
      srv.adminKey,
      'syncbridge_feed_reconnects_total{tenant="acme",connector="nse"}',
    );
    expect(reconnects).toBeGreaterThanOrEqual(reconnectsBefore + 2);
    expect((await admin('DELETE', `/v1/connectors/nse/subscriptions/${sub.body.id}`)).status).toBe(204);
  });

  it('reconnects when the broker goes silent past the heartbeat timeout', async () => {
    const sub = await admin('POST', '/v1/connectors/nse/subscriptions', { symbols: ['SBIN'] });
    await broker.waitForSubscribed(['SBIN']);
    await waitFor(status, (s) => s.state === 'running', 'the feed');
    const pings = broker.received.filter((m) => m.action === 'ping').length;
    await waitFor(
      () => broker.received.filter((m) => m.action === 'ping').length,
      (n) => n > pings,
      'a heartbeat',
    );
    const before = broker.accepted;
    const reconnects = (await status()).metrics.reconnects_total;
    broker.mute(true);
    await broker.waitForConnections(before + 1);
    const silent = await waitFor(status, (s) => s.metrics.reconnects_total > reconnects, 'the timeout');
    expect(silent.lastError).toMatch(/no message or pong from upstream for \d+ ms/);
    broker.mute(false);
    await broker.waitForConnections(before + 1);
    await broker.waitForSubscribed(['SBIN']);
    await waitFor(
      status,
      (s) => s.state === 'running' && s.details.connected === true,
      'the feed to run again',
    );
    expect((await admin('DELETE', `/v1/connectors/nse/subscriptions/${sub.body.id}`)).status).toBe(204);
  });

  it('gives a stalled screen the latest value per symbol, never a backlog, while another keeps every tick', async () => {
    const symbols = ['S0', 'S1', 'S2', 'S3', 'S4'];
    const sub = await admin('POST', '/v1/connectors/nse/subscriptions', { symbols });
    await broker.waitForSubscribed(symbols);
    const fast = await screen('fast');
    const slow = await screen('slow');
    await waitForFrame(slow, (m) => m.type === 'ticks');
    const slowBefore = frames(slow).length;
    slow.ws.pause();

    // 2 KiB per tick, 16,000 ticks (32 MiB): far more than the socket buffers between the server and the
    // paused screen hold, so the server must conflate. Sent 20 at a time, as a feed would.
    const note = 'x'.repeat(2048);
    const total = 16_000;
    const last: Record<string, number> = {};
    for (let i = 1; i <= total; i++) {
      const symbol = symbols[i % symbols.length]!;
      broker.tick(symbol, i, { note });
      last[symbol] = i;
      if (i % 20 === 0) await new Promise((r) => setImmediate(r));
    }
    const fastTicks = () =>
      frames(fast).filter((m) => m.type === 'tick' && symbols.includes(m.symbol as string));
    await waitFor(
      () => fastTicks().length,
      (n) => n === total,
      'the fast screen to get every tick',
      20_000,
    );
    expect(fastTicks().map((m) => m.price)).toEqual(Array.from({ length: total }, (_, k) => k + 1));
    const during = await status();
    expect(during.details.conflating).toBe(1);

    slow.ws.resume();
    const seen: Record<string, number> = {};
    await waitFor(
      () => {
        for (const m of frames(slow).slice(slowBefore)) {
          if (m.type === 'tick') seen[m.symbol as string] = m.price as number;
          if (m.type === 'ticks')
            for (const t of m.ticks as Array<{ symbol: string; price: number }>) seen[t.symbol] = t.price;
        }
        return seen;
      },
      (s) => symbols.every((sym) => s[sym] === last[sym]),
      'the stalled screen to catch up with the latest values',
      20_000,
    );
    const slowFrames = frames(slow).length - slowBefore;
    expect(slowFrames).toBeLessThan(total / 2);
    const conflated = frames(slow).filter((m) => m.type === 'ticks' && typeof m.conflated === 'number');
    expect(conflated.length).toBeGreaterThan(0);
    expect(conflated.reduce((n, m) => n + (m.conflated as number), 0)).toBeGreaterThan(0);
    expect(slow.closeCode).toBeNull();
    const dropped = await metricValue(srv.url, srv.adminKey, 'syncbridge_topic_conflated_total');
    expect(dropped).toBeGreaterThan(total / 2);
    expect((await admin('DELETE', `/v1/connectors/nse/subscriptions/${sub.body.id}`)).status).toBe(204);
  });

  it('stores ticks in batches and answers history queries, also after a restart', async () => {
    const sub = await admin('POST', '/v1/connectors/nse/subscriptions', { symbols: ['INFY'] });
    await broker.waitForSubscribed(['INFY']);
    const flushesBefore =
      (await metricValue(srv.url, srv.adminKey, 'syncbridge_tick_flush_duration_seconds_count')) ?? 0;
    const t0 = Date.parse('2030-01-01T09:15:00Z');
    // Sub-millisecond feed times are kept as whole milliseconds (PostgreSQL's bigint refused them).
    for (let i = 0; i < 40; i++)
      broker.tick('INFY', 1500 + i, { timestamp: t0 + i * 1000 + 0.4, volume: i + 1 });
    const stored = await waitFor(
      () => metricValue(srv.url, srv.adminKey, 'syncbridge_tick_buffer_rows'),
      (n) => n === 0,
      'the tick buffer to be written',
    );
    expect(stored).toBe(0);
    const flushes =
      (await metricValue(srv.url, srv.adminKey, 'syncbridge_tick_flush_duration_seconds_count'))! -
      flushesBefore;
    expect(flushes).toBeGreaterThan(0);
    expect(flushes).toBeLessThan(20);

    const all = await admin('GET', '/v1/connectors/nse/history/INFY?limit=1000');
    expect(all.status).toBe(200);
    expect(all.body.ticks.map((t: { price: number }) => t.price)).toEqual(
      Array.from({ length: 40 }, (_, i) => 1500 + i),
    );
    const range = await admin(
      'GET',
      `/v1/connectors/nse/history/INFY?from=${new Date(t0 + 10_000).toISOString()}&to=${t0 + 15_000}`,
    );
    expect(range.body.ticks.map((t: { price: number }) => t.price)).toEqual([1510, 1511, 1512, 1513, 1514]);
    const lastSeq = all.body.ticks.at(-1).seq;
    expect((await admin('DELETE', `/v1/connectors/nse/subscriptions/${sub.body.id}`)).status).toBe(204);

    // After a restart, history comes from the store alone, and the topic's seqs carry on.
    const storage = srv.storage;
    await srv.close({ keepData: true });
    await start(storage);
    const after = await admin('GET', '/v1/connectors/nse/history/INFY?order=desc&limit=3');
    expect(after.body.ticks.map((t: { price: number }) => t.price)).toEqual([1539, 1538, 1537]);
    expect(after.body.ticks[0]).toMatchObject({ symbol: 'INFY', volume: 40, ts: t0 + 39_000 });
    const again = await admin('POST', '/v1/connectors/nse/subscriptions', { symbols: ['INFY'] });
    await broker.waitForSubscribed(['INFY']);
    broker.tick('INFY', 1600);
    const fresh = await waitFor(
      async () => (await admin('GET', '/v1/connectors/nse/latest/INFY')).body,
      (b) => b?.tick?.price === 1600,
      'a tick after the restart',
    );
    expect(fresh.tick.seq).toBeGreaterThan(lastSeq);
    expect((await admin('DELETE', `/v1/connectors/nse/subscriptions/${again.body.id}`)).status).toBe(204);
  });
});
