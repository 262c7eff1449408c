/**
 * The one-call commit on PostgreSQL checks each new write's idempotency key with an index lookup of
 * that key, not a read of every result its tenant stored: otherwise each write costs more than the
 * one before, and a lone writer slows down as its tenant's results accumulate. What it reads is taken
 * from PostgreSQL's own index statistics (index entries read per lookup), so the check is exact and
 * independent of the machine's speed.
 */
import pg from 'pg';
import { afterEach, describe, expect, it } from 'vitest';
import { startTestServer, storeKinds, type TestServer } from '../helpers/server.ts';
import { TestWsClient } from '../helpers/ws-client.ts';

const hasPostgres = (await storeKinds()).includes('postgres');

interface IndexReads {
  scans: number;
  read: number;
}

async function resultIndexReads(admin: pg.Client, schema: string): Promise<IndexReads> {
  const { rows } = await admin.query<{ idx_scan: string; idx_tup_read: string }>(
    `SELECT idx_scan, idx_tup_read FROM pg_stat_user_indexes
     WHERE schemaname = $1 AND indexrelname = 'mutation_results_pkey'`,
    [schema],
  );
  return { scans: Number(rows[0]?.idx_scan ?? 0), read: Number(rows[0]?.idx_tup_read ?? 0) };
}

describe.skipIf(!hasPostgres)('one-call commit idempotency check (postgres)', () => {
  let server: TestServer | null = null;
  let admin: pg.Client | null = null;
  afterEach(async () => {
    await admin?.end();
    await server?.close();
    server = null;
    admin = null;
  });

  it('reads a bounded number of stored results per write, however many the tenant has', async () => {
    server = await startTestServer('postgres');
    const schema = server.storage.config.databaseSchema!;
    admin = new pg.Client({ connectionString: server.storage.config.databaseUrl });
    await admin.connect();
    const client = await TestWsClient.connect(server.wsUrl, await server.token('acme', 'alice'));
    const write = async (n: number) => {
      const reply = await client.request({
        type: 'mutate',
        mutations: [{ mid: `m-${n}`, collection: 'items', id: `i${n % 10}`, op: 'put', data: { n } }],
      });
      expect(reply.type).toBe('results');
      expect((reply.results as Array<{ status: string }>)[0]!.status).toBe('applied');
    };
    // Enough stored results that reading them all per write would show.
    for (let n = 0; n < 300; n++) await write(n);
    const before = await settledReads(admin, schema, 300);
    for (let n = 300; n < 400; n++) await write(n);
    const after = await settledReads(admin, schema, before.scans + 100);
    await client.close();

    const scans = after.scans - before.scans;
    const perScan = (after.read - before.read) / scans;
    // A lookup of absent keys reads no entry; reading the tenant's results would read about 350 each.
    expect(scans).toBeGreaterThanOrEqual(100);
    expect(perScan).toBeLessThan(3);
  });
});

/** PostgreSQL publishes index statistics asynchronously: waits until `scans` lookups are counted. */
async function settledReads(admin: pg.Client, schema: string, scans: number): Promise<IndexReads> {
  const deadline = Date.now() + 15_000;
  for (;;) {
    const reads = await resultIndexReads(admin, schema);
    if (reads.scans >= scans || Date.now() > deadline) return reads;
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}
