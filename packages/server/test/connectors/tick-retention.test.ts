/**
 * Tick retention on every store: stored ticks older than `connectors.tickRetentionDays` are deleted at
 * start and then on every pass, newer ones stay (history still answers with them), the count shows in
 * `/metrics`, and 0 keeps every tick.
 */
import { afterAll, describe, expect, it } from 'vitest';
import {
  brokerFeedSpec,
  type SimulatedBroker,
  startSimulatedBroker,
} from '../../../../examples/market-data-feed/broker.ts';
import type { ConnectorsSection } from '../../src/connectors/config.ts';
import {
  createTestStorage,
  type StoreKind,
  startTestServer,
  storeKinds,
  type TestServer,
} from '../helpers/server.ts';
import { adminRest, metricValue, waitFor } from './support.ts';

const kinds = await storeKinds();
const TOKEN = 'broker-secret-token';
const DAY = 86_400_000;

describe.each(kinds)('tick retention (%s)', (kind: StoreKind) => {
  const storage = createTestStorage(kind);
  let broker: SimulatedBroker;
  let srv: TestServer | null = null;
  afterAll(async () => {
    await srv?.close({ keepData: true });
    await broker?.close();
    await storage.cleanup();
  });

  async function start(connectors: Partial<ConnectorsSection>): Promise<ReturnType<typeof adminRest>> {
    srv = await startTestServer(
      kind,
      {
        connectors: {
          historySize: 0, // history answers come from the store alone
          tickFlushMs: 20,
          ...connectors,
          instances: [brokerFeedSpec({ name: 'nse', tenant: 'acme', url: broker.url, token: TOKEN })],
        },
      },
      storage,
    );
    return adminRest(srv.url, srv.adminKey, 'acme');
  }

  const storedPrices = async (admin: ReturnType<typeof adminRest>) =>
    (
      (await admin('GET', '/v1/connectors/nse/history/TCS?limit=100&order=asc')).body.ticks as {
        price: number;
      }[]
    ).map((t) => t.price);

  it('keeps every tick with a retention of 0, then deletes those older than the retention', async () => {
    broker = await startSimulatedBroker({ token: TOKEN });
    let admin = await start({ tickRetentionDays: 0 });
    await waitFor(
      () => broker.connections(),
      (n) => n === 1,
      'the feed to connect',
    );
    expect((await admin('POST', '/v1/connectors/nse/subscriptions', { symbols: ['TCS'] })).status).toBe(201);
    await broker.waitForSubscribed(['TCS']);
    const now = Date.now();
    broker.tick('TCS', 3400, { timestamp: now - 3 * DAY });
    broker.tick('TCS', 3410, { timestamp: now - 2 * DAY });
    broker.tick('TCS', 3420, { timestamp: now - DAY / 2 });
    broker.tick('TCS', 3430, { timestamp: now });
    await waitFor(
      () => storedPrices(admin),
      (p) => p.length === 4,
      'four stored ticks',
    );

    // A retention of 1 day: the pass at start deletes the two ticks older than a day.
    await srv!.close({ keepData: true });
    admin = await start({ tickRetentionDays: 1, tickPruneIntervalMs: 200 });
    const kept = await waitFor(
      () => storedPrices(admin),
      (p) => p.length === 2,
      'the old ticks to go',
    );
    expect(kept).toEqual([3420, 3430]);
    expect(await metricValue(srv!.url, srv!.adminKey, 'syncbridge_ticks_pruned_total')).toBe(2);

    // Later passes take ticks as they age past the retention, and leave fresh ones alone.
    await waitFor(
      () => broker.connections(),
      (n) => n >= 1,
      'the feed to reconnect',
    );
    await broker.waitForSubscribed(['TCS']);
    broker.tick('TCS', 3440, { timestamp: Date.now() - 5 * DAY });
    broker.tick('TCS', 3450);
    await waitFor(
      () => metricValue(srv!.url, srv!.adminKey, 'syncbridge_ticks_pruned_total'),
      (n) => n === 3,
      'the aged tick to go on a later pass',
    );
    expect(await storedPrices(admin)).toEqual([3420, 3430, 3450]);
  });
});
