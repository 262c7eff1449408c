/** Who is calling: resolved from a JWT, a tenant API key or the admin key, always bound to one tenant. */
export interface Principal {
  tenant: string;
  user: string;
  roles: string[];
  /**
   * What the token says about the caller for access rules (`auth.claims` in docs/access-rules.md), e.g.
   * `{ locations: ['wh-1'] }`: the `claims` of a token this server minted, or the object at the configured
   * path of an outside issuer's token. Absent for API keys and the admin key, which bypass rules.
   */
  claims?: Record<string, unknown>;
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
