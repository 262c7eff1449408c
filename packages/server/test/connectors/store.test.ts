/** The ConnectorStore conformance suite on SQLite (its own file) and PostgreSQL (a fresh schema). */
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { describe } from 'vitest';
import { PostgresConnectorStore } from '../../src/store/postgres/connector-store.ts';
import { PostgresStore } from '../../src/store/postgres/postgres-store.ts';
import { SqliteConnectorStore } from '../../src/store/sqlite/connector-store.ts';
import { postgresAvailable, redactUrl, requireService } from '../helpers/services.ts';
import { runConnectorStoreConformance } from './store-conformance.ts';

const url = process.env.SYNCBRIDGE_TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const available = requireService(`PostgreSQL at ${redactUrl(url)}`, await postgresAvailable(url));

runConnectorStoreConformance('sqlite', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'syncbridge-connectors-'));
  const store = new SqliteConnectorStore({ file: join(dir, 'connectors.db') });
  return {
    store,
    cleanup: async () => {
      await store.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
});

describe.skipIf(!available)('PostgreSQL', () => {
  runConnectorStoreConformance('postgres', async () => {
    const schema = `sb_test_${randomBytes(6).toString('hex')}`;
    // The connector tables are migrations of the main schema.
    const main = new PostgresStore({ connectionString: url, schema, poolSize: 2 });
    await main.migrate();
    const store = new PostgresConnectorStore({ connectionString: url, schema });
    return {
      store,
      cleanup: async () => {
        await store.close();
        await main.close();
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
