/** Liveness, readiness, Prometheus metrics, token minting and tenant API keys. */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from '@sinclair/typebox';
import {
  ApiKeyRequest,
  ApiKeyResponse,
  ErrorResponse,
  HealthResponse,
  ReadyResponse,
  TokenRequest,
  TokenResponse,
} from '@syncbridge/protocol';
import { SyncError } from '../../core/errors.ts';
import { withoutTenantSeries } from '../../observability/metrics.ts';
import type { HttpContext } from '../context.ts';
import { probeWithin } from '../ready-check.ts';

/** Compares two secrets in constant time (by their hashes, so their lengths do not show either). */
function sameSecret(given: string, expected: string): boolean {
  const digest = (s: string) => createHash('sha256').update(s).digest();
  return timingSafeEqual(digest(given), digest(expected));
}

export const systemRoutes =
  (ctx: HttpContext): FastifyPluginAsyncTypebox =>
  async (app) => {
    app.get(
      '/v1/health',
      { schema: { tags: ['system'], summary: 'Liveness', security: [], response: { 200: HealthResponse } } },
      async () => ({ status: 'ok', uptimeSeconds: Math.round((Date.now() - ctx.startedAt) / 1000) }),
    );

    app.get(
      '/v1/ready',
      {
        schema: {
          tags: ['system'],
          summary: 'Readiness: the store (and bus) answer',
          security: [],
          response: { 200: ReadyResponse, 503: ReadyResponse },
        },
      },
      async (_request, reply) => {
        const started = performance.now();
        // Both probes at once, each bounded: a reconnecting client must not hold the answer back.
        const [ok, busOk] = await Promise.all([probeWithin(ctx.storePing), probeWithin(ctx.busPing)]);
        const body = {
          status: ok && busOk ? 'ready' : 'unavailable',
          store: {
            kind: ctx.storeKind,
            ok,
            latencyMs: Math.round((performance.now() - started) * 100) / 100,
          },
          bus: { kind: ctx.busKind, ok: busOk },
          nodes: ctx.cluster.nodes(),
        };
        return reply.status(ok && busOk ? 200 : 503).send(body);
      },
    );

    // Series labelled by tenant name every tenant: only a scraper with the metrics token (or the admin
    // key) sees them. Without either, the rest is open as before, so a plain scrape keeps working.
    app.get('/metrics', { schema: { hide: true } }, async (request, reply) => {
      const access = await metricsAccess(request.headers);
      if (access === 'refused') {
        throw new SyncError('UNAUTHORIZED', 'wrong metrics token or admin key');
      }
      reply.header('Content-Type', ctx.metrics.contentType);
      const text = await ctx.metrics.render();
      return access === 'full' ? text : withoutTenantSeries(text);
    });

    async function metricsAccess(headers: IncomingHttpHeaders): Promise<'full' | 'public' | 'refused'> {
      const auth = headers.authorization;
      const apiKey = headers['x-api-key'];
      // One credential: the metrics token or the admin key, not both (auth/credentials.ts).
      if (apiKey !== undefined && auth !== undefined) return 'refused';
      if (typeof apiKey === 'string') {
        const key = await ctx.keys.resolve(apiKey);
        return key && key.tenant === null ? 'full' : 'refused';
      }
      if (auth === undefined) return 'public';
      const bearer = /^bearer\s+(.+)$/i.exec(auth)?.[1]?.trim();
      return bearer !== undefined && ctx.metricsToken !== undefined && sameSecret(bearer, ctx.metricsToken)
        ? 'full'
        : 'refused';
    }

    app.post(
      '/v1/auth/token',
      {
        schema: {
          tags: ['auth'],
          summary: 'Mint a user token (needs the admin key or a tenant API key)',
          security: [{ apiKey: [] }],
          body: TokenRequest,
          response: { 200: TokenResponse, 400: ErrorResponse, 401: ErrorResponse, 403: ErrorResponse },
        },
      },
      async (request) => {
        const key = await ctx.auth.apiKey(request);
        if (key.tenant !== null && key.tenant !== request.body.tenant) {
          throw new SyncError('FORBIDDEN', 'a tenant API key mints tokens for its own tenant only');
        }
        return ctx.tokens.mint(request.body);
      },
    );

    app.post(
      '/v1/tenants/:tenant/api-keys',
      {
        schema: {
          tags: ['auth'],
          summary: 'Create an API key for a tenant (admin key only); the key is shown once',
          security: [{ apiKey: [] }],
          params: Type.Object({ tenant: TokenRequest.properties.tenant }),
          body: Type.Optional(ApiKeyRequest),
          response: { 201: ApiKeyResponse, 401: ErrorResponse, 403: ErrorResponse },
        },
      },
      async (request, reply) => {
        const key = await ctx.auth.apiKey(request);
        if (key.tenant !== null)
          throw new SyncError('FORBIDDEN', 'only the admin key creates tenant API keys');
        const created = await ctx.keys.createTenantKey(request.params.tenant, request.body?.label ?? null);
        return reply.status(201).send({ id: created.id, tenant: request.params.tenant, key: created.key });
      },
    );
  };
