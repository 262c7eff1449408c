/**
 * The operator's credentials for this browser tab: an API key (the admin key with a tenant, or a tenant
 * key) or a user token. Kept in sessionStorage only (gone when the tab closes), never put in a URL.
 */

export interface Session {
  tenant: string;
  kind: 'key' | 'token';
  secret: string;
}

const STORAGE_KEY = 'syncbridge.dashboard.session';

/** A JWT has three base64url parts; anything else is taken for an API key. */
export function looksLikeToken(secret: string): boolean {
  return /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/.test(secret);
}

/** The `tenant` claim of a token (read for display only; the server verifies the token). */
export function tokenTenant(token: string): string | null {
  try {
    const part = token.split('.')[1]!.replace(/-/g, '+').replace(/_/g, '/');
    const claims = JSON.parse(atob(part)) as { tenant?: unknown };
    return typeof claims.tenant === 'string' ? claims.tenant : null;
  } catch {
    return null;
  }
}

/**
 * Whether the session acts as a tenant admin: an API key, or a token with the `admin` role (read for
 * display only: the server decides). Other users see the pages whose REST routes answer them, under the
 * tenant's access rules; admin pages are left out.
 */
export function isAdminSession(session: Session): boolean {
  if (session.kind === 'key') return true;
  try {
    const part = session.secret.split('.')[1]!.replace(/-/g, '+').replace(/_/g, '/');
    const claims = JSON.parse(atob(part)) as { roles?: unknown };
    return Array.isArray(claims.roles) && claims.roles.includes('admin');
  } catch {
    return false;
  }
}

export function loadSession(): Session | null {
  try {
    const raw = sessionStorage.getItem(STORAGE_KEY);
    if (!raw) return null;
    const s = JSON.parse(raw) as Partial<Session>;
    if (typeof s.tenant !== 'string' || typeof s.secret !== 'string') return null;
    if (s.kind !== 'key' && s.kind !== 'token') return null;
    return { tenant: s.tenant, kind: s.kind, secret: s.secret };
  } catch {
    return null;
  }
}

export function saveSession(session: Session): void {
  sessionStorage.setItem(STORAGE_KEY, JSON.stringify(session));
}

export function clearSession(): void {
  sessionStorage.removeItem(STORAGE_KEY);
}
