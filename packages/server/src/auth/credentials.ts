/**
 * The one credential of a request: `Authorization: Bearer <JWT>`, `X-Api-Key`, or a token in the URL
 * where a route takes one (`?token=` at the WebSocket upgrade, `?access_token=` on the SSE stream).
 * A caller sends exactly one. Two that differ (a token and a key, or two different tokens) are refused
 * UNAUTHORIZED before either is checked, whichever would have been valid: picking one would let a
 * credential the caller did not mean (a proxy's, a stale one) act, and hide the other's failure.
 * The same token sent twice (in the URL and in the header) is one credential.
 */
import { SyncError } from '@syncbridge/protocol';
import { bearerToken } from './tokens.ts';

export type Credential = { kind: 'token'; token: string } | { kind: 'key'; key: string };

export interface CredentialSources {
  /** The `Authorization` header, as received. */
  authorization?: string | string[] | undefined;
  /** The `X-Api-Key` header, as received (the routes that take one). */
  apiKey?: string | string[] | undefined;
  /** A token from the URL, where the route takes one. */
  queryToken?: string | null | undefined;
  /**
   * Whether an `Authorization` header with another scheme is refused (REST) or left aside (the
   * WebSocket upgrade, where a proxy's own `Basic` header may reach the server).
   */
  strictScheme?: boolean;
}

export const TWO_CREDENTIALS =
  'send one credential (Authorization: Bearer, X-Api-Key or a token in the URL), not two that differ';

/** The request's single credential, or null when it has none; throws UNAUTHORIZED on a conflict. */
export function soleCredential(sources: CredentialSources): Credential | null {
  const tokens = new Set<string>();
  const { authorization, apiKey, queryToken } = sources;
  if (queryToken !== undefined && queryToken !== null && queryToken.length > 0) tokens.add(queryToken);
  if (typeof authorization === 'string' && authorization.length > 0) {
    const token = bearerToken(authorization);
    if (token !== null && token.length > 0) tokens.add(token);
    else if (sources.strictScheme) throw new SyncError('UNAUTHORIZED', 'use Authorization: Bearer <token>');
  }
  const hasKey = apiKey !== undefined;
  if (tokens.size + (hasKey ? 1 : 0) > 1) throw new SyncError('UNAUTHORIZED', TWO_CREDENTIALS);
  if (hasKey) {
    if (typeof apiKey !== 'string' || apiKey.length === 0) {
      throw new SyncError('UNAUTHORIZED', 'X-Api-Key is empty or sent twice');
    }
    return { kind: 'key', key: apiKey };
  }
  const [token] = tokens;
  return token === undefined ? null : { kind: 'token', token };
}
