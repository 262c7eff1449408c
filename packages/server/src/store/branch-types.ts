/**
 * Branches of records as stored: one row per (tenant, collection, record id, branch name) saying at which
 * version of the main line the branch was forked, with that version's data (the base of its three-way
 * merge back), and whether it was merged. The branch's own versions live in the records table and the log
 * under the collection name `<collection>@<branch>` (core/branches.ts); this is only the bookkeeping.
 */

export interface BranchRow {
  tenant: string;
  /** The main line's collection (no `@`). */
  collection: string;
  recordId: string;
  name: string;
  forkVersion: number;
  /** The record's data at `forkVersion` (the base of the merge). */
  forkData: Record<string, unknown>;
  createdAt: string;
  createdBy: string;
  /** When merged: the main line's version the merge wrote (or the conflict's stored version). */
  mergedAt: string | null;
  mergedVersion: number | null;
}

export interface BranchStore {
  /** Adds the branch; false when one of that name already exists for the record. */
  createBranch(row: BranchRow): Promise<boolean>;
  getBranch(tenant: string, collection: string, recordId: string, name: string): Promise<BranchRow | null>;
  /** The record's branches, by name. */
  listBranches(tenant: string, collection: string, recordId: string): Promise<BranchRow[]>;
  markMerged(
    tenant: string,
    collection: string,
    recordId: string,
    name: string,
    version: number,
    at: string,
  ): Promise<void>;
  /** Forgets the branch; false when there was none. */
  deleteBranch(tenant: string, collection: string, recordId: string, name: string): Promise<boolean>;
}

/** A stored row as the drivers read it (snake_case columns, JSON as text). */
export interface BranchDbRow {
  tenant: string;
  collection: string;
  record_id: string;
  name: string;
  fork_version: number | string;
  fork_data: string;
  created_at: string;
  created_by: string;
  merged_at: string | null;
  merged_version: number | string | null;
}

export function branchFromDb(row: BranchDbRow): BranchRow {
  return {
    tenant: row.tenant,
    collection: row.collection,
    recordId: row.record_id,
    name: row.name,
    forkVersion: Number(row.fork_version),
    forkData: JSON.parse(row.fork_data) as Record<string, unknown>,
    createdAt: row.created_at,
    createdBy: row.created_by,
    mergedAt: row.merged_at,
    mergedVersion: row.merged_version === null ? null : Number(row.merged_version),
  };
}

/** A new branch's insert parameters, in the column order both drivers' INSERT statements use. */
export function branchInsertParams(row: BranchRow): Array<string | number> {
  return [
    row.tenant,
    row.collection,
    row.recordId,
    row.name,
    row.forkVersion,
    JSON.stringify(row.forkData),
    row.createdAt,
    row.createdBy,
  ];
}
