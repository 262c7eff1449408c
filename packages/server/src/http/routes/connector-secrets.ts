/**
 * Connector secrets over REST (tenant admins): set, list and delete the values a tenant's connectors
 * read as `{{secrets.NAME}}` (an upstream's API key). A value goes in once and never comes out: every
 * answer holds names and times only.
 */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from '@sinclair/typebox';
import { ErrorResponse } from '@syncbridge/protocol';
import { isTenantAdmin } from '../../auth/principal.ts';
import { SECRET_NAME_PATTERN } from '../../connectors/template-policy.ts';
import { SyncError } from '../../core/errors.ts';
import type { HttpContext } from '../context.ts';

const SecretParams = Type.Object({ name: Type.String({ pattern: SECRET_NAME_PATTERN }) });
const SecretInfo = Type.Object(
  { name: Type.String(), createdAt: Type.String(), updatedAt: Type.String() },
  { additionalProperties: false },
);
const errors = { 400: ErrorResponse, 401: ErrorResponse, 403: ErrorResponse };

export const connectorSecretRoutes =
  (ctx: HttpContext): FastifyPluginAsyncTypebox =>
  async (app) => {
    const secrets = ctx.connectors.secrets;
    const admin = async (request: Parameters<typeof ctx.auth.principal>[0]) => {
      const principal = await ctx.auth.principal(request);
      if (!isTenantAdmin(principal)) throw new SyncError('FORBIDDEN', 'only tenant admins may do this');
      return principal;
    };

    app.get(
      '/v1/connector-secrets',
      {
        schema: {
          tags: ['connectors'],
          summary: "The tenant's connector secrets: names and times, never values (tenant admin)",
          response: { 200: Type.Object({ secrets: Type.Array(SecretInfo) }), ...errors },
        },
      },
      async (request) => {
        const principal = await admin(request);
        return { secrets: await secrets.list(principal.tenant) };
      },
    );

    app.put(
      '/v1/connector-secrets/:name',
      {
        schema: {
          tags: ['connectors'],
          summary:
            'Set a connector secret, read by templates as {{secrets.NAME}}; stored encrypted (tenant admin)',
          params: SecretParams,
          body: Type.Object(
            { value: Type.String({ minLength: 1, maxLength: 16_384 }) },
            { additionalProperties: false },
          ),
          response: { 200: SecretInfo, ...errors, 503: ErrorResponse },
        },
      },
      async (request) => {
        const principal = await admin(request);
        return secrets.set(principal.tenant, request.params.name, request.body.value);
      },
    );

    app.delete(
      '/v1/connector-secrets/:name',
      {
        schema: {
          tags: ['connectors'],
          summary: 'Delete a connector secret; connectors naming it fail their next connect (tenant admin)',
          params: SecretParams,
          response: { 204: Type.Null(), ...errors, 404: ErrorResponse },
        },
      },
      async (request, reply) => {
        const principal = await admin(request);
        if (!(await secrets.delete(principal.tenant, request.params.name))) {
          throw new SyncError('NOT_FOUND', `no connector secret ${request.params.name}`);
        }
        return reply.status(204).send(null);
      },
    );
  };
