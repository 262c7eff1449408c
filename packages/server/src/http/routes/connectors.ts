/**
 * Connectors over REST. Every user of a tenant may read its connectors' status and a feed's symbols,
 * latest values, depth and history; tenant admins define, change and remove connectors, subscribe and
 * unsubscribe a feed's symbols upstream, and trigger runs (a provider webhook's "pull now"). The trigger
 * and subscription routes are answered by the node running the connector: from a node standing by for
 * it they are forwarded there (connectors/connector-calls.ts), so any node answers them.
 */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from '@sinclair/typebox';
import {
  ConnectorBody,
  ConnectorStatus,
  ConnectorDepth as Depth,
  ErrorResponse,
  CONNECTOR_NAME as NAME,
  ConnectorNameParams as NameParams,
  FeedSubscriptionParams as SubParams,
  FeedSubscription as Subscription,
  ConnectorSymbolParams as SymbolParams,
  FeedSymbolStatus as SymbolStatus,
  ConnectorTick as Tick,
} from '@syncbridge/protocol';
import { isTenantAdmin, type Principal } from '../../auth/principal.ts';
import type { CallAnswer } from '../../connectors/connector-calls.ts';
import { SyncError } from '../../core/errors.ts';
import type { HttpContext } from '../context.ts';

const errors = { 400: ErrorResponse, 401: ErrorResponse, 403: ErrorResponse, 404: ErrorResponse };

function requireAdmin(principal: Principal): void {
  if (!isTenantAdmin(principal)) throw new SyncError('FORBIDDEN', 'only tenant admins may do this');
}

interface CallReply {
  status(code: number): { send(body: unknown): unknown };
  header(name: string, value: string): unknown;
}

/** Sends a connector call's answer; an UNAVAILABLE one saying when to retry gets a Retry-After header. */
async function answer(reply: CallReply, run: Promise<CallAnswer>): Promise<void> {
  try {
    const { status, body } = await run;
    reply.status(status).send(body);
  } catch (err) {
    const details = err instanceof SyncError && err.code === 'UNAVAILABLE' ? err.details : undefined;
    const after = (details as { retryAfterMs?: unknown } | undefined)?.retryAfterMs;
    if (typeof after === 'number') reply.header('Retry-After', String(Math.max(1, Math.ceil(after / 1000))));
    throw err;
  }
}

/** A time as milliseconds since the epoch, from digits or an ISO 8601 string. */
function parseTime(value: string | undefined, what: string): number | undefined {
  if (value === undefined || value === '') return undefined;
  if (/^\d+$/.test(value)) return Number(value);
  const t = Date.parse(value);
  if (Number.isNaN(t)) throw new SyncError('BAD_REQUEST', `${what} must be an ISO 8601 time or milliseconds`);
  return t;
}

export const connectorRoutes =
  (ctx: HttpContext): FastifyPluginAsyncTypebox =>
  async (app) => {
    const connectors = ctx.connectors;
    const calls = ctx.connectorCalls;
    const view = (principal: Principal, status: ReturnType<typeof connectors.status>) => {
      if (isTenantAdmin(principal)) return status;
      const { spec: _spec, ...rest } = status;
      return rest;
    };

    app.get(
      '/v1/connectors',
      {
        schema: {
          tags: ['connectors'],
          summary: "The tenant's connectors: state, last success, staleness, metrics",
          response: { 200: Type.Object({ connectors: Type.Array(ConnectorStatus) }), ...errors },
        },
      },
      async (request) => {
        const principal = await ctx.auth.principal(request);
        return { connectors: connectors.list(principal.tenant).map((s) => view(principal, s)) };
      },
    );

    app.post(
      '/v1/connectors',
      {
        schema: {
          tags: ['connectors'],
          summary: 'Define and start a connector (tenant admin); it is kept across restarts',
          body: ConnectorBody,
          response: { 201: ConnectorStatus, ...errors, 409: ErrorResponse },
        },
      },
      async (request, reply) => {
        const principal = await ctx.auth.principal(request);
        requireAdmin(principal);
        const status = await connectors.create(principal.tenant, request.body as Record<string, unknown>);
        return reply.status(201).send(status);
      },
    );

    app.get(
      '/v1/connectors/:name',
      {
        schema: {
          tags: ['connectors'],
          summary: "One connector's status",
          params: NameParams,
          response: { 200: ConnectorStatus, ...errors },
        },
      },
      async (request) => {
        const principal = await ctx.auth.principal(request);
        return view(principal, connectors.status(principal.tenant, request.params.name));
      },
    );

    app.put(
      '/v1/connectors/:name',
      {
        schema: {
          tags: ['connectors'],
          summary: 'Replace a connector defined over REST and restart it (tenant admin)',
          params: NameParams,
          body: ConnectorBody,
          response: { 200: ConnectorStatus, ...errors },
        },
      },
      async (request) => {
        const principal = await ctx.auth.principal(request);
        requireAdmin(principal);
        if (request.body.name !== request.params.name) {
          throw new SyncError('BAD_REQUEST', 'the body names another connector than the URL');
        }
        return connectors.replace(
          principal.tenant,
          request.params.name,
          request.body as Record<string, unknown>,
        );
      },
    );

    app.delete(
      '/v1/connectors/:name',
      {
        schema: {
          tags: ['connectors'],
          summary: 'Stop and remove a connector defined over REST, with its state (tenant admin)',
          params: NameParams,
          response: { 204: Type.Null(), ...errors },
        },
      },
      async (request, reply) => {
        const principal = await ctx.auth.principal(request);
        requireAdmin(principal);
        await connectors.remove(principal.tenant, request.params.name);
        return reply.status(204).send(null);
      },
    );

    app.post(
      '/v1/connectors/:name/trigger',
      {
        schema: {
          tags: ['connectors'],
          summary: 'Run now, ahead of the schedule: a delta sync or a reconciliation (tenant admin)',
          params: NameParams,
          body: Type.Optional(
            Type.Object(
              {
                connection: Type.Optional(Type.String(NAME)),
                reconcile: Type.Optional(Type.Boolean()),
                reason: Type.Optional(Type.String({ maxLength: 200 })),
                /** false: answer 202 at once instead of waiting for the runs. */
                wait: Type.Optional(Type.Boolean()),
              },
              { additionalProperties: false },
            ),
          ),
          response: {
            200: Type.Object({ runs: Type.Array(Type.Record(Type.String(), Type.Unknown())) }),
            202: Type.Object({ queued: Type.Boolean() }),
            ...errors,
            503: ErrorResponse,
          },
        },
      },
      async (request, reply) => {
        const principal = await ctx.auth.principal(request);
        requireAdmin(principal);
        const { wait = true, ...rest } = request.body ?? {};
        const reason = rest.reason ?? `trigger by ${principal.user}`.slice(0, 200);
        const call = { action: 'trigger' as const, ...rest, reason, wait };
        return answer(reply, calls.run(principal.tenant, request.params.name, call));
      },
    );

    app.post(
      '/v1/connectors/:name/subscriptions',
      {
        schema: {
          tags: ['connectors'],
          summary:
            'Subscribe symbols of a feed upstream (tenant admin); they reach topic:<topic> subscribers',
          params: NameParams,
          body: Type.Object(
            {
              symbols: Type.Array(Type.String({ minLength: 1, maxLength: 128 }), {
                minItems: 1,
                maxItems: 10_000,
              }),
            },
            { additionalProperties: false },
          ),
          response: { 201: Subscription, ...errors, 503: ErrorResponse },
        },
      },
      async (request, reply) => {
        const principal = await ctx.auth.principal(request);
        requireAdmin(principal);
        const call = { action: 'subscribe' as const, symbols: request.body.symbols, user: principal.user };
        return answer(reply, calls.run(principal.tenant, request.params.name, call));
      },
    );

    app.get(
      '/v1/connectors/:name/subscriptions',
      {
        schema: {
          tags: ['connectors'],
          summary: "A feed's symbol subscriptions",
          params: NameParams,
          response: {
            200: Type.Object({ subscriptions: Type.Array(Subscription) }),
            ...errors,
            503: ErrorResponse,
          },
        },
      },
      async (request, reply) => {
        const principal = await ctx.auth.principal(request);
        const call = { action: 'subscriptions' as const };
        return answer(reply, calls.run(principal.tenant, request.params.name, call));
      },
    );

    app.get(
      '/v1/connectors/:name/subscriptions/:id',
      {
        schema: {
          tags: ['connectors'],
          summary: 'A subscription and the state of each of its symbols',
          params: SubParams,
          response: {
            200: Type.Composite([Subscription, Type.Object({ status: Type.Array(SymbolStatus) })]),
            ...errors,
            503: ErrorResponse,
          },
        },
      },
      async (request, reply) => {
        const principal = await ctx.auth.principal(request);
        const call = { action: 'subscription' as const, id: request.params.id };
        return answer(reply, calls.run(principal.tenant, request.params.name, call));
      },
    );

    app.delete(
      '/v1/connectors/:name/subscriptions/:id',
      {
        schema: {
          tags: ['connectors'],
          summary:
            'End a subscription; its symbols no other one holds are unsubscribed upstream (tenant admin)',
          params: SubParams,
          response: { 204: Type.Null(), ...errors, 503: ErrorResponse },
        },
      },
      async (request, reply) => {
        const principal = await ctx.auth.principal(request);
        requireAdmin(principal);
        const call = { action: 'unsubscribe' as const, id: request.params.id };
        return answer(reply, calls.run(principal.tenant, request.params.name, call));
      },
    );

    app.get(
      '/v1/connectors/:name/symbols',
      {
        schema: {
          tags: ['connectors'],
          summary: "A feed's symbols: subscribed, active upstream, or seen in its topic",
          params: NameParams,
          response: {
            200: Type.Object({ topic: Type.String(), symbols: Type.Array(SymbolStatus) }),
            ...errors,
            503: ErrorResponse,
          },
        },
      },
      async (request, reply) => {
        const principal = await ctx.auth.principal(request);
        const call = { action: 'symbols' as const };
        return answer(reply, calls.run(principal.tenant, request.params.name, call));
      },
    );

    app.get(
      '/v1/connectors/:name/latest',
      {
        schema: {
          tags: ['connectors'],
          summary: 'The latest tick of every symbol of a feed',
          params: NameParams,
          response: { 200: Type.Object({ topic: Type.String(), ticks: Type.Array(Tick) }), ...errors },
        },
      },
      async (request) => {
        const principal = await ctx.auth.principal(request);
        const topic = connectors.topicOf(principal.tenant, request.params.name);
        const ticks = ctx.connectors.topics
          .symbols(principal.tenant, topic)
          .flatMap((s) => (s.tick ? [s.tick] : []));
        return { topic, ticks };
      },
    );

    app.get(
      '/v1/connectors/:name/latest/:symbol',
      {
        schema: {
          tags: ['connectors'],
          summary: "A symbol's latest tick and depth",
          params: SymbolParams,
          response: {
            200: Type.Object({
              symbol: Type.String(),
              tick: Type.Union([Tick, Type.Null()]),
              depth: Type.Union([Depth, Type.Null()]),
            }),
            ...errors,
          },
        },
      },
      async (request) => {
        const principal = await ctx.auth.principal(request);
        const { name, symbol } = request.params;
        const latest = ctx.connectors.topics.latest(
          principal.tenant,
          connectors.topicOf(principal.tenant, name),
          symbol,
        );
        if (!latest) throw new SyncError('NOT_FOUND', `no value of ${symbol} yet`);
        return { symbol, ...latest };
      },
    );

    app.get(
      '/v1/connectors/:name/depth/:symbol',
      {
        schema: {
          tags: ['connectors'],
          summary: "A symbol's latest order book depth",
          params: SymbolParams,
          response: { 200: Depth, ...errors },
        },
      },
      async (request) => {
        const principal = await ctx.auth.principal(request);
        const { name, symbol } = request.params;
        const latest = ctx.connectors.topics.latest(
          principal.tenant,
          connectors.topicOf(principal.tenant, name),
          symbol,
        );
        if (!latest?.depth) throw new SyncError('NOT_FOUND', `no depth of ${symbol} yet`);
        return latest.depth;
      },
    );

    app.get(
      '/v1/connectors/:name/history/:symbol',
      {
        schema: {
          tags: ['connectors'],
          summary: "A symbol's ticks in a time range (stored ones and those not yet written)",
          params: SymbolParams,
          querystring: Type.Object({
            from: Type.Optional(Type.String({ description: 'ISO 8601 or ms since the epoch, inclusive' })),
            to: Type.Optional(Type.String({ description: 'ISO 8601 or ms since the epoch, exclusive' })),
            limit: Type.Integer({ minimum: 1, maximum: 10_000, default: 1000 }),
            order: Type.Union([Type.Literal('asc'), Type.Literal('desc')], { default: 'asc' }),
          }),
          response: { 200: Type.Object({ symbol: Type.String(), ticks: Type.Array(Tick) }), ...errors },
        },
      },
      async (request) => {
        const principal = await ctx.auth.principal(request);
        const { name, symbol } = request.params;
        const { limit, order } = request.query;
        const ticks = await connectors.history(principal.tenant, name, symbol, {
          from: parseTime(request.query.from, 'from'),
          to: parseTime(request.query.to, 'to'),
          limit,
          order,
        });
        return { symbol, ticks };
      },
    );
  };
