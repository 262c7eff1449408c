/**
 * Per-platform sync health and statistics, pending deliveries and "retry now". Health and statistics
 * are open to every user of the tenant; pending events and triggering are for tenant admins, and for a
 * platform's own token (`platform` claim) about that platform.
 */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from '@sinclair/typebox';
import {
  ConnectorHealth,
  ErrorResponse,
  PendingQuery,
  PendingResponse,
  StatsQuery,
  StatsResponse,
  SyncHealthResponse,
  TriggerRequest,
  TriggerResponse,
} from '@syncbridge/protocol';
import { isTenantAdmin, type Principal } from '../../auth/principal.ts';
import { SyncError } from '../../core/errors.ts';
import type { HttpContext } from '../context.ts';

const errors = { 400: ErrorResponse, 401: ErrorResponse, 403: ErrorResponse };

/** The platform a caller may act on: any (admins), or its own. */
function scope(principal: Principal, platform: string | undefined): string | undefined {
  if (isTenantAdmin(principal)) return platform;
  if (principal.platform && (platform === undefined || platform === principal.platform))
    return principal.platform;
  throw new SyncError('FORBIDDEN', 'only tenant admins, or a platform for itself, may do this');
}

export const syncRoutes =
  (ctx: HttpContext): FastifyPluginAsyncTypebox =>
  async (app) => {
    const health = ctx.webhooks.health;

    app.get(
      '/v1/sync/health',
      {
        schema: {
          tags: ['sync'],
          summary: 'Per platform: pending, failed and in-flight deliveries, lag p50/p95/max, last success',
          response: {
            200: Type.Composite([
              SyncHealthResponse,
              Type.Object({ connectors: Type.Array(ConnectorHealth) }),
            ]),
            ...errors,
          },
        },
      },
      async (request) => {
        const principal = await ctx.auth.principal(request);
        const connectors = ctx.connectors.list(principal.tenant).map((c) => ({
          name: c.name,
          kind: c.kind,
          state: c.state,
          lastSuccessAt: c.lastSuccessAt,
          lastError: c.lastError,
          stalenessMs: c.stalenessMs,
          stale: c.stale,
        }));
        return { health: await health.health(principal.tenant), connectors };
      },
    );

    app.get(
      '/v1/sync/pending',
      {
        schema: {
          tags: ['sync'],
          summary: 'Events waiting for delivery, oldest first',
          querystring: PendingQuery,
          response: { 200: PendingResponse, ...errors },
        },
      },
      async (request) => {
        const principal = await ctx.auth.principal(request);
        const platform = scope(principal, request.query.platform);
        return health.pending(principal.tenant, platform, request.query.limit ?? 50);
      },
    );

    app.post(
      '/v1/sync/trigger',
      {
        // A bare POST (no body) triggers every platform.
        preValidation: async (request) => {
          request.body ??= {};
        },
        schema: {
          tags: ['sync'],
          summary: 'Retry now: every pending delivery (of a platform or an endpoint) becomes due at once',
          body: TriggerRequest,
          response: { 200: TriggerResponse, ...errors },
        },
      },
      async (request) => {
        const principal = await ctx.auth.principal(request);
        const body = request.body ?? {};
        const platform = scope(principal, body.platform);
        const n = await health.trigger(principal.tenant, { platform, webhookId: body.webhookId });
        return { triggered: n, message: `Triggered sync for ${n} pending events` };
      },
    );

    app.get(
      '/v1/stats',
      {
        schema: {
          tags: ['sync'],
          summary: 'Delivery statistics over the last `days` (default 30)',
          querystring: StatsQuery,
          response: { 200: StatsResponse, ...errors },
        },
      },
      async (request) => {
        const principal = await ctx.auth.principal(request);
        return health.stats(principal.tenant, request.query.days ?? 30, request.query.platform);
      },
    );
  };
