/** The webhook ledger conformance suite on SQLite (a fresh file) and PostgreSQL (a fresh schema). */
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { describe } from 'vitest';
import { PostgresStore } from '../../src/store/postgres/postgres-store.ts';
import { SqliteStore } from '../../src/store/sqlite/sqlite-store.ts';
import { postgresAvailable, redactUrl, requireService } from '../helpers/services.ts';
import { runLedgerConformance } from './ledger-conformance.ts';

const url = process.env.SYNCBRIDGE_TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const available = requireService(`PostgreSQL at ${redactUrl(url)}`, await postgresAvailable(url));

runLedgerConformance('sqlite', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'syncbridge-ledger-'));
  const store = new SqliteStore({ file: join(dir, 'syncbridge.db') });
  await store.migrate();
  return {
    store: store.webhooks,
    cleanup: async () => {
      await store.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
});

describe.skipIf(!available)('PostgreSQL', () => {
  runLedgerConformance('postgres', async () => {
    const schema = `sb_test_${randomBytes(6).toString('hex')}`;
    const store = new PostgresStore({ connectionString: url, schema, poolSize: 4 });
    await store.migrate();
    return {
      store: store.webhooks,
      cleanup: async () => {
        await store.close();
        const client = new pg.Client({ connectionString: url });
        await client.connect();
        try {
          await client.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
        } finally {
          await client.end();
        }
      },
    };
  });
});
