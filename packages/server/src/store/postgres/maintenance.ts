/**
 * PostgreSQL side of migrations, collection settings, maintenance and tenant-wide reads (the
 * Maintenance port, replay, metrics): applying migrations under an advisory lock, compacting record history, forgetting old idempotency results, listing tenants and their collections,
 * counting open conflicts. It must never delete a record's current version.
 */
import type { CollectionSettings } from '@syncbridge/protocol';
import type { RetentionPolicy } from '../types.ts';
import type { PostgresParts } from './accounts.ts';
import { POSTGRES_MIGRATIONS } from './migrations.ts';
import { query, quoteIdent } from './pool.ts';

/** Key of the advisory lock `migrate` holds, so nodes starting at once apply each migration once. */
const MIGRATION_LOCK = 0x53796e63; // "Sync"

import { translateError } from './sql.ts';

export class PostgresMaintenance {
  constructor(private readonly parts: PostgresParts) {}

  async migrate(schema: string | undefined, progress?: (message: string) => void): Promise<number> {
    let applied = 0;
    // One transaction per migration, each under the advisory lock: a node that waited for the lock
    // re-reads schema_migrations and finds the migration another node just applied.
    for (;;) {
      const done = await this.parts.inTransaction('BEGIN', async (client) => {
        await query(client, 'SELECT pg_advisory_xact_lock($1::bigint)', [MIGRATION_LOCK]);
        if (schema) await query(client, `CREATE SCHEMA IF NOT EXISTS ${quoteIdent(schema)}`);
        await query(
          client,
          `CREATE TABLE IF NOT EXISTS schema_migrations (
             version integer PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())`,
        );
        const rows = await query<{ version: number }>(client, 'SELECT version FROM schema_migrations');
        const versions = new Set(rows.map((row) => row.version));
        const next = POSTGRES_MIGRATIONS.find((m) => !versions.has(m.version));
        if (!next) return null;
        await query(client, next.sql);
        await query(client, 'INSERT INTO schema_migrations (version, name) VALUES ($1, $2)', [
          next.version,
          next.name,
        ]);
        return next;
      });
      if (!done) return applied;
      applied += 1;
      progress?.(`applied migration ${done.version}: ${done.name}`);
    }
  }

  async getCollections(tenant: string): Promise<Map<string, CollectionSettings>> {
    const rows = await query<{ name: string; settings: string }>(
      this.parts.pool,
      'SELECT name, settings FROM collections WHERE tenant = $1 ORDER BY name',
      [tenant],
    );
    return new Map(rows.map((row) => [row.name, JSON.parse(row.settings) as CollectionSettings]));
  }

  async putCollection(tenant: string, name: string, settings: CollectionSettings): Promise<void> {
    // The version first: it takes the tenant's head row lock in the order commits take it, so a commit
    // that locks the tenant after this change has committed reads the new version (TenantLock).
    await this.parts.inTransaction('BEGIN', async (client) => {
      await query(
        client,
        `INSERT INTO tenant_heads (tenant, seq, collections_version) VALUES ($1, 0, 1)
         ON CONFLICT (tenant) DO UPDATE SET collections_version = tenant_heads.collections_version + 1`,
        [tenant],
      );
      await query(
        client,
        `INSERT INTO collections (tenant, name, settings) VALUES ($1, $2, $3::jsonb)
         ON CONFLICT (tenant, name) DO UPDATE SET settings = excluded.settings`,
        [tenant, name, JSON.stringify(settings)],
      );
    });
  }

  async compactHistory(tenant: string, collection: string, policy: RetentionPolicy): Promise<number> {
    const result = await this.parts.pool
      .query(
        `DELETE FROM events e USING records r
         WHERE e.tenant = $1 AND e.kind = 'record' AND e.collection = $2
           AND r.tenant = e.tenant AND r.collection = e.collection AND r.id = e.record_id
           AND e.version < r.version
           AND (e.version <= r.version - $3 OR e.ts < $4)`,
        [tenant, collection, policy.keepVersions ?? Number.MAX_SAFE_INTEGER, policy.before ?? ''],
      )
      .catch((err: unknown) => {
        throw translateError(err);
      });
    return result.rowCount ?? 0;
  }

  async pruneResults(before: string): Promise<number> {
    const result = await this.parts.pool
      .query('DELETE FROM mutation_results WHERE created_at < $1::timestamptz', [before])
      .catch((err: unknown) => {
        throw translateError(err);
      });
    return result.rowCount ?? 0;
  }

  async listTenants(): Promise<string[]> {
    const rows = await query<{ tenant: string }>(
      this.parts.pool,
      'SELECT tenant FROM tenant_heads ORDER BY tenant',
    );
    return rows.map((r) => r.tenant);
  }

  async listRecordCollections(tenant: string): Promise<string[]> {
    const rows = await query<{ collection: string }>(
      this.parts.pool,
      'SELECT DISTINCT collection FROM records WHERE tenant = $1 ORDER BY collection',
      [tenant],
    );
    return rows.map((r) => r.collection);
  }

  async countOpenConflicts(): Promise<{ tenant: string; count: number }[]> {
    const rows = await query<{ tenant: string; count: string }>(
      this.parts.pool,
      "SELECT tenant, COUNT(*) AS count FROM conflicts WHERE status = 'open' GROUP BY tenant",
    );
    return rows.map((r) => ({ tenant: r.tenant, count: Number(r.count) }));
  }
}
