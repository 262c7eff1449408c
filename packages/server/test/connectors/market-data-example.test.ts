/**
 * examples/market-data-feed, run for real: the walkthrough against a test server (both stores) with the
 * simulated broker started here, and the example's one command as a child process.
 */
import { spawn } from 'node:child_process';
import { resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  brokerFeedSpec,
  type SimulatedBroker,
  startSimulatedBroker,
} from '../../../../examples/market-data-feed/broker.ts';
import { runMarketDataExample } from '../../../../examples/market-data-feed/feed.ts';
import { type StoreKind, startTestServer, storeKinds, type TestServer } from '../helpers/server.ts';

const ROOT = resolve(import.meta.dirname, '../../../..');
const kinds = await storeKinds();

const TRANSCRIPT = [
  'subscribed RELIANCE, TCS, INFY on the broker feed',
  'trader joined topic:nse: INFY 1500, RELIANCE 2500.5, TCS 3400.25',
  '  depth RELIANCE: bid 2500.4 x 10, ask 2500.6 x 12',
  'trader <- tick RELIANCE 2501',
  'broker dropped the feed: reconnected and subscribed INFY, RELIANCE, TCS again',
  'trader <- tick RELIANCE 2502.75 (the screen never noticed the outage)',
  'GET depth/RELIANCE: 1 bid level(s), 1 ask level(s)',
  'GET symbols: INFY, RELIANCE, TCS active',
  'GET history/RELIANCE: 2500.5 -> 2501 -> 2502.75',
  'feed nse: running, 4 ticks, reconnected 1 time(s)',
  'unsubscribed: the broker feed carries no symbol any more',
];

describe.each(kinds)('examples/market-data-feed (%s)', (kind: StoreKind) => {
  let broker: SimulatedBroker;
  let srv: TestServer;
  beforeAll(async () => {
    broker = await startSimulatedBroker({ token: 'example-token' });
    srv = await startTestServer(kind, {
      connectors: {
        instances: [brokerFeedSpec({ name: 'nse', tenant: 'demo', url: broker.url, token: 'example-token' })],
      },
    });
  });
  afterAll(async () => {
    await srv?.close();
    await broker?.close();
  });

  it('runs the walkthrough: subscribe, latest on join, live ticks through a feed drop, depth, history', async () => {
    const lines: string[] = [];
    const result = await runMarketDataExample({
      url: srv.url,
      adminKey: srv.adminKey,
      tenant: 'demo',
      feed: 'nse',
      broker,
      log: (line) => lines.push(line),
    });
    expect(lines).toEqual(TRANSCRIPT);
    expect(result.live.map((t) => t.price)).toEqual([2501, 2502.75]);
    expect(result.live[1]!.seq).toBeGreaterThan(result.live[0]!.seq);
    expect(result.reconnects).toBe(1);
  });
});

describe('examples/market-data-feed command', () => {
  it('runs with one command and exits 0', async () => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'examples/market-data-feed/index.ts'], {
      cwd: ROOT,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
    });
    child.stderr.on('data', (d: Buffer) => {
      err += d.toString();
    });
    const code = await new Promise<number | null>((res) => child.once('exit', (c) => res(c)));
    expect(code, err).toBe(0);
    const lines = out.trim().split('\n');
    expect(lines.slice(2)).toEqual([...TRANSCRIPT, 'ok']);
  });
});
