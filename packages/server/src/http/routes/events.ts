/**
 * Domain events over REST: append to the tenant's log, and read the log in seq order (record changes as
 * the collections' access rules let the caller see them: rules/reads.ts).
 */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from '@sinclair/typebox';
import {
  ErrorResponse,
  EventsQuery,
  EventsResponse,
  PublishRequest,
  PublishResponse,
} from '@syncbridge/protocol';
import { mainCollection } from '../../core/branches.ts';
import { SyncError } from '../../core/errors.ts';
import { bypassesRules, readIsRuled } from '../../rules/decide.ts';
import { fillPage, visibleEvents } from '../../rules/reads.ts';
import type { HttpContext } from '../context.ts';

export const eventRoutes =
  (ctx: HttpContext): FastifyPluginAsyncTypebox =>
  async (app) => {
    app.post(
      '/v1/events',
      {
        schema: {
          tags: ['events'],
          summary: 'Append a domain event; a repeated idempotencyKey returns the first seq',
          body: PublishRequest,
          response: { 200: PublishResponse, 201: PublishResponse, 400: ErrorResponse, 401: ErrorResponse },
        },
      },
      async (request, reply) => {
        const principal = await ctx.auth.principal(request);
        const result = await ctx.writer.publish(principal, request.body);
        return reply.status(result.duplicate ? 200 : 201).send(result);
      },
    );

    app.get(
      '/v1/projections/:name',
      {
        schema: {
          tags: ['events'],
          summary: "A projection's state for the caller's tenant, and the seq it reflects",
          params: Type.Object({ name: Type.String({ minLength: 1, maxLength: 128 }) }),
          response: {
            200: Type.Object({ name: Type.String(), seq: Type.Integer(), state: Type.Unknown() }),
            401: ErrorResponse,
            403: ErrorResponse,
            404: ErrorResponse,
          },
        },
      },
      async (request) => {
        const principal = await ctx.auth.principal(request);
        const { name } = request.params;
        // A projection folds records whatever the rules: under read rules it is for admins, unless public.
        if (ctx.projections.isPublic(name) === false && !bypassesRules(principal)) {
          const collections = await ctx.collections.list(principal.tenant);
          if ([...collections.values()].some((c) => c.rules?.read && readIsRuled(principal, c)))
            throw new SyncError(
              'FORBIDDEN',
              `projection ${name} folds records that access rules protect: it is for tenant admins`,
            );
        }
        const view = await ctx.projections.read(name, principal.tenant);
        return { name: request.params.name, ...view };
      },
    );

    app.get(
      '/v1/events',
      {
        schema: {
          tags: ['events'],
          summary: "The tenant's log (record changes and domain events) in seq order",
          querystring: EventsQuery,
          response: { 200: EventsResponse, 400: ErrorResponse, 401: ErrorResponse },
        },
      },
      async (request) => {
        const principal = await ctx.auth.principal(request);
        const { after = 0, limit = 100, type, kind, actor, collection, id, from, to } = request.query;
        const query = { afterSeq: after, limit, type, kind, actor, collection, recordId: id, from, to };
        if (!bypassesRules(principal)) {
          const collections = await ctx.collections.list(principal.tenant);
          if ([...collections.values()].some((c) => readIsRuled(principal, c))) {
            // Record changes pass the collections' access rules; pages are filled past the ones left out.
            const [{ items }, head] = await Promise.all([
              fillPage({
                limit,
                start: after,
                read: (from, size) =>
                  ctx.records.readEvents(principal.tenant, { ...query, afterSeq: from, limit: size }),
                cursorOf: (e) => e.seq,
                keep: (es) => visibleEvents(principal, (name) => collections.get(mainCollection(name)), es),
              }),
              ctx.records.headSeq(principal.tenant),
            ]);
            return { events: items, head };
          }
        }
        const [events, head] = await Promise.all([
          ctx.records.readEvents(principal.tenant, query),
          ctx.records.headSeq(principal.tenant),
        ]);
        return { events, head };
      },
    );
  };
