/**
 * The market-data walkthrough against a syncbridge server whose config points a `ws-feed` connector at
 * the simulated broker: subscribe symbols over REST, a trading screen joins `topic:<feed>` and gets the
 * latest values at once, then live ticks; the broker drops the feed and syncbridge reconnects and
 * subscribes again; depth, history and the feed's health over REST; unsubscribe.
 */
import { SyncClient, type Tick } from '@syncbridge/client';
import type { SimulatedBroker } from './broker.ts';

export interface MarketDataOptions {
  url: string;
  adminKey: string;
  tenant: string;
  /** The feed connector's name (and topic). */
  feed: string;
  broker: SimulatedBroker;
  log: (line: string) => void;
}

export interface MarketDataResult {
  joined: Tick[];
  live: Tick[];
  history: Tick[];
  reconnects: number;
}

const SYMBOLS = ['RELIANCE', 'TCS', 'INFY'];

async function until<T>(
  read: () => Promise<T> | T,
  ok: (v: T) => boolean,
  what: string,
  ms = 5000,
): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await read();
    if (ok(v)) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

export async function runMarketDataExample(o: MarketDataOptions): Promise<MarketDataResult> {
  const admin = async (method: string, path: string, body?: unknown) => {
    const res = await fetch(`${o.url}${path}`, {
      method,
      headers: {
        'x-api-key': o.adminKey,
        'x-tenant': o.tenant,
        ...(body === undefined ? {} : { 'content-type': 'application/json' }),
      },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    if (!res.ok) throw new Error(`${method} ${path}: HTTP ${res.status} ${text}`);
    return text ? JSON.parse(text) : null;
  };
  const feed = `/v1/connectors/${o.feed}`;

  // 1. Subscribe symbols upstream (scenario 3: POST /api/v1/realtime/subscribe).
  const sub = await admin('POST', `${feed}/subscriptions`, { symbols: SYMBOLS });
  await o.broker.waitForSubscribed(SYMBOLS);
  o.log(`subscribed ${sub.symbols.join(', ')} on the broker feed`);
  o.broker.tick('RELIANCE', 2500.5, { volume: 1000 });
  o.broker.tick('TCS', 3400.25, { volume: 200 });
  o.broker.tick('INFY', 1500, { volume: 300 });
  o.broker.depth('RELIANCE', [[2500.4, 10]], [[2500.6, 12]]);
  await until(
    () => admin('GET', `${feed}/latest`),
    (b) => b.ticks.length === 3,
    'the first ticks',
  );

  // 2. A trading screen joins the topic: the latest value of each symbol at once, then live ticks.
  const token = (
    await fetch(`${o.url}/v1/auth/token`, {
      method: 'POST',
      headers: { 'x-api-key': o.adminKey, 'content-type': 'application/json' },
      body: JSON.stringify({ tenant: o.tenant, user: 'trader' }),
    }).then((r) => r.json() as Promise<{ token: string }>)
  ).token;
  const screen = new SyncClient({ url: `${o.url.replace(/^http/, 'ws')}/v1/realtime`, token });
  const prices = screen.topic(o.feed);
  const live: Tick[] = [];
  prices.on('tick', (t) => {
    if (!t.fromSnapshot) live.push(t);
  });
  await prices.whenReady();
  const joined = prices.symbols().map((symbol) => prices.latest(symbol)!);
  const depth = prices.depth('RELIANCE')!;
  o.log(`trader joined topic:${o.feed}: ${joined.map((t) => `${t.symbol} ${t.price}`).join(', ')}`);
  o.log(
    `  depth ${depth.symbol}: bid ${depth.bids[0]![0]} x ${depth.bids[0]![1]}, ask ${depth.asks[0]![0]} x ${depth.asks[0]![1]}`,
  );

  const liveTicks = () => live;
  o.broker.tick('RELIANCE', 2501);
  await until(liveTicks, (t) => t.length === 1, 'a live tick');
  o.log(`trader <- tick RELIANCE ${liveTicks()[0]!.price}`);

  // 3. The broker drops the feed: syncbridge reconnects with backoff and subscribes every symbol again.
  const accepted = o.broker.accepted;
  o.broker.drop();
  await o.broker.waitForConnections(accepted + 1);
  await o.broker.waitForSubscribed(SYMBOLS);
  const status = await until(
    () => admin('GET', feed),
    (s) => s.state === 'running' && s.details.connected,
    'the feed',
  );
  o.log(`broker dropped the feed: reconnected and subscribed ${o.broker.subscribed().join(', ')} again`);
  o.broker.tick('RELIANCE', 2502.75);
  await until(liveTicks, (t) => t.length === 2, 'a tick after the reconnect');
  o.log(`trader <- tick RELIANCE ${liveTicks()[1]!.price} (the screen never noticed the outage)`);

  // 4. Depth, history and health over REST (scenario 3: /depth/{symbol}, /symbols/active, /health).
  const book = await admin('GET', `${feed}/depth/RELIANCE`);
  o.log(`GET depth/RELIANCE: ${book.bids.length} bid level(s), ${book.asks.length} ask level(s)`);
  const active = await admin('GET', `${feed}/symbols`);
  o.log(
    `GET symbols: ${active.symbols
      .filter((s: { active: boolean }) => s.active)
      .map((s: { symbol: string }) => s.symbol)
      .join(', ')} active`,
  );
  const history = (await admin('GET', `${feed}/history/RELIANCE?limit=10`)).ticks as Tick[];
  o.log(`GET history/RELIANCE: ${history.map((t) => t.price).join(' -> ')}`);
  o.log(
    `feed ${o.feed}: ${status.state}, ${status.metrics.ticks_total} ticks, reconnected ${status.metrics.reconnects_total} time(s)`,
  );

  // 5. Unsubscribe (scenario 3: DELETE /api/v1/realtime/subscribe/{id}).
  await admin('DELETE', `${feed}/subscriptions/${sub.id}`);
  await until(
    () => o.broker.subscribed(),
    (s) => s.length === 0,
    'the unsubscribe',
  );
  o.log('unsubscribed: the broker feed carries no symbol any more');
  await screen.close();
  return { joined, live: liveTicks(), history, reconnects: status.metrics.reconnects_total };
}
