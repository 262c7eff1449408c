/**
 * REST rate limiting: every authenticated call takes a token from its user's and its tenant's bucket
 * (shared with the WebSocket path); an empty bucket answers 429 RATE_LIMITED with Retry-After.
 */
import type { FastifyReply, FastifyRequest } from 'fastify';
import { SyncError } from '../core/errors.ts';
import type { RateLimiter } from '../core/rate-limit.ts';
import { isUserRoute, type RestAuthenticator } from './authenticate.ts';

export function restRateLimit(auth: RestAuthenticator, limiter: RateLimiter) {
  return async (request: FastifyRequest, reply: FastifyReply): Promise<void> => {
    if (!isUserRoute(request.routeOptions.url)) return;
    const principal = await auth.principal(request);
    const decision = limiter.take(principal.tenant, principal.user);
    if (decision.ok) return;
    reply.header('Retry-After', String(Math.max(1, Math.ceil(decision.retryAfterMs / 1000))));
    throw new SyncError('RATE_LIMITED', 'too many requests; slow down', {
      retryAfterMs: decision.retryAfterMs,
    });
  };
}
