/**
 * SQLite side of record branches (BranchStore): reads on the reader, writes through the store's writer
 * queue. It must never hold domain logic (what a branch means is core/branches.ts's).
 */
import type Database from 'better-sqlite3';
import {
  type BranchDbRow,
  type BranchRow,
  type BranchStore,
  branchFromDb,
  branchInsertParams,
} from '../branch-types.ts';
import type { SqliteParts } from './accounts.ts';

const COLUMNS =
  'tenant, collection, record_id, name, fork_version, fork_data, created_at, created_by, merged_at, merged_version';

export class SqliteBranchStore implements BranchStore {
  private readonly get: Database.Statement<[string, string, string, string], BranchDbRow>;
  private readonly list: Database.Statement<[string, string, string], BranchDbRow>;

  constructor(private readonly parts: SqliteParts) {
    const r = parts.reader;
    this.get = r.prepare(
      `SELECT ${COLUMNS} FROM record_branches WHERE tenant = ? AND collection = ? AND record_id = ? AND name = ?`,
    );
    this.list = r.prepare(
      `SELECT ${COLUMNS} FROM record_branches WHERE tenant = ? AND collection = ? AND record_id = ? ORDER BY name`,
    );
  }

  async createBranch(row: BranchRow): Promise<boolean> {
    const info = await this.parts.exclusive(() =>
      this.parts.writer
        .prepare(
          `INSERT INTO record_branches (${COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, NULL, NULL)
           ON CONFLICT DO NOTHING`,
        )
        .run(...branchInsertParams(row)),
    );
    return info.changes === 1;
  }

  async getBranch(tenant: string, collection: string, recordId: string, name: string) {
    const row = this.get.get(tenant, collection, recordId, name);
    return row ? branchFromDb(row) : null;
  }

  async listBranches(tenant: string, collection: string, recordId: string) {
    return this.list.all(tenant, collection, recordId).map(branchFromDb);
  }

  async markMerged(
    tenant: string,
    collection: string,
    recordId: string,
    name: string,
    version: number,
    at: string,
  ) {
    await this.parts.exclusive(() =>
      this.parts.writer
        .prepare(
          `UPDATE record_branches SET merged_at = ?, merged_version = ?
           WHERE tenant = ? AND collection = ? AND record_id = ? AND name = ?`,
        )
        .run(at, version, tenant, collection, recordId, name),
    );
  }

  async deleteBranch(tenant: string, collection: string, recordId: string, name: string) {
    const info = await this.parts.exclusive(() =>
      this.parts.writer
        .prepare(
          'DELETE FROM record_branches WHERE tenant = ? AND collection = ? AND record_id = ? AND name = ?',
        )
        .run(tenant, collection, recordId, name),
    );
    return info.changes === 1;
  }
}
