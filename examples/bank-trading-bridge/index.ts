/**
 * The bank-trading bridge in one command:
 *
 *   node --import tsx examples/bank-trading-bridge/index.ts
 *
 * Starts a syncbridge server in this process (temporary SQLite data dir) whose config lets webhooks
 * reach this machine's platforms and takes BFC's webhooks in (inbound source `bfc`), runs the walkthrough
 * (bridge.ts) with two local platform services, prints its transcript and removes everything. Exits 0
 * when it went as described, 1 otherwise (or after 20 s).
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig, type SyncbridgeServer, startServer } from '@syncbridge/server';
import { bridgeConfig, runBankTradingBridge } from './bridge.ts';

const print = (line: string) => process.stdout.write(`${line}\n`);
const timer = setTimeout(() => {
  process.stderr.write('bank-trading bridge: no result within 20 s\n');
  process.exit(1);
}, 20_000);

let server: SyncbridgeServer | null = null;
const dataDir = mkdtempSync(join(tmpdir(), 'syncbridge-bridge-'));
let code = 0;
try {
  const adminKey = `sb_admin_${randomBytes(16).toString('hex')}`;
  const bfcInboundSecret = randomBytes(16).toString('hex');
  server = await startServer(
    loadConfig({
      env: {},
      overrides: { port: 0, dataDir, adminKey, logLevel: 'error', ...bridgeConfig('bank', bfcInboundSecret) },
    }),
  );
  print(`syncbridge on ${server.url}`);
  const { token: vyomoToken } = await server.tokens.mint({
    tenant: 'bank',
    user: 'vyomo-api',
    platform: 'vyomo',
  });
  const { missed, bfc } = await runBankTradingBridge({
    url: server.url,
    adminKey,
    tenant: 'bank',
    vyomoToken,
    bfcInboundSecret,
    log: print,
  });
  const seqs = bfc.received.slice(1).map((e) => e.seq);
  if (JSON.stringify(seqs) !== JSON.stringify(missed)) {
    throw new Error(`bfc caught up with seqs ${seqs.join(', ')}, expected ${missed.join(', ')}`);
  }
  print('ok');
} catch (err) {
  process.stderr.write(`bank-trading bridge failed: ${(err as Error).message}\n`);
  code = 1;
} finally {
  await server?.close();
  rmSync(dataDir, { recursive: true, force: true });
  clearTimeout(timer);
}
process.exit(code);
