/**
 * Devices over REST: register (`POST /v1/devices`), list, read (with what is pending after the device's
 * cursor), change and forget. A device belongs to the user who registers it; tenant admins see and
 * manage every user's devices, naming the user with `?user=`.
 */
import { randomUUID } from 'node:crypto';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from '@sinclair/typebox';
import {
  Device,
  DeviceResponse,
  DevicesQuery,
  DevicesResponse,
  ErrorResponse,
  RegisterDeviceRequest,
  UpdateDeviceRequest,
} from '@syncbridge/protocol';
import { isTenantAdmin, type Principal } from '../../auth/principal.ts';
import { SyncError } from '../../core/errors.ts';
import { DeviceRegistry, PENDING_COUNT_LIMIT } from '../../devices/registry.ts';
import { readablePending } from '../../rules/pending.ts';
import type { HttpContext } from '../context.ts';

const DeviceParams = Type.Object({ id: Type.String({ minLength: 1, maxLength: 128 }) });

/** The user whose devices a call concerns: the caller, or for admins the `?user=` they name. */
function ownerOf(principal: Principal, user: string | undefined): string {
  if (user === undefined || user === principal.user) return principal.user;
  if (!isTenantAdmin(principal)) {
    throw new SyncError('FORBIDDEN', "only tenant admins may manage other users' devices");
  }
  return user;
}

export const deviceRoutes =
  (ctx: HttpContext): FastifyPluginAsyncTypebox =>
  async (app) => {
    const devices = new DeviceRegistry(ctx.devices, ctx.maxDevicesPerUser);

    app.post(
      '/v1/devices',
      {
        schema: {
          tags: ['devices'],
          summary: 'Register a device (or update the fields given, when its id is registered)',
          querystring: DevicesQuery,
          body: RegisterDeviceRequest,
          response: {
            200: Device,
            201: Device,
            400: ErrorResponse,
            401: ErrorResponse,
            403: ErrorResponse,
          },
        },
      },
      async (request, reply) => {
        const principal = await ctx.auth.principal(request);
        const user = ownerOf(principal, request.query.user);
        const { id = randomUUID(), ...info } = request.body;
        const existed = (await devices.get(principal.tenant, user, id)) !== null;
        const device = await devices.register(principal.tenant, user, id, info);
        if (existed) ctx.gateway.deviceChanged(principal.tenant, device);
        return reply.status(existed ? 200 : 201).send(device);
      },
    );

    app.get(
      '/v1/devices',
      {
        schema: {
          tags: ['devices'],
          summary: "The caller's devices (admins: a user's with ?user=, else every device of the tenant)",
          querystring: DevicesQuery,
          response: { 200: DevicesResponse, 401: ErrorResponse, 403: ErrorResponse },
        },
      },
      async (request) => {
        const principal = await ctx.auth.principal(request);
        const { user } = request.query;
        if (user === undefined && isTenantAdmin(principal)) {
          return { devices: await devices.list(principal.tenant) };
        }
        return { devices: await devices.list(principal.tenant, ownerOf(principal, user)) };
      },
    );

    app.get(
      '/v1/devices/:id',
      {
        schema: {
          tags: ['devices'],
          summary: 'One device, with what waits for it after its cursor (in its categories)',
          params: DeviceParams,
          querystring: DevicesQuery,
          response: { 200: DeviceResponse, 401: ErrorResponse, 403: ErrorResponse, 404: ErrorResponse },
        },
      },
      async (request) => {
        const principal = await ctx.auth.principal(request);
        const user = ownerOf(principal, request.query.user);
        const device = await devices.get(principal.tenant, user, request.params.id);
        if (!device) throw new SyncError('NOT_FOUND', `no device ${request.params.id}`);
        const counted = await devices.pending(principal.tenant, user, device.id, device.categories);
        // Counted as the caller would receive them: changes the access rules hide from it are left out.
        const pending = await readablePending(principal, counted, {
          collectionOf: (name) => ctx.collections.get(principal.tenant, name),
          readEvents: (query) => ctx.records.readEvents(principal.tenant, { ...query, kind: 'record' }),
          limit: PENDING_COUNT_LIMIT,
        });
        return { ...device, pending };
      },
    );

    app.patch(
      '/v1/devices/:id',
      {
        schema: {
          tags: ['devices'],
          summary: "Change a device's fields; new categories apply to its live connections at once",
          params: DeviceParams,
          querystring: DevicesQuery,
          body: UpdateDeviceRequest,
          response: {
            200: Device,
            400: ErrorResponse,
            401: ErrorResponse,
            403: ErrorResponse,
            404: ErrorResponse,
          },
        },
      },
      async (request) => {
        const principal = await ctx.auth.principal(request);
        const user = ownerOf(principal, request.query.user);
        if (!(await devices.get(principal.tenant, user, request.params.id))) {
          throw new SyncError('NOT_FOUND', `no device ${request.params.id}`);
        }
        const device = await devices.register(principal.tenant, user, request.params.id, request.body);
        ctx.gateway.deviceChanged(principal.tenant, device);
        return device;
      },
    );

    app.delete(
      '/v1/devices/:id',
      {
        schema: {
          tags: ['devices'],
          summary: 'Forget a device and its cursor (its live connections keep their current categories)',
          params: DeviceParams,
          querystring: DevicesQuery,
          response: { 204: Type.Null(), 401: ErrorResponse, 403: ErrorResponse, 404: ErrorResponse },
        },
      },
      async (request, reply) => {
        const principal = await ctx.auth.principal(request);
        const user = ownerOf(principal, request.query.user);
        if (!(await devices.remove(principal.tenant, user, request.params.id))) {
          throw new SyncError('NOT_FOUND', `no device ${request.params.id}`);
        }
        return reply.status(204).send(null);
      },
    );
  };
