/**
 * SQLite side of maintenance and tenant-wide reads (the Maintenance port, replay, metrics): compacting
 * record history, forgetting old idempotency results, listing tenants and their collections, counting
 * open conflicts. It must never delete a record's current version.
 */
import type { RetentionPolicy } from '../types.ts';
import type { SqliteParts } from './accounts.ts';

export class SqliteMaintenance {
  constructor(private readonly parts: SqliteParts) {}

  async compactHistory(tenant: string, collection: string, policy: RetentionPolicy): Promise<number> {
    const sql = `DELETE FROM events WHERE tenant = ? AND kind = 'record' AND collection = ?
         AND version < (SELECT r.version FROM records r
           WHERE r.tenant = events.tenant AND r.collection = events.collection AND r.id = events.record_id)
         AND (version <= (SELECT r.version FROM records r
           WHERE r.tenant = events.tenant AND r.collection = events.collection AND r.id = events.record_id) - ?
           OR ts < ?)`;
    const keep = policy.keepVersions ?? Number.MAX_SAFE_INTEGER;
    return this.parts.exclusive(
      () => this.parts.writer.prepare(sql).run(tenant, collection, keep, policy.before ?? '').changes,
    );
  }

  async pruneResults(before: string): Promise<number> {
    return this.parts.exclusive(
      () =>
        this.parts.writer.prepare('DELETE FROM mutation_results WHERE created_at < ?').run(before).changes,
    );
  }

  async listTenants(): Promise<string[]> {
    return this.parts.reader
      .prepare<[], { tenant: string }>('SELECT tenant FROM tenant_heads ORDER BY tenant')
      .all()
      .map((r) => r.tenant);
  }

  async listRecordCollections(tenant: string): Promise<string[]> {
    return this.parts.reader
      .prepare<[string], { collection: string }>(
        'SELECT DISTINCT collection FROM records WHERE tenant = ? ORDER BY collection',
      )
      .all(tenant)
      .map((r) => r.collection);
  }

  async countOpenConflicts(): Promise<{ tenant: string; count: number }[]> {
    return this.parts.reader
      .prepare<[], { tenant: string; count: number }>(
        "SELECT tenant, COUNT(*) AS count FROM conflicts WHERE status = 'open' GROUP BY tenant",
      )
      .all();
  }
}
