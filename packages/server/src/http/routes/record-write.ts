/**
 * One REST record write (put, merge-patch, delete) through the LogWriter, with `If-Match` as the base
 * version and `Idempotency-Key` as the mid: shared by the record routes and the branch routes, so a
 * write answers the same way on the main line and on a branch.
 */
import { randomUUID } from 'node:crypto';
import { type ErrorCode, HTTP_STATUS, type Mutation, type MutationOp } from '@syncbridge/protocol';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { SyncError } from '../../core/errors.ts';
import type { HttpContext } from '../context.ts';

export function parseIfMatch(header: string | undefined): number | undefined {
  if (header === undefined) return undefined;
  const m = /^\s*(?:W\/)?"?(\d{1,15})"?\s*$/.exec(header);
  if (!m) throw new SyncError('BAD_REQUEST', 'If-Match must be a record version, e.g. If-Match: "3"');
  return Number(m[1]);
}

export async function writeRecord(
  ctx: HttpContext,
  request: FastifyRequest,
  reply: FastifyReply,
  params: { collection: string; id: string },
  op: MutationOp,
  data?: Record<string, unknown>,
) {
  const principal = await ctx.auth.principal(request);
  const mutation: Mutation = {
    mid: (request.headers['idempotency-key'] as string | undefined) ?? randomUUID(),
    collection: params.collection,
    id: params.id,
    op,
  };
  if (data !== undefined) mutation.data = data;
  const baseVersion = parseIfMatch(request.headers['if-match'] as string | undefined);
  if (baseVersion !== undefined) mutation.baseVersion = baseVersion;
  const [result] = await ctx.writer.mutate(principal, [mutation]);
  if (!result) throw new SyncError('INTERNAL', 'no result');
  // A replayed Idempotency-Key answers as the first attempt did, also when that one was refused.
  const outcome = result.status === 'duplicate' ? result.originalStatus : result.status;
  if (result.status === 'duplicate') reply.header('Idempotent-Replayed', 'true');
  if (outcome === 'rejected' || outcome === 'conflict') {
    const code = (result.error?.code ?? 'CONFLICT') as ErrorCode;
    // A schema's problems (a list) go under `problems`; a refusal that says where (an object such as
    // `{ path, limit }` for data JSON cannot store) keeps its fields, as over WebSocket and for NUL.
    const reason = result.error?.details;
    const details =
      result.record || reason
        ? {
            ...(result.record ? { record: result.record } : {}),
            ...(result.conflictId ? { conflictId: result.conflictId } : {}),
            ...(Array.isArray(reason) ? { problems: reason } : (reason as object | undefined)),
          }
        : undefined;
    throw new SyncError(
      HTTP_STATUS[code] ? code : 'BAD_REQUEST',
      result.error?.message ?? 'rejected',
      details,
    );
  }
  const record = result.record;
  // A replayed key of a write whose record the caller may not read comes back without it.
  if (!record) throw new SyncError('CONFLICT', 'this Idempotency-Key was used for another write');
  reply.header('ETag', `"${record.version}"`);
  if (result.seq !== undefined) reply.header('X-Seq', String(result.seq));
  return reply.status(record.version === 1 && result.status === 'applied' ? 201 : 200).send(record);
}
