/**
 * The open-banking example in one command:
 *
 *   node --import tsx examples/open-banking-pull/index.ts
 *
 * Starts the simulated provider API and a syncbridge server in this process (temporary SQLite data
 * dir) with an inbound webhook source `powens` for the provider's webhooks and the provider's local
 * address allowed, runs the walkthrough (sync.ts), prints its transcript and removes everything. Exits
 * 0 when it went as described, 1 otherwise (or after 20 s).
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig, type SyncbridgeServer, startServer } from '@syncbridge/server';
import { type SimulatedProvider, startSimulatedProvider } from './provider.ts';
import { runOpenBankingExample } from './sync.ts';

const print = (line: string) => process.stdout.write(`${line}\n`);
const timer = setTimeout(() => {
  process.stderr.write('open-banking example: no result within 20 s\n');
  process.exit(1);
}, 20_000);

let provider: SimulatedProvider | null = null;
let server: SyncbridgeServer | null = null;
const dataDir = mkdtempSync(join(tmpdir(), 'syncbridge-banking-'));
let code = 0;
try {
  const providerApiKey = randomBytes(12).toString('hex');
  const webhookSecret = randomBytes(16).toString('hex');
  provider = await startSimulatedProvider({ apiKey: providerApiKey });
  print(`simulated provider on ${provider.url}`);
  const adminKey = `sb_admin_${randomBytes(16).toString('hex')}`;
  server = await startServer(
    loadConfig({
      env: {},
      overrides: {
        port: 0,
        dataDir,
        adminKey,
        logLevel: 'error',
        webhookAllowPrivate: ['127.0.0.1/32'],
        inbound: {
          powens: {
            tenant: 'demo',
            platform: 'powens',
            scheme: 'hmac',
            secret: webhookSecret,
            types: { 'connection.synced': 'powens.synced' },
          },
        },
      },
    }),
  );
  print(`syncbridge on ${server.url}`);
  await runOpenBankingExample({
    url: server.url,
    adminKey,
    tenant: 'demo',
    provider,
    providerApiKey,
    webhookSecret,
    log: print,
  });
  print('ok');
} catch (err) {
  process.stderr.write(`open-banking example failed: ${(err as Error).message}\n`);
  code = 1;
} finally {
  await server?.close();
  await provider?.close();
  rmSync(dataDir, { recursive: true, force: true });
  clearTimeout(timer);
}
process.exit(code);
