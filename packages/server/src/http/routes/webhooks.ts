/**
 * Outbound webhooks over REST: registration, status, secret rotation, delivery history, retry and
 * replay. Tenant admins only (an endpoint receives the tenant's events, whoever wrote them).
 */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from '@sinclair/typebox';
import {
  DeliveriesQuery,
  DeliveriesResponse,
  Delivery,
  ErrorResponse,
  ReplayRequest,
  ReplayResponse,
  RotateSecretRequest,
  Webhook,
  WebhookCreateRequest,
  WebhookStatusRequest,
  WebhooksQuery,
  WebhooksResponse,
  WebhookUpdateRequest,
} from '@syncbridge/protocol';
import type { FastifyRequest } from 'fastify';
import { isTenantAdmin } from '../../auth/principal.ts';
import { SyncError } from '../../core/errors.ts';
import type { HttpContext } from '../context.ts';

const Id = Type.String({ minLength: 1, maxLength: 64 });
const WebhookParams = Type.Object({ id: Id });
const DeliveryParams = Type.Object({ id: Id, deliveryId: Id });
const errors = { 400: ErrorResponse, 401: ErrorResponse, 403: ErrorResponse, 404: ErrorResponse };

export const webhookRoutes =
  (ctx: HttpContext): FastifyPluginAsyncTypebox =>
  async (app) => {
    const webhooks = ctx.webhooks.service;
    const admin = async (request: FastifyRequest): Promise<string> => {
      const principal = await ctx.auth.principal(request);
      if (!isTenantAdmin(principal)) throw new SyncError('FORBIDDEN', 'only tenant admins manage webhooks');
      return principal.tenant;
    };

    app.post(
      '/v1/webhooks',
      {
        schema: {
          tags: ['webhooks'],
          summary: 'Register an endpoint; the answer is the only one that shows the whole secret',
          body: WebhookCreateRequest,
          response: { 201: Webhook, ...errors, 409: ErrorResponse },
        },
      },
      async (request, reply) => {
        const tenant = await admin(request);
        return reply.status(201).send(await webhooks.create(tenant, request.body));
      },
    );

    app.get(
      '/v1/webhooks',
      {
        schema: {
          tags: ['webhooks'],
          summary: "The tenant's endpoints with their counters",
          querystring: WebhooksQuery,
          response: { 200: WebhooksResponse, ...errors },
        },
      },
      async (request) => ({ webhooks: await webhooks.list(await admin(request), request.query) }),
    );

    app.get(
      '/v1/webhooks/:id',
      {
        schema: {
          tags: ['webhooks'],
          summary: 'One endpoint',
          params: WebhookParams,
          response: { 200: Webhook, ...errors },
        },
      },
      async (request) => webhooks.get(await admin(request), request.params.id),
    );

    app.patch(
      '/v1/webhooks/:id',
      {
        schema: {
          tags: ['webhooks'],
          summary: "Change an endpoint's settings (a new URL is checked again)",
          params: WebhookParams,
          body: WebhookUpdateRequest,
          response: { 200: Webhook, ...errors },
        },
      },
      async (request) => webhooks.update(await admin(request), request.params.id, request.body),
    );

    app.delete(
      '/v1/webhooks/:id',
      {
        schema: {
          tags: ['webhooks'],
          summary: 'Delete an endpoint with its queued deliveries and history',
          params: WebhookParams,
          response: { 204: Type.Null(), ...errors },
        },
      },
      async (request, reply) => {
        await webhooks.remove(await admin(request), request.params.id);
        return reply.status(204).send(null);
      },
    );

    app.put(
      '/v1/webhooks/:id/status',
      {
        schema: {
          tags: ['webhooks'],
          summary:
            'active, paused (deliveries wait) or disabled (nothing is queued); active clears the failure streak',
          params: WebhookParams,
          body: WebhookStatusRequest,
          response: { 200: Webhook, ...errors },
        },
      },
      async (request) => webhooks.setStatus(await admin(request), request.params.id, request.body.status),
    );

    app.post(
      '/v1/webhooks/:id/rotate-secret',
      {
        // A bare POST (no body) rotates to a generated secret.
        preValidation: async (request) => {
          request.body ??= {};
        },
        schema: {
          tags: ['webhooks'],
          summary: 'New signing secret; the previous one keeps signing too during the overlap',
          params: WebhookParams,
          body: RotateSecretRequest,
          response: { 200: Webhook, ...errors },
        },
      },
      async (request) => webhooks.rotateSecret(await admin(request), request.params.id, request.body ?? {}),
    );

    app.get(
      '/v1/webhooks/:id/deliveries',
      {
        schema: {
          tags: ['webhooks'],
          summary: 'Deliveries, newest first (status=failed: the dead letters)',
          params: WebhookParams,
          querystring: DeliveriesQuery,
          response: { 200: DeliveriesResponse, ...errors },
        },
      },
      async (request) => {
        const { status, limit = 100, attempts = false } = request.query;
        const tenant = await admin(request);
        return {
          deliveries: await webhooks.deliveries(tenant, request.params.id, { status, limit, attempts }),
        };
      },
    );

    app.get(
      '/v1/webhooks/:id/deliveries/:deliveryId',
      {
        schema: {
          tags: ['webhooks'],
          summary: 'One delivery with every attempt',
          params: DeliveryParams,
          response: { 200: Delivery, ...errors },
        },
      },
      async (request) =>
        webhooks.delivery(await admin(request), request.params.id, request.params.deliveryId),
    );

    app.post(
      '/v1/webhooks/:id/deliveries/:deliveryId/retry',
      {
        schema: {
          tags: ['webhooks'],
          summary: 'Send one delivery again now, with a fresh retry budget',
          params: DeliveryParams,
          response: { 202: Delivery, ...errors, 409: ErrorResponse },
        },
      },
      async (request, reply) => {
        const tenant = await admin(request);
        return reply
          .status(202)
          .send(await webhooks.retry(tenant, request.params.id, request.params.deliveryId));
      },
    );

    app.post(
      '/v1/webhooks/:id/replay',
      {
        schema: {
          tags: ['webhooks'],
          summary: 'Send again every event since a time that this endpoint receives',
          params: WebhookParams,
          body: ReplayRequest,
          response: { 202: ReplayResponse, ...errors },
        },
      },
      async (request, reply) => {
        const tenant = await admin(request);
        return reply
          .status(202)
          .send({ queued: await webhooks.replay(tenant, request.params.id, request.body) });
      },
    );
  };
