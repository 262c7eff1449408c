/**
 * PostgreSQL side of record branches (BranchStore), on the store's pool. It must never hold domain logic
 * (what a branch means is core/branches.ts's).
 */
import type pg from 'pg';
import {
  type BranchDbRow,
  type BranchRow,
  type BranchStore,
  branchFromDb,
  branchInsertParams,
} from '../branch-types.ts';
import { query } from './pool.ts';

const COLUMNS =
  'tenant, collection, record_id, name, fork_version, fork_data::text AS fork_data, created_at, created_by, merged_at, merged_version';
const KEY = 'tenant = $1 AND collection = $2 AND record_id = $3';

export class PostgresBranchStore implements BranchStore {
  constructor(private readonly pool: pg.Pool) {}

  async createBranch(row: BranchRow): Promise<boolean> {
    const rows = await query(
      this.pool,
      `INSERT INTO record_branches (tenant, collection, record_id, name, fork_version, fork_data, created_at,
         created_by) VALUES ($1, $2, $3, $4, $5, $6::jsonb, $7, $8) ON CONFLICT DO NOTHING RETURNING name`,
      branchInsertParams(row),
    );
    return rows.length === 1;
  }

  async getBranch(tenant: string, collection: string, recordId: string, name: string) {
    const rows = await query<BranchDbRow>(
      this.pool,
      `SELECT ${COLUMNS} FROM record_branches WHERE ${KEY} AND name = $4`,
      [tenant, collection, recordId, name],
    );
    return rows[0] ? branchFromDb(rows[0]) : null;
  }

  async listBranches(tenant: string, collection: string, recordId: string) {
    const rows = await query<BranchDbRow>(
      this.pool,
      `SELECT ${COLUMNS} FROM record_branches WHERE ${KEY} ORDER BY name`,
      [tenant, collection, recordId],
    );
    return rows.map(branchFromDb);
  }

  async markMerged(
    tenant: string,
    collection: string,
    recordId: string,
    name: string,
    version: number,
    at: string,
  ) {
    await query(
      this.pool,
      `UPDATE record_branches SET merged_at = $5, merged_version = $6 WHERE ${KEY} AND name = $4`,
      [tenant, collection, recordId, name, at, version],
    );
  }

  async deleteBranch(tenant: string, collection: string, recordId: string, name: string) {
    const rows = await query(
      this.pool,
      `DELETE FROM record_branches WHERE ${KEY} AND name = $4 RETURNING name`,
      [tenant, collection, recordId, name],
    );
    return rows.length === 1;
  }
}
