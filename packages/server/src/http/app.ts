/**
 * The Fastify application: JSON parsing (also `application/merge-patch+json`), request validation
 * from the protocol's TypeBox schemas, the OpenAPI document generated from those same schemas at
 * /docs, and the routes.
 */
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { Ajv } from 'ajv';
import addFormats from 'ajv-formats';
import Fastify, {
  type FastifyBaseLogger,
  type FastifyError,
  type FastifyInstance,
  type FastifyReply,
  type FastifyRequest,
} from 'fastify';
import type { Logger } from 'pino';
import { SyncError } from '../core/errors.ts';
import { assertNoNul } from '../core/nul.ts';
import type { HttpContext } from './context.ts';
import { clientErrorHandler, installErrorHandling } from './errors.ts';
import { lazySerializerFactory, lazyValidator } from './lazy-compile.ts';
import { restRateLimit } from './rate-limit.ts';
import { branchRoutes } from './routes/branches.ts';
import { collectionRoutes } from './routes/collections.ts';
import { conflictRoutes } from './routes/conflicts.ts';
import { connectorSecretRoutes } from './routes/connector-secrets.ts';
import { connectorRoutes } from './routes/connectors.ts';
import { dashboardRoutes } from './routes/dashboard.ts';
import { deviceRoutes } from './routes/devices.ts';
import { eventRoutes } from './routes/events.ts';
import { inboundRoutes } from './routes/inbound.ts';
import { recordRoutes } from './routes/records.ts';
import { secretsKeyRoutes } from './routes/secrets-key.ts';
import { streamRoutes } from './routes/stream.ts';
import { syncRoutes } from './routes/sync.ts';
import { systemRoutes } from './routes/system.ts';
import { webhookRoutes } from './routes/webhooks.ts';

/**
 * Fastify's JSON parser (which refuses `__proto__` and `constructor.prototype` keys), with two changes:
 * a body that is not UTF-8 is refused (Fastify would decode it lossily), and a body refused for such a
 * key says so, in the words WebSocket frames get from core/json-limits.ts,
 * instead of "not valid JSON".
 */
type ContentTypeParser = (
  request: FastifyRequest,
  body: string | Buffer,
  done: (err: Error | null, value?: unknown) => void,
) => void;

/** Strict: bytes that are not UTF-8 are refused, not replaced with U+FFFD and stored as if sent. */
const utf8 = new TextDecoder('utf-8', { fatal: true });

function jsonBodyParser(app: FastifyInstance): ContentTypeParser {
  const parse = app.getDefaultJsonParser('error', 'error');
  return (request, raw, done) => {
    const encoding = request.headers['content-encoding'];
    if (encoding && encoding.toLowerCase() !== 'identity') {
      // Not decoded here: a compressed body would otherwise be refused as "not valid JSON".
      const message = `Content-Encoding ${encoding} is not supported: send the body uncompressed`;
      return done(Object.assign(new Error(message), { statusCode: 415 }), undefined);
    }
    let body: string;
    try {
      body = typeof raw === 'string' ? raw : utf8.decode(raw);
    } catch {
      return done(new SyncError('BAD_REQUEST', 'request body is not valid UTF-8'), undefined);
    }
    void parse(request, body, (err, value) => {
      if (err && (err as FastifyError).code === 'FST_ERR_CTP_INVALID_JSON_BODY') {
        try {
          JSON.parse(body as string);
        } catch {
          return done(err, undefined);
        }
        return done(
          new SyncError(
            'BAD_REQUEST',
            'request body: keys "__proto__" and "prototype" inside "constructor" are not accepted',
          ),
          undefined,
        );
      }
      done(err, value);
    });
  };
}

export async function buildHttpApp(ctx: HttpContext, logger: Logger): Promise<FastifyInstance> {
  const app = Fastify({
    // Request lines are debug noise at this rate; errors still log at error level.
    loggerInstance: logger.child({ component: 'http' }, { level: 'warn' }) as FastifyBaseLogger,
    bodyLimit: ctx.maxBodyBytes,
    // Record ids may be 256 characters (more once percent-encoded); their schema decides, not the router.
    routerOptions: { maxParamLength: 4096 },
    // URLs the router cannot take still get an error in the API's shape.
    frameworkErrors: (err, _request, reply) =>
      (reply as FastifyReply).status(err.statusCode && err.statusCode < 500 ? err.statusCode : 400).send({
        error: {
          code: 'BAD_REQUEST',
          message:
            err.code === 'FST_ERR_MAX_PARAM_LENGTH' ? 'a path segment is too long' : 'the URL is not valid',
        },
      }),
    clientErrorHandler,
    return503OnClosing: true,
    forceCloseConnections: 'idle',
    // The whole request, body included: without it (Fastify's default is none) a body dripped a byte
    // at a time holds a socket for as long as the client likes.
    requestTimeout: Math.max(ctx.requestTimeoutMs ?? 30_000, ctx.headersTimeoutMs ?? 10_000),
    // Response serializers are compiled on each route's first reply, not at start (lazy-compile.ts).
    schemaController: { compilersFactory: { buildSerializer: lazySerializerFactory } },
    // A request head (an upgrade's too) sent a byte at a time must not hold a socket for minutes:
    // Node checks this every connectionsCheckingInterval, so that is kept well under the timeout.
    http: {
      headersTimeout: ctx.headersTimeoutMs ?? 10_000,
      connectionsCheckingInterval: Math.min(1_000, Math.ceil((ctx.headersTimeoutMs ?? 10_000) / 2)),
    },
  }).withTypeProvider<TypeBoxTypeProvider>();

  // Querystring, params and headers are text, so their values are coerced to the schema's types;
  // JSON bodies keep theirs: `{"type":42}` or `{"priority":"7"}` is refused, as it is over WebSocket.
  const validators = {
    text: new Ajv({ removeAdditional: false, coerceTypes: 'array', useDefaults: true, allErrors: true }),
    body: new Ajv({ removeAdditional: false, coerceTypes: false, useDefaults: true, allErrors: true }),
  };
  for (const ajv of Object.values(validators)) (addFormats as unknown as (ajv: Ajv) => void)(ajv);
  // Compiled on each route's first request, not at start (lazy-compile.ts).
  app.setValidatorCompiler(({ schema, httpPart }) =>
    lazyValidator(() => (httpPart === 'body' ? validators.body : validators.text).compile(schema)),
  );

  // Bodies are JSON only: text/plain gets 415 like any other media type, not a confusing schema error.
  app.removeContentTypeParser('text/plain');
  app.removeContentTypeParser('application/json');
  app.addContentTypeParser(
    ['application/json', 'application/merge-patch+json'],
    { parseAs: 'buffer' },
    jsonBodyParser(app),
  );
  // Shutting down: a kept-alive connection (an SSE client's REST requests) is closed as soon as it is
  // idle, not at the client's idle timeout, so the close does not wait seconds for it.
  app.addHook('preClose', async () => {
    const idle = setInterval(() => app.server.closeIdleConnections(), 50).unref();
    app.server.once('close', () => clearInterval(idle));
  });
  installErrorHandling(app);
  // U+0000 is refused in every part of a request before any store sees it (core/nul.ts).
  app.addHook('preValidation', async (request) => {
    // Spread: the router's params and the query parser's object are not plain objects.
    assertNoNul({ ...(request.params as object) }, 'the URL');
    assertNoNul({ ...(request.query as object) }, 'the query string');
    assertNoNul(request.body, 'the request body');
  });
  app.addHook('onRequest', ctx.auth.onRequest);
  app.addHook('onRequest', restRateLimit(ctx.auth, ctx.rateLimiter));

  await app.register(swagger, {
    openapi: {
      openapi: '3.1.0',
      info: {
        title: 'syncbridge',
        version: '0.1.0',
        description:
          'Real-time data synchronization: records, domain events and one ordered log per tenant. ' +
          'The realtime WebSocket protocol lives at GET /v1/realtime, its server-sent-events twin at ' +
          'GET /v1/stream (see docs/protocol.md).',
      },
      components: {
        securitySchemes: {
          bearer: { type: 'http', scheme: 'bearer', bearerFormat: 'JWT' },
          apiKey: { type: 'apiKey', in: 'header', name: 'X-Api-Key' },
          // Not a secret, but declared as a scheme so that "Authorize" in /docs sends it on every call:
          // the server-wide admin key acts on the tenant this header names.
          tenant: {
            type: 'apiKey',
            in: 'header',
            name: 'X-Tenant',
            description: 'with the server-wide admin key in X-Api-Key: the tenant the call acts on',
          },
        },
      },
      // Either a user token, a tenant API key, or the admin key with the tenant it acts on.
      security: [{ bearer: [] }, { apiKey: [] }, { apiKey: [], tenant: [] }],
    },
  });
  await app.register(swaggerUi, { routePrefix: '/docs' });

  await app.register(systemRoutes(ctx));
  await app.register(recordRoutes(ctx));
  await app.register(branchRoutes(ctx));
  await app.register(eventRoutes(ctx));
  await app.register(collectionRoutes(ctx));
  await app.register(conflictRoutes(ctx));
  await app.register(deviceRoutes(ctx));
  await app.register(webhookRoutes(ctx));
  await app.register(syncRoutes(ctx));
  await app.register(streamRoutes(ctx));
  await app.register(inboundRoutes(ctx));
  await app.register(connectorRoutes(ctx));
  await app.register(connectorSecretRoutes(ctx));
  await app.register(secretsKeyRoutes(ctx));
  await app.register(dashboardRoutes);
  return app;
}
