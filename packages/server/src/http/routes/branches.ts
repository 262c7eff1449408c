/**
 * Branches of a record over REST: fork a record at a version into a named branch, list and read them,
 * compare one with the main line, merge it back with the collection's three-way merge (base = the fork
 * point) and delete it. The branch's own versions are the records routes' `<collection>@<branch>` (reads,
 * writes, history), written through the same LogWriter; access rules are the collection's.
 */
import { randomUUID } from 'node:crypto';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from '@sinclair/typebox';
import {
  BranchDiffResponse,
  type BranchInfo,
  BranchListResponse,
  BranchMergeResponse,
  BranchName,
  BranchResponse,
  CreateBranchRequest,
  type ErrorCode,
  ErrorResponse,
  HTTP_STATUS,
  type Mutation,
  type MutationResult,
  Name,
  RecordId,
  type SyncRecord,
} from '@syncbridge/protocol';
import type { Principal } from '../../auth/principal.ts';
import { branchCollection, diffBranch, mergePatchBetween, planMerge } from '../../core/branches.ts';
import { SyncError } from '../../core/errors.ts';
import { readableRecord, readableVersion } from '../../rules/reads.ts';
import type { BranchRow } from '../../store/branch-types.ts';
import type { HttpContext } from '../context.ts';

const RecordParams = Type.Object({ collection: Name, id: RecordId });
const BranchParams = Type.Object({ collection: Name, id: RecordId, name: BranchName });
const errors = {
  400: ErrorResponse,
  401: ErrorResponse,
  403: ErrorResponse,
  404: ErrorResponse,
  409: ErrorResponse,
};

function info(row: BranchRow): BranchInfo {
  const ref = branchCollection(row.collection, row.name);
  const out: BranchInfo = {
    name: row.name,
    collection: row.collection,
    id: row.recordId,
    ref,
    channel: `records:${ref}`,
    forkVersion: row.forkVersion,
    createdAt: row.createdAt,
    createdBy: row.createdBy,
  };
  if (row.mergedAt) out.mergedAt = row.mergedAt;
  if (row.mergedVersion !== null) out.mergedVersion = row.mergedVersion;
  return out;
}

/** A write's refusal as the error REST answers with. */
function refused(result: MutationResult): SyncError {
  const code = (result.error?.code ?? 'CONFLICT') as ErrorCode;
  return new SyncError(HTTP_STATUS[code] ? code : 'BAD_REQUEST', result.error?.message ?? 'rejected', {
    ...(result.record ? { record: result.record } : {}),
    ...(result.error?.details !== undefined ? { problems: result.error.details } : {}),
  });
}

export const branchRoutes =
  (ctx: HttpContext): FastifyPluginAsyncTypebox =>
  async (app) => {
    /** The record as the caller may read it (raw and visible), or NOT_FOUND; `tombstone`: deleted too. */
    async function readable(principal: Principal, collection: string, id: string, tombstone = false) {
      const record = await ctx.records.getRecord(principal.tenant, collection, id);
      const ruled = await ctx.collections.get(principal.tenant, collection);
      const visible =
        record && (tombstone || !record.deleted) ? readableRecord(principal, ruled, record) : null;
      if (!record || !visible) throw new SyncError('NOT_FOUND', 'record not found');
      return { record, visible, ruled };
    }

    /** The branch, for a caller who may read the record (deleted since the fork, for `tombstone`). */
    async function branchOf(
      principal: Principal,
      p: { collection: string; id: string; name: string },
      tombstone = false,
    ) {
      await readable(principal, p.collection, p.id, tombstone);
      const row = await ctx.branches.getBranch(principal.tenant, p.collection, p.id, p.name);
      if (!row) throw new SyncError('NOT_FOUND', `record ${p.id} has no branch "${p.name}"`);
      return row;
    }

    /** The record's data at a kept version, as the caller may read it. */
    async function dataAt(principal: Principal, collection: string, id: string, version: number) {
      const ruled = await ctx.collections.get(principal.tenant, collection);
      let after = 0;
      for (;;) {
        const page = await ctx.records.readEvents(principal.tenant, {
          afterSeq: after,
          limit: 500,
          kind: 'record',
          collection,
          recordId: id,
        });
        const kept = page.find((e) => e.version === version);
        if (kept) {
          if (kept.op === 'delete' || !readableVersion(principal, ruled, kept)) break;
          return kept.data ?? {};
        }
        if (page.length < 500) break;
        after = page[page.length - 1]!.seq;
      }
      throw new SyncError('NOT_FOUND', `version ${version} of this record is not kept`);
    }

    app.post(
      '/v1/records/:collection/:id/branches',
      {
        schema: {
          tags: ['branches'],
          summary: 'Fork the record at a version into a named branch',
          params: RecordParams,
          body: CreateBranchRequest,
          response: { 201: BranchResponse, ...errors },
        },
      },
      async (request, reply) => {
        const principal = await ctx.auth.principal(request);
        const { collection, id } = request.params;
        const { name, fromVersion } = request.body;
        const { record } = await readable(principal, collection, id);
        const forkVersion = fromVersion ?? record.version;
        if (forkVersion > record.version)
          throw new SyncError('NOT_FOUND', `version ${forkVersion} of this record does not exist yet`);
        const forkData =
          forkVersion === record.version ? record.data : await dataAt(principal, collection, id, forkVersion);
        const row: BranchRow = {
          tenant: principal.tenant,
          collection,
          recordId: id,
          name,
          forkVersion,
          forkData,
          createdAt: new Date().toISOString(),
          createdBy: principal.user,
          mergedAt: null,
          mergedVersion: null,
        };
        if (!(await ctx.branches.createBranch(row)))
          throw new SyncError('CONFLICT', `record ${id} already has a branch "${name}"`);
        // The branch's first version: the fork point's data, through the log like every write.
        const [result] = await ctx.writer
          .mutate(principal, [
            {
              mid: randomUUID(),
              collection: branchCollection(collection, name),
              id,
              op: 'put',
              data: forkData,
            },
          ])
          .catch(async (err: unknown) => {
            await ctx.branches.deleteBranch(principal.tenant, collection, id, name);
            throw err;
          });
        if (!result?.record || (result.status !== 'applied' && result.status !== 'merged')) {
          await ctx.branches.deleteBranch(principal.tenant, collection, id, name);
          throw refused(result ?? { mid: '', status: 'rejected' });
        }
        return reply.status(201).send({ branch: info(row), record: result.record });
      },
    );

    app.get(
      '/v1/records/:collection/:id/branches',
      {
        schema: {
          tags: ['branches'],
          summary: "The record's branches, by name",
          params: RecordParams,
          response: { 200: BranchListResponse, ...errors },
        },
      },
      async (request) => {
        const principal = await ctx.auth.principal(request);
        const { collection, id } = request.params;
        await readable(principal, collection, id, true);
        const rows = await ctx.branches.listBranches(principal.tenant, collection, id);
        return { branches: rows.map(info) };
      },
    );

    app.get(
      '/v1/records/:collection/:id/branches/:name',
      {
        schema: {
          tags: ['branches'],
          summary: "One branch and its record's current version on it",
          params: BranchParams,
          response: { 200: BranchResponse, ...errors },
        },
      },
      async (request) => {
        const principal = await ctx.auth.principal(request);
        const row = await branchOf(principal, request.params, true);
        const ref = branchCollection(row.collection, row.name);
        const record = await ctx.records.getRecord(principal.tenant, ref, row.recordId);
        const ruled = await ctx.collections.get(principal.tenant, ref);
        const visible = record ? readableRecord(principal, ruled, record) : null;
        return visible ? { branch: info(row), record: visible } : { branch: info(row) };
      },
    );

    app.get(
      '/v1/records/:collection/:id/branches/:name/diff',
      {
        schema: {
          tags: ['branches'],
          summary: 'What the branch and the main line each changed since the fork, by field path',
          params: BranchParams,
          response: { 200: BranchDiffResponse, ...errors },
        },
      },
      async (request) => {
        const principal = await ctx.auth.principal(request);
        const row = await branchOf(principal, request.params);
        const { visible: main, ruled } = await readable(principal, row.collection, row.recordId);
        const { visible: branch } = await readable(
          principal,
          branchCollection(row.collection, row.name),
          row.recordId,
        );
        // The fork point as the caller may see it (hidden fields removed, as from both sides).
        const base = readableRecord(principal, ruled, { ...main, data: row.forkData })?.data ?? {};
        return {
          branch: info(row),
          mainVersion: main.version,
          branchVersion: branch.version,
          changes: diffBranch(base, main.data, branch.data),
        };
      },
    );

    app.post(
      '/v1/records/:collection/:id/branches/:name/merge',
      {
        schema: {
          tags: ['branches'],
          summary: "Merge the branch back into the main line with the collection's three-way merge",
          params: BranchParams,
          response: { 200: BranchMergeResponse, 202: BranchMergeResponse, ...errors },
        },
      },
      async (request, reply) => {
        const principal = await ctx.auth.principal(request);
        const row = await branchOf(principal, request.params);
        if (row.mergedAt)
          throw new SyncError('CONFLICT', `branch "${row.name}" was merged at ${row.mergedAt}`);
        const { collection, recordId: id } = row;
        const { record: main, ruled } = await readable(principal, collection, id);
        const { record: branch } = await readable(principal, branchCollection(collection, row.name), id);
        const plan = planMerge(ruled.settings, row.forkData, main, branch);
        const done = async (record: SyncRecord) => {
          const at = new Date().toISOString();
          await ctx.branches.markMerged(principal.tenant, collection, id, row.name, record.version, at);
          return { ...row, mergedAt: at, mergedVersion: record.version };
        };
        if (plan.kind === 'unchanged') {
          const visible = readableRecord(principal, ruled, main) ?? main;
          return { status: 'unchanged' as const, branch: info(await done(main)), record: visible };
        }
        // A clean merge goes as the merge patch from main's current version, so a write landing meanwhile
        // on other fields survives whatever the strategy. A clash is handed over based on the fork version,
        // so the collection's strategy stores it in the manual queue with the fork point as base.
        const mid = randomUUID();
        const patch = plan.kind === 'write' ? mergePatchBetween(main.data, plan.data) : null;
        const mutation: Mutation =
          plan.kind === 'conflict'
            ? { mid, collection, id, op: 'put', data: branch.data, baseVersion: row.forkVersion }
            : patch
              ? { mid, collection, id, op: 'patch', data: patch, baseVersion: main.version }
              : { mid, collection, id, op: 'put', data: plan.data, baseVersion: main.version };
        const [result] = await ctx.writer.mutate(principal, [mutation]);
        if (!result) throw new SyncError('INTERNAL', 'no result');
        if (result.status === 'conflict' && result.conflictId) {
          const visible = readableRecord(principal, ruled, main) ?? main;
          return reply.status(202).send({
            status: 'conflict',
            branch: info(row),
            record: visible,
            conflictId: result.conflictId,
            ...(plan.kind === 'conflict' ? { clashes: plan.clashes } : {}),
          });
        }
        if ((result.status !== 'applied' && result.status !== 'merged') || !result.record)
          throw refused(result);
        const visible = readableRecord(principal, ruled, result.record) ?? result.record;
        return { status: 'merged' as const, branch: info(await done(result.record)), record: visible };
      },
    );

    app.delete(
      '/v1/records/:collection/:id/branches/:name',
      {
        schema: {
          tags: ['branches'],
          summary: "Delete the branch (its record becomes a tombstone on the branch's channel)",
          params: BranchParams,
          response: { 204: Type.Null(), ...errors },
        },
      },
      async (request, reply) => {
        const principal = await ctx.auth.principal(request);
        const row = await branchOf(principal, request.params, true);
        const ref = branchCollection(row.collection, row.name);
        const current = await ctx.records.getRecord(principal.tenant, ref, row.recordId);
        if (current && !current.deleted) {
          const [result] = await ctx.writer.mutate(principal, [
            { mid: randomUUID(), collection: ref, id: row.recordId, op: 'delete' },
          ]);
          if (result && result.status !== 'applied' && result.status !== 'duplicate') throw refused(result);
        }
        await ctx.branches.deleteBranch(principal.tenant, row.collection, row.recordId, row.name);
        return reply.status(204).send(null);
      },
    );
  };
