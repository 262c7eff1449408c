/**
 * The market-data example in one command:
 *
 *   node --import tsx examples/market-data-feed/index.ts
 *
 * Starts the simulated broker feed and a syncbridge server in this process (temporary SQLite data dir)
 * whose config points a `ws-feed` connector named `nse` at the broker, runs the walkthrough (feed.ts),
 * prints its transcript, and removes everything. Exits 0 when it went as described, 1 otherwise (or
 * after 20 s).
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig, type SyncbridgeServer, startServer } from '@syncbridge/server';
import { brokerFeedSpec, type SimulatedBroker, startSimulatedBroker } from './broker.ts';
import { runMarketDataExample } from './feed.ts';

const print = (line: string) => process.stdout.write(`${line}\n`);
const timer = setTimeout(() => {
  process.stderr.write('market-data example: no result within 20 s\n');
  process.exit(1);
}, 20_000);

let broker: SimulatedBroker | null = null;
let server: SyncbridgeServer | null = null;
const dataDir = mkdtempSync(join(tmpdir(), 'syncbridge-market-'));
let code = 0;
try {
  const token = randomBytes(12).toString('hex');
  broker = await startSimulatedBroker({ token });
  print(`simulated broker on ${broker.url}`);
  const adminKey = `sb_admin_${randomBytes(16).toString('hex')}`;
  server = await startServer(
    loadConfig({
      env: {},
      overrides: {
        port: 0,
        dataDir,
        adminKey,
        logLevel: 'warn',
        connectors: { instances: [brokerFeedSpec({ name: 'nse', tenant: 'demo', url: broker.url, token })] },
      },
    }),
  );
  print(`syncbridge on ${server.url} with feed connector nse`);
  await runMarketDataExample({ url: server.url, adminKey, tenant: 'demo', feed: 'nse', broker, log: print });
  print('ok');
} catch (err) {
  process.stderr.write(`market-data example failed: ${(err as Error).message}\n`);
  code = 1;
} finally {
  await server?.close();
  await broker?.close();
  rmSync(dataDir, { recursive: true, force: true });
  clearTimeout(timer);
}
process.exit(code);
