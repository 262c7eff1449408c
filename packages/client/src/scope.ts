/**
 * The replica's scope: whose data it is. From the app's `replicaKey` when given, else from the token's
 * claims (`tenant` and `sub`), read without verifying the signature: the scope only chooses which local
 * data to show, and the server still checks every token. It must never guess: a token it cannot read
 * gives no scope, and the replica then stays off for the client's life.
 */
import type { TokenSource } from './connection.ts';

/** The `tenant` and `sub` claims of a JWT, unverified; null when it is not a JWT that has both. */
export function tokenScope(token: string): string | null {
  const payload = token.split('.')[1];
  if (!payload) return null;
  try {
    const base64 = payload.replace(/-/g, '+').replace(/_/g, '/');
    const padded = base64 + '='.repeat((4 - (base64.length % 4)) % 4);
    const bytes = Uint8Array.from(atob(padded), (c) => c.charCodeAt(0));
    const claims = JSON.parse(new TextDecoder().decode(bytes)) as { tenant?: unknown; sub?: unknown };
    if (typeof claims.tenant !== 'string' || typeof claims.sub !== 'string') return null;
    return JSON.stringify(['jwt', claims.tenant, claims.sub]);
  } catch {
    return null;
  }
}

/** How long a first token may take to tell the scope; past it the replica stays off. */
const SCOPE_TIMEOUT_MS = 10_000;
/** A token fetched for the scope is handed to the first connection attempt if it comes this soon. */
const SHARE_FIRST_TOKEN_MS = 5_000;

/**
 * The scope of a client: `replicaKey`, or the claims of its token. A token function is called once at
 * start for it (when that fails, as it may offline, or takes over 10 s, there is no scope), and the token
 * it gives is used by the first connection attempt, so the provider is not asked twice.
 */
export function resolveScope(
  replicaKey: string | undefined,
  token: TokenSource,
): { scope: Promise<string | null>; token: TokenSource } {
  if (replicaKey !== undefined) return { scope: Promise.resolve(JSON.stringify(['key', replicaKey])), token };
  if (typeof token === 'string') return { scope: Promise.resolve(tokenScope(token)), token };
  const provider = token;
  let first: Promise<string> | null = Promise.resolve().then(() => provider());
  const fetchedAt = Date.now();
  const claims = first.then(
    (value) => (typeof value === 'string' ? tokenScope(value) : null),
    () => null,
  );
  const scope = new Promise<string | null>((resolve) => {
    const timer = setTimeout(() => resolve(null), SCOPE_TIMEOUT_MS);
    void claims.then((value) => {
      clearTimeout(timer);
      resolve(value);
    });
  });
  const shared = (): string | Promise<string> => {
    const pending = first;
    first = null;
    if (pending && Date.now() - fetchedAt < SHARE_FIRST_TOKEN_MS) return pending;
    return provider();
  };
  return { scope, token: shared };
}
