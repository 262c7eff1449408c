/**
 * `POST /v1/inbound/{source}`: webhooks other platforms send to syncbridge. No token: the request
 * authenticates by its signature, checked over the exact bytes received, so this route (and only it)
 * takes the body raw, whatever its content type.
 */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from '@sinclair/typebox';
import { ErrorResponse, InboundResponse } from '@syncbridge/protocol';
import type { HttpContext } from '../context.ts';

export const inboundRoutes =
  (ctx: HttpContext): FastifyPluginAsyncTypebox =>
  async (app) => {
    app.removeAllContentTypeParsers();
    app.addContentTypeParser('*', { parseAs: 'buffer' }, (_request, body, done) => done(null, body));

    app.post(
      '/v1/inbound/:source',
      {
        schema: {
          tags: ['inbound'],
          summary: "Receive a configured platform's webhook: signature checked, duplicates acknowledged",
          security: [],
          params: Type.Object({ source: Type.String({ minLength: 1, maxLength: 64 }) }),
          response: {
            200: InboundResponse,
            400: ErrorResponse,
            401: ErrorResponse,
            404: ErrorResponse,
          },
        },
      },
      async (request) => {
        const raw = Buffer.isBuffer(request.body) ? request.body : Buffer.alloc(0);
        return ctx.inbound.receive(request.params.source, raw, request.headers);
      },
    );
  };
