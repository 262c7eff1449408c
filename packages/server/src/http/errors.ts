/**
 * The one place where errors become HTTP responses: SyncErrors keep their code and status, Fastify's
 * own errors (validation, body size, bad JSON, unknown route) are translated to DESIGN.md codes, and
 * anything else is an opaque INTERNAL error: no message, no stack.
 */
import { STATUS_CODES } from 'node:http';
import type { Duplex } from 'node:stream';
import { type ErrorCode, HTTP_STATUS } from '@syncbridge/protocol';
import type { FastifyError, FastifyInstance } from 'fastify';
import { SyncError } from '../core/errors.ts';

function fromFastify(
  err: FastifyError,
): { status: number; code: ErrorCode; message: string; details?: unknown } | null {
  if (err.validation) {
    const where = err.validationContext ?? 'request';
    return {
      status: 400,
      code: 'BAD_REQUEST',
      message: `invalid ${where}: ${err.message.replace(/^(body|querystring|params|headers)\/?/, '')}`,
      details: err.validation.map((v) => ({
        path: v.instancePath || '/',
        message: v.message,
        params: v.params,
      })),
    };
  }
  switch (err.code) {
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return { status: 413, code: 'PAYLOAD_TOO_LARGE', message: 'request body is too large' };
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return { status: 415, code: 'BAD_REQUEST', message: 'send JSON (Content-Type: application/json)' };
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
      return { status: 400, code: 'BAD_REQUEST', message: 'request body is empty' };
    case 'FST_ERR_CTP_INVALID_CONTENT_LENGTH':
      return { status: 400, code: 'BAD_REQUEST', message: 'invalid Content-Length' };
  }
  if (err instanceof SyntaxError || err.code === 'FST_ERR_CTP_INVALID_JSON_BODY') {
    return { status: 400, code: 'BAD_REQUEST', message: 'request body is not valid JSON' };
  }
  if (typeof err.statusCode === 'number' && err.statusCode >= 400 && err.statusCode < 500) {
    return { status: err.statusCode, code: 'BAD_REQUEST', message: err.message };
  }
  return null;
}

export function installErrorHandling(app: FastifyInstance): void {
  app.setErrorHandler((err: FastifyError, request, reply) => {
    if (err instanceof SyncError) {
      const body = {
        error: {
          code: err.code,
          message: err.message,
          ...(err.details === undefined ? {} : { details: err.details }),
        },
      };
      if (err.code === 'RATE_LIMITED' && !reply.hasHeader('Retry-After')) reply.header('Retry-After', '1');
      return reply.status(HTTP_STATUS[err.code]).send(body);
    }
    const mapped = fromFastify(err);
    if (mapped) {
      const { status, ...error } = mapped;
      return reply.status(status).send({ error });
    }
    request.log.error({ err }, 'request failed');
    return reply.status(500).send({ error: { code: 'INTERNAL', message: 'internal error' } });
  });
  app.setNotFoundHandler((request, reply) =>
    reply.status(404).send({
      error: { code: 'NOT_FOUND', message: `no route ${request.method} ${request.url.split('?')[0]}` },
    }),
  );
}

/**
 * Requests Node's HTTP parser refuses before Fastify sees them (a head over the header size limit, a
 * malformed request line, a head that took too long) still get the API's error shape, then the socket
 * is closed as Node would.
 */
export function clientErrorHandler(err: NodeJS.ErrnoException, socket: Duplex): void {
  if (err.code === 'ECONNRESET' || socket.destroyed) return;
  const [status, code, message] =
    err.code === 'HPE_HEADER_OVERFLOW'
      ? [431, 'PAYLOAD_TOO_LARGE', 'the request line and headers are too large']
      : err.code === 'ERR_HTTP_REQUEST_TIMEOUT'
        ? [408, 'BAD_REQUEST', 'the request head took too long to arrive']
        : [400, 'BAD_REQUEST', 'the request is not valid HTTP'];
  const body = JSON.stringify({ error: { code, message } });
  if (socket.writable) {
    socket.write(
      `HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\nContent-Length: ${Buffer.byteLength(body)}\r\n` +
        `Content-Type: application/json; charset=utf-8\r\nConnection: close\r\n\r\n${body}`,
    );
  }
  socket.destroy(err);
}
