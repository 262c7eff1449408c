/**
 * The realtime log over plain HTTP, for clients whose proxies refuse WebSocket upgrades:
 * `GET /v1/stream` opens a server-sent-events stream of the channels named by `channels=` (served by the
 * realtime gateway, see realtime/sse-stream.ts), and `POST /v1/devices/{id}/ack` is the `ack` message
 * of the WebSocket (the other writes have their REST routes already). The stream authenticates with
 * `Authorization`/`X-Api-Key` or, for an EventSource that cannot send headers, `?access_token=`.
 */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from '@sinclair/typebox';
import { ErrorResponse, MAX_TOKEN_LENGTH, parseChannel } from '@syncbridge/protocol';
import { soleCredential } from '../../auth/credentials.ts';
import type { VerifiedToken } from '../../auth/tokens.ts';
import { SyncError } from '../../core/errors.ts';
import { parseStreamCursor } from '../../realtime/stream-cursor.ts';
import { checkNamedTenant } from '../authenticate.ts';
import type { HttpContext } from '../context.ts';

export const STREAM_PATH = '/v1/stream';
const MAX_STREAM_CHANNELS = 1000;
const DEVICE_ID = /^[A-Za-z0-9_.:-]{1,128}$/;

export const streamRoutes =
  (ctx: HttpContext): FastifyPluginAsyncTypebox =>
  async (app) => {
    app.get(
      STREAM_PATH,
      {
        schema: {
          tags: ['realtime'],
          summary: 'Server-sent events of channels (docs/protocol.md#server-sent-events)',
          querystring: Type.Object(
            {
              channels: Type.Array(Type.String({ minLength: 1, maxLength: 512 }), {
                maxItems: MAX_STREAM_CHANNELS,
                default: [],
              }),
              snapshot: Type.Array(Type.String({ minLength: 1, maxLength: 512 }), {
                maxItems: MAX_STREAM_CHANNELS,
                default: [],
              }),
              since: Type.Optional(Type.String({ maxLength: 20_000 })),
              access_token: Type.Optional(Type.String({ minLength: 1, maxLength: MAX_TOKEN_LENGTH })),
              deviceId: Type.Optional(Type.String({ pattern: DEVICE_ID.source })),
            },
            { additionalProperties: false },
          ),
          response: { 400: ErrorResponse, 401: ErrorResponse, 403: ErrorResponse, 503: ErrorResponse },
        },
      },
      async (request, reply) => {
        const origin = request.headers.origin;
        if (origin && !ctx.gateway.originAllowed(origin)) {
          throw new SyncError('FORBIDDEN', `origin ${origin} is not allowed`);
        }
        const { channels, snapshot, since, access_token: queryToken, deviceId } = request.query;
        const snapshots = new Set(snapshot);
        for (const channel of snapshots)
          if (!channels.includes(channel))
            throw new SyncError(
              'BAD_REQUEST',
              `snapshot names ${channel.slice(0, 80)}, which is not in channels`,
            );
        if (new Set(channels).size !== channels.length)
          throw new SyncError('BAD_REQUEST', 'a channel is named twice');
        for (const channel of channels) {
          const spec = parseChannel(channel);
          if ('error' in spec) throw new SyncError('BAD_REQUEST', `${channel.slice(0, 80)}: ${spec.error}`);
        }
        // Last-Event-ID (an EventSource resuming by itself) is newer than the URL's since.
        const lastEventId = request.headers['last-event-id'];
        const resumeFrom =
          typeof lastEventId === 'string' && lastEventId.length > 0 && channels.length > 0
            ? parseStreamCursor(lastEventId, channels.length, 'Last-Event-ID')
            : since !== undefined && channels.length > 0
              ? parseStreamCursor(since, channels.length, 'since')
              : channels.map(() => undefined);
        const verified = await verifyStreamCaller(ctx, request.headers, queryToken, () =>
          ctx.auth.principal(request),
        );
        const decision = ctx.rateLimiter.take(verified.principal.tenant, verified.principal.user);
        if (!decision.ok) {
          reply.header('Retry-After', String(Math.max(1, Math.ceil(decision.retryAfterMs / 1000))));
          throw new SyncError('RATE_LIMITED', 'too many requests; slow down', {
            retryAfterMs: decision.retryAfterMs,
          });
        }
        const refused = ctx.gateway.refuseStream();
        if (refused) throw refused;
        reply.hijack();
        const res = reply.raw;
        res.writeHead(200, {
          'Content-Type': 'text/event-stream; charset=utf-8',
          'Cache-Control': 'no-cache, no-transform',
          Connection: 'keep-alive',
          // nginx and some proxies buffer responses unless told not to.
          'X-Accel-Buffering': 'no',
        });
        // An EventSource waits this long before reconnecting by itself (its default is about 3 s).
        res.write('retry: 1000\n\n');
        res.socket?.setNoDelay(true);
        request.raw.socket.on('error', () => res.destroy());
        await ctx.gateway.openStream(res, {
          principal: verified.principal,
          expiresAt: verified.expiresAt,
          deviceId,
          channels,
          names: channels,
          snapshots,
          since: resumeFrom,
          remoteAddress: request.socket.remoteAddress,
        });
      },
    );

    app.post(
      '/v1/devices/:id/ack',
      {
        schema: {
          tags: ['devices'],
          summary: "The WebSocket's ack over HTTP: the device has processed everything up to seq",
          params: Type.Object({ id: Type.String({ pattern: DEVICE_ID.source }) }),
          body: Type.Object(
            { seq: Type.Integer({ minimum: 0, maximum: Number.MAX_SAFE_INTEGER }) },
            { additionalProperties: false },
          ),
          response: { 200: Type.Object({ cursor: Type.Integer() }), 400: ErrorResponse, 401: ErrorResponse },
        },
      },
      async (request) => {
        const principal = await ctx.auth.principal(request);
        const head = await ctx.devices.headSeq(principal.tenant);
        if (request.body.seq > head) {
          throw new SyncError(
            'BAD_REQUEST',
            `ack ${request.body.seq} is beyond the log's head (${head}); the cursor is unchanged`,
          );
        }
        const { tenant, user } = principal;
        await ctx.devices.saveCursor(tenant, user, request.params.id, request.body.seq);
        return { cursor: (await ctx.devices.getCursor(tenant, user, request.params.id)) ?? request.body.seq };
      },
    );
  };

/** The caller of a stream and when its token expires: query token, bearer token, or an API key. */
async function verifyStreamCaller(
  ctx: HttpContext,
  headers: Record<string, string | string[] | undefined>,
  queryToken: string | undefined,
  byKey: () => Promise<VerifiedToken['principal']>,
): Promise<Pick<VerifiedToken, 'principal' | 'expiresAt'>> {
  const credential = soleCredential({
    authorization: headers.authorization,
    apiKey: headers['x-api-key'],
    queryToken,
    strictScheme: true,
  });
  if (credential === null) {
    throw new SyncError('UNAUTHORIZED', 'send Authorization: Bearer <token>, X-Api-Key or ?access_token=');
  }
  if (credential.kind === 'token') {
    const verified = await ctx.tokens.verify(credential.token);
    checkNamedTenant(headers['x-tenant'], verified.principal);
    return verified;
  }
  return { principal: await byKey(), expiresAt: null };
}
