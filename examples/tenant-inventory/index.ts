/**
 * Runs the inventory example and prints its transcript:
 *
 *   SYNCBRIDGE_ADMIN_KEY=sb_admin_… node --import tsx examples/tenant-inventory/index.ts
 *   node --import tsx examples/tenant-inventory/index.ts --embedded
 *
 * The first form talks to a running server (SYNCBRIDGE_URL, default http://127.0.0.1:4025). With
 * `--embedded` it starts its own server in this process, on a temporary SQLite file, with the example's
 * plugins registered (a projection, a middleware that refuses overselling, a low-stock alert after each
 * commit), and removes it at the end. Exits 0 when the run went as described; 1 on any failure (with a
 * message on stderr) or after 20 s.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig, type SyncbridgeServer, startServer } from '@syncbridge/server';
import { runInventoryExample } from './inventory.ts';
import {
  countsAsDeltas,
  type LowStockAlert,
  lowStockAlerts,
  noNegativeStock,
  stockByProduct,
} from './plugins.ts';

const print = (line: string) => process.stdout.write(`${line}\n`);

async function main(embedded: boolean): Promise<void> {
  let url = process.env.SYNCBRIDGE_URL ?? 'http://127.0.0.1:4025';
  let adminKey = process.env.SYNCBRIDGE_ADMIN_KEY;
  let server: SyncbridgeServer | null = null;
  let dataDir: string | null = null;
  const alerts: LowStockAlert[] = [];
  try {
    if (embedded) {
      dataDir = mkdtempSync(join(tmpdir(), 'syncbridge-inventory-'));
      adminKey = `sb_admin_${randomBytes(16).toString('hex')}`;
      server = await startServer(
        loadConfig({ env: {}, overrides: { port: 0, dataDir, adminKey, logLevel: 'warn' } }),
        {
          resolvers: { counts_as_deltas: countsAsDeltas },
          middleware: [noNegativeStock, lowStockAlerts(5, (a) => alerts.push(a))],
          projections: [stockByProduct],
        },
      );
      url = server.url;
      print(`embedded server on ${url} (plugins: stock_by_product, noNegativeStock, lowStockAlerts)`);
    } else if (!adminKey) {
      throw new Error(
        'set SYNCBRIDGE_ADMIN_KEY to the admin key the server printed on its first start (or use --embedded)',
      );
    }
    let result: Awaited<ReturnType<typeof runInventoryExample>>;
    try {
      result = await runInventoryExample({ url, adminKey, log: print });
    } catch (err) {
      const cause = (err as { cause?: { code?: string } }).cause;
      if (cause?.code === 'ECONNREFUSED')
        throw new Error(`no server at ${url}: start one with npm start, or use --embedded`);
      throw err;
    }
    if (result.flushed.status !== 'conflict' || result.resolution.status !== 'applied') {
      throw new Error(
        `expected a stored conflict and its resolution, got ${result.flushed.status} / ${result.resolution.status}`,
      );
    }
    if (embedded) {
      // afterCommit runs after each commit, off the write path: give the last alert a moment.
      const deadline = Date.now() + 2000;
      while (alerts.length === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
      for (const a of alerts) print(`low stock alert (afterCommit): ${a.id} at ${a.qty}, seq ${a.seq}`);
    }
  } finally {
    await server?.close();
    if (dataDir) rmSync(dataDir, { recursive: true, force: true });
  }
}

const timer = setTimeout(() => {
  process.stderr.write('inventory example failed: no result within 20 s\n');
  process.exit(1);
}, 20_000);
try {
  await main(process.argv.includes('--embedded'));
  print('ok');
  clearTimeout(timer);
} catch (err) {
  process.stderr.write(`inventory example failed: ${(err as Error).message}\n`);
  process.exit(1);
}
