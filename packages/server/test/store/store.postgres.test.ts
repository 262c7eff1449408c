/**
 * The Store conformance suite on PostgreSQL, in a fresh schema per run (dropped afterwards), so runs
 * never collide. Needs SYNCBRIDGE_TEST_DATABASE_URL (default: local trust-auth server); when it is
 * unreachable the suite fails under CI=true and is skipped with a warning otherwise.
 */
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { describe, expect, it, vi } from 'vitest';
import { SyncError } from '../../src/core/errors.ts';
import { POSTGRES_MIGRATIONS } from '../../src/store/postgres/migrations.ts';
import { PostgresStore } from '../../src/store/postgres/postgres-store.ts';
import { postgresAvailable, redactUrl, requireService } from '../helpers/services.ts';
import { runStoreConformance, type StoreFixture } from './store-conformance.ts';
import { bump, runTenantCommitConformance } from './tenant-commit-conformance.ts';

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

const postgresFixture = async (): Promise<StoreFixture> => {
  const schema = `sb_test_${randomBytes(6).toString('hex')}`;
  const open = (options: { busyTimeoutMs?: number } = {}) =>
    new PostgresStore({ connectionString: url, schema, poolSize: 8, ...options });
  return {
    store: open(),
    reopen: async (options) => open(options),
    // Another node's transaction holding the tenant's head row lock, as a commit does.
    holdWriteLock: async (tenant) => {
      const other = new pg.Client({ connectionString: url, options: `-c search_path="${schema}"` });
      await other.connect();
      await other.query('BEGIN');
      await other.query('INSERT INTO tenant_heads (tenant, seq) VALUES ($1, 0) ON CONFLICT DO NOTHING', [
        tenant,
      ]);
      await other.query('SELECT seq FROM tenant_heads WHERE tenant = $1 FOR UPDATE', [tenant]);
      return async () => {
        await other.query('ROLLBACK');
        await other.end();
      };
    },
    full: 'a full disk cannot be staged on a shared PostgreSQL server; disk_full (53100) is translated by code in sql.ts',
    cleanup: () => dropSchema(schema),
  };
};

describe.skipIf(!available)('PostgreSQL store', () => {
  runStoreConformance('postgres', postgresFixture);
  runTenantCommitConformance('postgres', postgresFixture);
});

describe.skipIf(!available)('PostgreSQL store specifics', () => {
  it('several nodes migrating one fresh schema at once apply each migration exactly once', async () => {
    const schema = `sb_test_${randomBytes(6).toString('hex')}`;
    const stores = Array.from({ length: 4 }, () => new PostgresStore({ connectionString: url, schema }));
    try {
      const applied = await Promise.all(stores.map((s) => s.migrate()));
      // Each migration is applied by exactly one of the nodes (which one may differ per migration).
      expect(applied.reduce((a, b) => a + b, 0)).toBe(POSTGRES_MIGRATIONS.length);
      expect(await stores[0].migrate()).toBe(0);
    } finally {
      await Promise.all(stores.map((s) => s.close()));
      await dropSchema(schema);
    }
  });

  it('connection failures surface as SyncError UNAVAILABLE; other database errors pass through', async () => {
    const down = new PostgresStore({ connectionString: 'postgres://postgres@127.0.0.1:1/test' });
    try {
      for (const attempt of [
        () => down.ping(),
        () => down.headSeq('t'),
        () => down.transaction(async () => 1),
      ]) {
        const err = await attempt().catch((e: unknown) => e);
        expect(err).toBeInstanceOf(SyncError);
        expect(err).toMatchObject({ code: 'UNAVAILABLE', message: 'database unavailable' });
      }
    } finally {
      await down.close();
    }

    const schema = `sb_test_${randomBytes(6).toString('hex')}`;
    const store = new PostgresStore({ connectionString: url, schema });
    try {
      await store.migrate();
      const key = { id: 'dup', tenant: null, label: null, hash: 'h-dup' };
      await store.createApiKey(key);
      const err = await store.createApiKey({ ...key, hash: 'h-other' }).catch((e: unknown) => e);
      expect(err).not.toBeInstanceOf(SyncError);
      expect(err).toMatchObject({ code: '23505' });
    } finally {
      await store.close();
      await dropSchema(schema);
    }
  });

  it('a tenant this node committed last commits its next write in one statement; after another node wrote it, in a transaction', async () => {
    const schema = `sb_test_${randomBytes(6).toString('hex')}`;
    const a = new PostgresStore({ connectionString: url, schema });
    const b = new PostgresStore({ connectionString: url, schema });
    const statements = vi.spyOn(pg.Client.prototype, 'query');
    try {
      await a.migrate();
      await bump(a, 't', 'k1');
      statements.mockClear();
      expect((await bump(a, 't', 'k2')).seq).toBe(2);
      expect(statements).toHaveBeenCalledTimes(1);
      await bump(b, 't', 'k3');
      statements.mockClear();
      // One call that finds the head moved, then BEGIN, lock, result, record, write, COMMIT.
      expect((await bump(a, 't', 'k4')).seq).toBe(4);
      expect(statements).toHaveBeenCalledTimes(7);
    } finally {
      statements.mockRestore();
      await a.close();
      await b.close();
      await dropSchema(schema);
    }
  });

  it('rejects a schema name that is not a plain identifier', () => {
    expect(() => new PostgresStore({ connectionString: url, schema: 'x"; DROP' })).toThrow(/schema name/);
  });
});
