/**
 * REST shapes of record branches: forking a record into a named branch, listing, comparing with and
 * merging back into the main line. A branch's own versions are records of `<collection>@<branch>`.
 */
import { type Static, Type } from '@sinclair/typebox';
import { BranchName, SyncRecord } from './model.ts';

export const CreateBranchRequest = Type.Object(
  {
    name: BranchName,
    fromVersion: Type.Optional(
      Type.Integer({
        minimum: 1,
        maximum: Number.MAX_SAFE_INTEGER,
        description: 'the kept version to fork from (default: the current one)',
      }),
    ),
  },
  { additionalProperties: false },
);
export type CreateBranchRequest = Static<typeof CreateBranchRequest>;

export const BranchInfo = Type.Object({
  name: Type.String(),
  collection: Type.String({ description: 'the main line collection' }),
  id: Type.String(),
  /** Where its versions live: `<collection>@<branch>` (REST records routes, `records:` channel). */
  ref: Type.String(),
  channel: Type.String(),
  forkVersion: Type.Integer(),
  createdAt: Type.String(),
  createdBy: Type.String(),
  mergedAt: Type.Optional(Type.String()),
  mergedVersion: Type.Optional(Type.Integer()),
});
export type BranchInfo = Static<typeof BranchInfo>;

export const BranchResponse = Type.Object({ branch: BranchInfo, record: Type.Optional(SyncRecord) });
export type BranchResponse = Static<typeof BranchResponse>;

export const BranchListResponse = Type.Object({ branches: Type.Array(BranchInfo) });
export type BranchListResponse = Static<typeof BranchListResponse>;

export const BranchDiffEntry = Type.Object({
  path: Type.String(),
  base: Type.Optional(Type.Unknown()),
  main: Type.Optional(Type.Unknown()),
  branch: Type.Optional(Type.Unknown()),
  changedOn: Type.Union([Type.Literal('main'), Type.Literal('branch'), Type.Literal('both')]),
});

export const BranchDiffResponse = Type.Object({
  branch: BranchInfo,
  mainVersion: Type.Integer(),
  branchVersion: Type.Integer(),
  changes: Type.Array(BranchDiffEntry),
});
export type BranchDiffResponse = Static<typeof BranchDiffResponse>;

export const BranchMergeResponse = Type.Object({
  /** merged: a new main version; unchanged: main already had it; conflict: stored for a person to resolve. */
  status: Type.Union([Type.Literal('merged'), Type.Literal('unchanged'), Type.Literal('conflict')]),
  branch: BranchInfo,
  record: SyncRecord,
  conflictId: Type.Optional(Type.String()),
  clashes: Type.Optional(Type.Array(Type.String())),
});
export type BranchMergeResponse = Static<typeof BranchMergeResponse>;
