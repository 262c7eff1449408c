/**
 * `client.topic()` against a real server whose connector publishes market ticks: the latest value of
 * each symbol on join, live ticks and depth, symbol filters, a fresh snapshot after the server restarts
 * (topics have no resume), and leaving the topic.
 */
import { afterAll, describe, expect, it } from 'vitest';
import type { Connector, ConnectorContext, ConnectorHealth } from '../../server/src/connectors/types.ts';
import { createTestStorage, startTestServer, type TestServer } from '../../server/test/helpers/server.ts';
import { SyncClient, type Tick } from '../src/index.ts';
import { FAST_BACKOFF, waitFor } from './helpers.ts';

/** A feed the test drives: `publish` is a tick as an upstream market would send it. */
class TestFeed implements Connector {
  readonly kind = 'test-feed';
  readonly tenant = 'desk';
  readonly name = 'fx';
  private ctx: ConnectorContext | null = null;

  async start(ctx: ConnectorContext): Promise<void> {
    this.ctx = ctx;
    await ctx.topics.declare('prices');
  }
  tick(symbol: string, price: number): Tick {
    return this.ctx!.topics.tick('prices', { symbol, price });
  }
  depth(symbol: string, bid: number, ask: number): void {
    this.ctx!.topics.depth('prices', { symbol, bids: [[bid, 1_000_000]], asks: [[ask, 2_000_000]] });
  }
  health(): ConnectorHealth {
    return {
      state: this.ctx ? 'running' : 'stopped',
      lastSuccessAt: null,
      lastError: null,
      stalenessMs: null,
      stale: false,
    };
  }
  metrics(): Record<string, number> {
    return {};
  }
  stop(): void {
    this.ctx = null;
  }
}

describe('topic streams in the client', () => {
  const storage = createTestStorage('sqlite');
  const clients: SyncClient[] = [];
  let srv: TestServer;
  let feed: TestFeed;
  afterAll(async () => {
    await Promise.all(clients.map((c) => c.close()));
    await srv?.close();
  });

  async function start(port = 0): Promise<void> {
    feed = new TestFeed();
    srv = await startTestServer('sqlite', { port }, storage, { connectors: [feed] });
  }

  async function client(): Promise<SyncClient> {
    const token = await srv.token('desk', 'trader');
    const c = new SyncClient({ url: srv.wsUrl, token, backoff: FAST_BACKOFF });
    clients.push(c);
    return c;
  }

  it('gives each symbol’s latest value on join, then live ticks and depth of the symbols asked for', async () => {
    await start();
    feed.tick('EURUSD', 1.081);
    feed.tick('EURUSD', 1.0815);
    feed.tick('GBPUSD', 1.262);
    const c = await client();
    const all = c.topic('prices');
    const eur = c.topic('prices', { symbols: ['EURUSD'] });
    const seen: Tick[] = [];
    eur.on('tick', (t) => seen.push(t));
    await Promise.all([all.whenReady(), eur.whenReady()]);
    expect(all.symbols()).toEqual(['EURUSD', 'GBPUSD']);
    expect(eur.symbols()).toEqual(['EURUSD']);
    expect(eur.latest('EURUSD')?.price).toBe(1.0815);
    expect(seen).toEqual([expect.objectContaining({ symbol: 'EURUSD', price: 1.0815, fromSnapshot: true })]);

    feed.tick('GBPUSD', 1.263);
    const live = feed.tick('EURUSD', 1.082);
    feed.depth('EURUSD', 1.0819, 1.0821);
    await waitFor(() => eur.depth('EURUSD') !== undefined, 'the depth update');
    expect(eur.latest('EURUSD')).toEqual(live);
    expect(eur.depth('EURUSD')).toMatchObject({ bids: [[1.0819, 1_000_000]], asks: [[1.0821, 2_000_000]] });
    expect(seen.map((t) => t.price)).toEqual([1.0815, 1.082]);
    await waitFor(() => all.latest('GBPUSD')?.price === 1.263, 'the GBPUSD tick on the unfiltered stream');
    expect(eur.latest('GBPUSD')).toBeUndefined();
  });

  it('refills the latest values from a fresh snapshot after the server restarts', async () => {
    const c = await client();
    const prices = c.topic('prices', { symbols: ['EURUSD'] });
    let snapshots = 0;
    prices.on('snapshot', () => snapshots++);
    await prices.whenReady();
    expect(snapshots).toBe(1);

    const port = Number(new URL(srv.url).port);
    await srv.close({ keepData: true });
    await start(port);
    // Published while the client is still away: only the snapshot can bring it.
    feed.tick('EURUSD', 1.09);
    await waitFor(() => snapshots === 2, 'a second snapshot after the reconnect', 15_000);
    expect(prices.latest('EURUSD')?.price).toBe(1.09);
    feed.tick('EURUSD', 1.091);
    await waitFor(() => prices.latest('EURUSD')?.price === 1.091, 'live ticks after the reconnect');
  });

  it('stops delivering once closed, and reports a topic that does not exist', async () => {
    const c = await client();
    const prices = c.topic('prices');
    await prices.whenReady();
    expect(prices.latest('GBPUSD')).toBeUndefined();
    prices.close();
    const probe = c.topic('prices', { symbols: ['GBPUSD'] });
    await probe.whenReady();
    feed.tick('GBPUSD', 1.27);
    await waitFor(() => probe.latest('GBPUSD')?.price === 1.27, 'the tick on a stream still open');
    // The closed stream left the channel: the tick did not reach it.
    expect(prices.latest('GBPUSD')).toBeUndefined();

    const errors: string[] = [];
    c.on('error', (e) => errors.push(`${e.code}: ${e.message}`));
    c.topic('no-such-feed');
    await waitFor(() => errors.length > 0, 'the error for an unknown topic');
    expect(errors[0]).toMatch(/^NOT_FOUND: subscribe topic:no-such-feed/);
  });
});
