/**
 * REST authentication: `Authorization: Bearer <JWT>` or `X-Api-Key`, one of them (auth/credentials.ts).
 * A tenant key acts for its tenant; the admin key acts for the tenant named in `X-Tenant`. The resolved principal's tenant scopes every
 * query the route makes.
 */
import type { FastifyRequest } from 'fastify';
import type { ApiKeys, ResolvedKey } from '../auth/api-keys.ts';
import { soleCredential } from '../auth/credentials.ts';
import type { Principal } from '../auth/principal.ts';
import type { TokenService } from '../auth/tokens.ts';
import { SyncError } from '../core/errors.ts';

const TENANT = /^[A-Za-z0-9_.-]{1,128}$/;

/** Routes anyone may call, and routes that take an API key instead of a user (they check it themselves). */
const OPEN_ROUTES = new Set([
  '/v1/health',
  '/v1/ready',
  '/v1/auth/token',
  '/v1/tenants/:tenant/api-keys',
  // Inbound webhooks authenticate by their signature.
  '/v1/inbound/:source',
  // The SSE stream also takes ?access_token= (an EventSource sends no headers); it authenticates itself.
  '/v1/stream',
]);

/** Routes only an API key may call: the key is checked up front too, before the body is read. */
const KEY_ROUTES = new Set(['/v1/auth/token', '/v1/tenants/:tenant/api-keys']);

/** Whether a route acts for an authenticated user (and so is authenticated and rate-limited up front). */
export function isUserRoute(route: string | undefined): boolean {
  return route !== undefined && route.startsWith('/v1/') && !OPEN_ROUTES.has(route);
}

/**
 * X-Tenant chooses the tenant of the admin key only; beside a credential bound to a tenant (a token,
 * a tenant key) it must name that one, or the call would act (write) in a tenant the caller did not mean.
 */
export function checkNamedTenant(named: string | string[] | undefined, principal: Principal): void {
  if (principal.via !== 'admin_key' && named !== undefined && named !== principal.tenant) {
    throw new SyncError('FORBIDDEN', "X-Tenant names another tenant than the credential's own");
  }
}

export class RestAuthenticator {
  private readonly resolved = new WeakMap<FastifyRequest, Promise<Principal>>();
  private readonly resolvedKeys = new WeakMap<FastifyRequest, Promise<ResolvedKey>>();

  constructor(
    private readonly tokens: TokenService,
    private readonly keys: ApiKeys,
  ) {}

  /** The API key of the request, if it carries one (for routes only keys may call). */
  apiKey(request: FastifyRequest): Promise<ResolvedKey> {
    let found = this.resolvedKeys.get(request);
    if (!found) {
      found = this.keyOf(request);
      this.resolvedKeys.set(request, found);
    }
    return found;
  }

  private async keyOf(request: FastifyRequest): Promise<ResolvedKey> {
    const credential = soleCredential({
      authorization: request.headers.authorization,
      apiKey: request.headers['x-api-key'],
    });
    if (credential?.kind !== 'key') {
      throw new SyncError('UNAUTHORIZED', 'this call needs X-Api-Key (the admin key or a tenant API key)');
    }
    return this.resolveKey(credential.key);
  }

  private async resolveKey(header: string): Promise<ResolvedKey> {
    const key = await this.keys.resolve(header);
    if (!key) throw new SyncError('UNAUTHORIZED', 'unknown API key');
    return key;
  }

  /**
   * An onRequest hook: authenticates every /v1 route but the open ones before the body is read or
   * validated, so an unauthenticated caller learns nothing about what a route accepts.
   */
  readonly onRequest = async (request: FastifyRequest): Promise<void> => {
    const route = request.routeOptions.url;
    if (isUserRoute(route)) await this.principal(request);
    else if (route !== undefined && KEY_ROUTES.has(route)) await this.apiKey(request);
  };

  /** The caller, with the device named by `X-Device-Id` (recorded in the log) when it is valid. */
  principal(request: FastifyRequest): Promise<Principal> {
    let found = this.resolved.get(request);
    if (!found) {
      found = this.authenticate(request);
      this.resolved.set(request, found);
    }
    return found;
  }

  private async authenticate(request: FastifyRequest): Promise<Principal> {
    const principal = await this.resolvePrincipal(request);
    checkNamedTenant(request.headers['x-tenant'], principal);
    const device = request.headers['x-device-id'];
    if (device === undefined) return principal;
    if (typeof device !== 'string' || !/^[A-Za-z0-9_.:-]{1,128}$/.test(device)) {
      throw new SyncError('BAD_REQUEST', 'X-Device-Id must be 1-128 letters, digits or _.:-');
    }
    return { ...principal, deviceId: device };
  }

  private async resolvePrincipal(request: FastifyRequest): Promise<Principal> {
    const credential = soleCredential({
      authorization: request.headers.authorization,
      apiKey: request.headers['x-api-key'],
      strictScheme: true,
    });
    if (credential === null) {
      throw new SyncError('UNAUTHORIZED', 'send Authorization: Bearer <token> or X-Api-Key');
    }
    if (credential.kind === 'token') return (await this.tokens.verify(credential.token)).principal;
    const key = await this.resolveKey(credential.key);
    if (key.tenant !== null)
      return { tenant: key.tenant, user: `apikey:${key.id}`, roles: ['admin'], via: 'tenant_key' };
    const tenant = request.headers['x-tenant'];
    if (typeof tenant !== 'string' || !TENANT.test(tenant)) {
      throw new SyncError('BAD_REQUEST', 'with the admin key, name the tenant in the X-Tenant header');
    }
    return { tenant, user: 'admin', roles: ['admin'], via: 'admin_key' };
  }
}
