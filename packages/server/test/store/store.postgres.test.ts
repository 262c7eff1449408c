/**
 * The Store conformance suite on PostgreSQL, in a fresh schema per run (dropped afterwards), so runs
 * never collide. Needs SYNCBRIDGE_TEST_DATABASE_URL (default: local trust-auth server); when it is
 * unreachable the suite fails under CI=true and is skipped with a warning otherwise.
 */
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { describe } from 'vitest';
import { PostgresStore } from '../../src/store/postgres/postgres-store.ts';
import { postgresAvailable, redactUrl, requireService } from '../helpers/services.ts';
import { runStoreConformance } from './store-conformance.ts';

const url = process.env.SYNCBRIDGE_TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const available = requireService(`PostgreSQL at ${redactUrl(url)}`, await postgresAvailable(url));

async function dropSchema(schema: string): Promise<void> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    await client.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
  } finally {
    await client.end();
  }
}

describe.skipIf(!available)('PostgreSQL store', () => {
  runStoreConformance('postgres', async () => {
    const schema = `sb_test_${randomBytes(6).toString('hex')}`;
    const open = () => new PostgresStore({ connectionString: url, schema, poolSize: 8 });
    return {
      store: open(),
      reopen: async () => open(),
      cleanup: () => dropSchema(schema),
    };
  });
});
