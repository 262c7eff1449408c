/**
 * The manual conflict queue over REST: list and read stored conflicts, and resolve one with
 * `accept_local`, `accept_server` or `merge` (with data). Tenant admins see every conflict of the
 * tenant; other users see the conflicts of their own writes, while the collection's access rules let them
 * read the record (its fields hidden from them removed); resolving with a change needs the write rule.
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
import type { CollectionRegistry } from '../../core/collections.ts';
import { SyncError } from '../../core/errors.ts';
import { visibleConflict } from '../../rules/conflicts.ts';
import type { HttpContext } from '../context.ts';

const ConflictParams = Type.Object({ id: Type.String({ minLength: 1, maxLength: 128 }) });

function visible(principal: Principal, conflict: Conflict): boolean {
  return isTenantAdmin(principal) || conflict.actor === principal.user;
}

/** The conflict as the caller may see it (its writer, an admin; access rules applied), or null. */
async function readable(
  collections: CollectionRegistry,
  principal: Principal,
  conflict: Conflict,
): Promise<Conflict | null> {
  if (!visible(principal, conflict)) return null;
  return visibleConflict(principal, await collections.get(principal.tenant, conflict.collection), conflict);
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
        const shown = await Promise.all(conflicts.map((c) => readable(ctx.collections, principal, c)));
        return { conflicts: shown.filter((c) => c !== null) };
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
        const shown = conflict && (await readable(ctx.collections, principal, conflict));
        if (!shown) throw new SyncError('NOT_FOUND', 'conflict not found');
        return shown;
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
        if (!existing || !(await readable(ctx.collections, principal, existing)))
          throw new SyncError('NOT_FOUND', 'conflict not found');
        const result = await ctx.writer.resolve(principal, { conflictId: id, ...request.body });
        if (result.status === 'rejected') {
          throw new SyncError('CONFLICT', result.error?.message ?? 'conflict is stale', {
            ...(result.record ? { record: result.record } : {}),
          });
        }
        const stored = (await ctx.conflicts.getConflict(principal.tenant, id))!;
        // A resolution may take the record out of what the caller reads: then it sees no record data.
        const conflict = (await readable(ctx.collections, principal, stored)) ?? {
          ...stored,
          server: {},
          base: null,
        };
        return { result, conflict };
      },
    );
  };
