/** Collection settings (strategy, schema), their sealed-fields backfill's progress, and presence (who is connected). */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from '@sinclair/typebox';
import {
  CollectionResponse,
  CollectionSettings,
  CollectionsResponse,
  ConnectionsResponse,
  ErrorResponse,
  Name,
  SealedBackfillResponse,
} from '@syncbridge/protocol';
import { isTenantAdmin } from '../../auth/principal.ts';
import { SyncError } from '../../core/errors.ts';
import { RULES_CHANGED_EVENT, readRulesKey } from '../../rules/changes.ts';
import { backfillView } from '../../store/sealed-backfill-tenant.ts';
import type { HttpContext } from '../context.ts';

export const collectionRoutes =
  (ctx: HttpContext): FastifyPluginAsyncTypebox =>
  async (app) => {
    app.get(
      '/v1/collections',
      {
        schema: {
          tags: ['collections'],
          summary: 'Collections with settings (from the config file or set over REST)',
          response: { 200: CollectionsResponse, 401: ErrorResponse },
        },
      },
      async (request) => {
        const principal = await ctx.auth.principal(request);
        const all = await ctx.collections.list(principal.tenant, { fresh: true });
        return {
          collections: [...all.entries()]
            .sort(([a], [b]) => a.localeCompare(b))
            .map(([name, c]) => ({ name, settings: { strategy: 'lww' as const, ...c.settings } })),
        };
      },
    );

    app.get(
      '/v1/collections/:collection',
      {
        schema: {
          tags: ['collections'],
          summary: "A collection's settings (defaults when never configured)",
          params: Type.Object({ collection: Name }),
          response: { 200: CollectionResponse, 401: ErrorResponse },
        },
      },
      async (request) => {
        const principal = await ctx.auth.principal(request);
        const all = await ctx.collections.list(principal.tenant, { fresh: true });
        const settings = all.get(request.params.collection)?.settings ?? {};
        return { name: request.params.collection, settings: { strategy: 'lww' as const, ...settings } };
      },
    );

    app.put(
      '/v1/collections/:collection',
      {
        schema: {
          tags: ['collections'],
          summary: "Set a collection's conflict strategy and JSON schema (tenant admins)",
          params: Type.Object({ collection: Name }),
          body: CollectionSettings,
          response: { 200: CollectionResponse, 400: ErrorResponse, 401: ErrorResponse, 403: ErrorResponse },
        },
      },
      async (request) => {
        const principal = await ctx.auth.principal(request);
        if (!isTenantAdmin(principal))
          throw new SyncError('FORBIDDEN', 'changing collection settings needs the admin role');
        ctx.writer.assertStorable(request.body, 'settings');
        const resolved = ctx.collections.compile(request.body);
        const { collection } = request.params;
        const before = (await ctx.collections.list(principal.tenant, { fresh: true })).get(collection);
        await ctx.collectionSettings.putCollection(principal.tenant, collection, request.body);
        await ctx.collections.list(principal.tenant);
        ctx.collections.update(principal.tenant, collection, resolved);
        // Fields newly sealed: the collection's data stored before is sealed in the background.
        const wasSealed = new Set(before?.settings.sealedFields ?? []);
        if ((request.body.sealedFields ?? []).some((f) => !wasSealed.has(f)))
          ctx.sealedBackfill?.request(principal.tenant, collection);
        // Live subscriptions on every node are sent again under new read rules (realtime/rule-changes.ts).
        if (readRulesKey(before?.rules) !== readRulesKey(resolved.rules))
          await ctx.writer.publish(
            principal,
            { type: RULES_CHANGED_EVENT, payload: { collection } },
            { system: true },
          );
        return { name: request.params.collection, settings: { strategy: 'lww' as const, ...request.body } };
      },
    );

    app.get(
      '/v1/collections/:collection/sealed-backfill',
      {
        schema: {
          tags: ['collections'],
          summary: "Progress of the backfill sealing a collection's stored data (tenant admins)",
          params: Type.Object({ collection: Name }),
          response: { 200: SealedBackfillResponse, 401: ErrorResponse, 403: ErrorResponse },
        },
      },
      async (request) => {
        const principal = await ctx.auth.principal(request);
        if (!isTenantAdmin(principal))
          throw new SyncError('FORBIDDEN', 'reading backfill progress needs the admin role');
        const { collection } = request.params;
        const view = await backfillView(ctx.sealedProgress, principal.tenant, collection);
        const activity = ctx.sealedBackfill?.activity(principal.tenant, collection) ?? null;
        return { name: collection, backfill: view && { ...view, activity } };
      },
    );

    app.get(
      '/v1/connections',
      {
        schema: {
          tags: ['realtime'],
          summary: "Who is connected to the tenant's realtime endpoint (presence)",
          response: { 200: ConnectionsResponse, 401: ErrorResponse },
        },
      },
      async (request) => {
        const principal = await ctx.auth.principal(request);
        return { connections: await ctx.cluster.connections(principal.tenant) };
      },
    );
  };
