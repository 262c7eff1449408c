/**
 * The manual conflict queue over REST: list and read stored conflicts, and resolve one with
 * `accept_local`, `accept_server` or `merge` (with data). Tenant admins see every conflict of the
 * tenant; other users see the conflicts of their own writes.
 */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from '@sinclair/typebox';
import {
  Conflict,
  ConflictsQuery,
  ConflictsResponse,
  ErrorResponse,
  ResolveRequest,
  ResolveResponse,
} from '@syncbridge/protocol';
import { isTenantAdmin, type Principal } from '../../auth/principal.ts';
import { SyncError } from '../../core/errors.ts';
import type { HttpContext } from '../context.ts';

const ConflictParams = Type.Object({ id: Type.String({ minLength: 1, maxLength: 128 }) });

function visible(principal: Principal, conflict: Conflict): boolean {
  return isTenantAdmin(principal) || conflict.actor === principal.user;
}

export const conflictRoutes =
  (ctx: HttpContext): FastifyPluginAsyncTypebox =>
  async (app) => {
    app.get(
      '/v1/conflicts',
      {
        schema: {
          tags: ['conflicts'],
          summary: 'Stored conflicts (default: open ones), oldest first',
          querystring: ConflictsQuery,
          response: { 200: ConflictsResponse, 401: ErrorResponse },
        },
      },
      async (request) => {
        const principal = await ctx.auth.principal(request);
        const { status = 'open', collection, limit = 100 } = request.query;
        const conflicts = await ctx.conflicts.listConflicts(principal.tenant, { status, collection, limit });
        return { conflicts: conflicts.filter((c) => visible(principal, c)) };
      },
    );

    app.get(
      '/v1/conflicts/:id',
      {
        schema: {
          tags: ['conflicts'],
          summary: 'One stored conflict with its base, server and client versions',
          params: ConflictParams,
          response: { 200: Conflict, 401: ErrorResponse, 404: ErrorResponse },
        },
      },
      async (request) => {
        const principal = await ctx.auth.principal(request);
        const conflict = await ctx.conflicts.getConflict(principal.tenant, request.params.id);
        if (!conflict || !visible(principal, conflict))
          throw new SyncError('NOT_FOUND', 'conflict not found');
        return conflict;
      },
    );

    app.post(
      '/v1/conflicts/:id/resolve',
      {
        schema: {
          tags: ['conflicts'],
          summary: 'Resolve a conflict: accept_local, accept_server, or merge with data',
          params: ConflictParams,
          body: ResolveRequest,
          response: {
            200: ResolveResponse,
            400: ErrorResponse,
            401: ErrorResponse,
            403: ErrorResponse,
            404: ErrorResponse,
            409: ErrorResponse,
          },
        },
      },
      async (request) => {
        const principal = await ctx.auth.principal(request);
        const { id } = request.params;
        const existing = await ctx.conflicts.getConflict(principal.tenant, id);
        if (!existing || !visible(principal, existing))
          throw new SyncError('NOT_FOUND', 'conflict not found');
        const result = await ctx.writer.resolve(principal, { conflictId: id, ...request.body });
        if (result.status === 'rejected') {
          throw new SyncError('CONFLICT', result.error?.message ?? 'conflict is stale', {
            ...(result.record ? { record: result.record } : {}),
          });
        }
        const conflict = (await ctx.conflicts.getConflict(principal.tenant, id))!;
        return { result, conflict };
      },
    );
  };
