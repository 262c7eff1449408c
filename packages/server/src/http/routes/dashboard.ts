/**
 * The web dashboard at /dashboard: its page, script and stylesheet, bundled in memory from
 * packages/dashboard on the first request and then served from memory with an ETag. These routes are
 * open (outside /v1, like /docs): the page holds no data and no secret; every call it makes afterwards
 * is an ordinary authenticated /v1 call with the key or token the operator types in.
 */
import { dashboardAssets } from '@syncbridge/dashboard';
import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';

/** Same-origin only: no inline script, no CDN, no framing; the WebSocket goes back to this server. */
const CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "connect-src 'self'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ');

async function send(request: FastifyRequest, reply: FastifyReply, name: string): Promise<FastifyReply> {
  const file = (await dashboardAssets()).files.get(name);
  if (!file) {
    return reply.status(404).send({ error: { code: 'NOT_FOUND', message: `no dashboard file ${name}` } });
  }
  reply
    .header('ETag', file.etag)
    // Revalidated on every load (a 304 while the server runs the same build), never stale after an upgrade.
    .header('Cache-Control', 'no-cache')
    .header('Content-Security-Policy', CSP)
    .header('X-Content-Type-Options', 'nosniff')
    .header('Referrer-Policy', 'no-referrer')
    .header('X-Frame-Options', 'DENY')
    .header('Vary', 'Accept-Encoding');
  if (request.headers['if-none-match'] === file.etag) return reply.status(304).send();
  if (/\bgzip\b/.test(String(request.headers['accept-encoding'] ?? ''))) {
    return reply.header('Content-Encoding', 'gzip').type(file.contentType).send(file.gzip);
  }
  return reply.type(file.contentType).send(file.body);
}

export const dashboardRoutes: FastifyPluginAsync = async (app) => {
  const hide = { schema: { hide: true } };
  app.get('/dashboard', hide, async (_request, reply) => reply.redirect('/dashboard/', 302));
  app.get('/dashboard/', hide, async (request, reply) => send(request, reply, 'index.html'));
  app.get<{ Params: { file: string } }>('/dashboard/:file', hide, async (request, reply) =>
    send(request, reply, request.params.file),
  );
};
