/** Who is calling: resolved from a JWT, a tenant API key or the admin key, always bound to one tenant. */
export interface Principal {
  tenant: string;
  user: string;
  roles: string[];
  /** The outside platform this caller speaks for (`platform` claim); pins the `source` of its events. */
  platform?: string;
  /** The device the caller writes from (WS `hello`/`?deviceId=`, REST `X-Device-Id`), recorded in the log. */
  deviceId?: string;
  /** How the caller authenticated. */
  via: 'jwt' | 'tenant_key' | 'admin_key';
}

/** Tenant administrators may change collection settings and see every connection of the tenant. */
export function isTenantAdmin(p: Principal): boolean {
  return p.via !== 'jwt' || p.roles.includes('admin');
}
