import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { Static } from '@sinclair/typebox';
import { Type } from '@sinclair/typebox';
import {
  CollectionRef,
  ErrorResponse,
  HistoryResponse,
  MutationsRequest,
  MutationsResponse,
  RecordBody,
  RecordId,
  RecordsQuery,
  RecordsResponse,
  RecordVersionResponse,
  SyncRecord,
} from '@syncbridge/protocol';
import type { FastifyReply } from 'fastify';
import type { Principal } from '../../auth/principal.ts';
import { assertFilterable } from '../../core/collections.ts';
import { SyncError } from '../../core/errors.ts';
import { diffRecords } from '../../core/merge.ts';
import { readIsRuled } from '../../rules/decide.ts';
import { fillPage, readableRecord, readableVersion } from '../../rules/reads.ts';
import type { HttpContext } from '../context.ts';
import { writeRecord } from './record-write.ts';

const RecordParams = Type.Object({ collection: CollectionRef, id: RecordId });
const CollectionParams = Type.Object({ collection: CollectionRef });
const WriteHeaders = Type.Object({
  'if-match': Type.Optional(Type.String({ description: 'the version this change is based on' })),
  'idempotency-key': Type.Optional(Type.String({ minLength: 1, maxLength: 128 })),
});
const writeResponses = {
  200: SyncRecord,
  201: SyncRecord,
  400: ErrorResponse,
  401: ErrorResponse,
  404: ErrorResponse,
  409: ErrorResponse,
};

export const recordRoutes =
  (ctx: HttpContext): FastifyPluginAsyncTypebox =>
  async (app) => {
    app.get(
      '/v1/records/:collection',
      {
        schema: {
          tags: ['records'],
          summary: 'List records, filtered by data fields (?field=value) and paged by id',
          params: CollectionParams,
          querystring: RecordsQuery,
          response: { 200: RecordsResponse, 400: ErrorResponse, 401: ErrorResponse },
        },
      },
      async (request) => {
        const principal = await ctx.auth.principal(request);
        const { limit = 100, after, includeDeleted = false, ...rest } = request.query;
        const filter: Record<string, string> = {};
        for (const [field, value] of Object.entries(rest)) {
          if (!/^[A-Za-z0-9_.-]{1,128}$/.test(field))
            throw new SyncError('BAD_REQUEST', `"${field}" is not a field name`);
          // As on a channel (protocol channels.ts): a __proto__ field would drop out of the filter and
          // match every record; a field given twice arrives as an array.
          if (field === '__proto__')
            throw new SyncError('BAD_REQUEST', 'filter field "__proto__" is not accepted');
          if (Array.isArray(value))
            throw new SyncError('BAD_REQUEST', `filter field "${field}" is given twice`);
          filter[field] = String(value);
        }
        const collection = await ctx.collections.get(principal.tenant, request.params.collection);
        assertFilterable(collection.settings, filter);
        const read = (from: string | undefined, size: number) =>
          ctx.records.listRecords(principal.tenant, request.params.collection, {
            limit: size,
            after: from,
            filter,
            includeDeleted,
          });
        if (readIsRuled(principal, collection)) {
          // The filter and the rules combine: pages hold only records the caller may read.
          const { items, more } = await fillPage({
            limit,
            start: after,
            read,
            cursorOf: (r) => r.id,
            keep: (rs) => rs.flatMap((r) => readableRecord(principal, collection, r) ?? []),
          });
          return more ? { records: items, next: items[items.length - 1]!.id } : { records: items };
        }
        const records = await read(after, limit + 1);
        const page = records.slice(0, limit);
        return records.length > limit
          ? { records: page, next: page[page.length - 1]!.id }
          : { records: page };
      },
    );

    app.get(
      '/v1/records/:collection/:id',
      {
        schema: {
          tags: ['records'],
          summary: 'Read one record; ETag is its version. With ?version=N: the record as it was then',
          params: RecordParams,
          querystring: Type.Object({
            version: Type.Optional(Type.Integer({ minimum: 1, maximum: Number.MAX_SAFE_INTEGER })),
          }),
          response: {
            200: Type.Union([SyncRecord, RecordVersionResponse]),
            401: ErrorResponse,
            404: ErrorResponse,
          },
        },
      },
      async (request, reply) => {
        const principal = await ctx.auth.principal(request);
        const { version } = request.query;
        if (version !== undefined) {
          const { collection, id } = request.params;
          return keptVersion(ctx, principal, collection, id, version);
        }
        const record = await ctx.records.getRecord(
          principal.tenant,
          request.params.collection,
          request.params.id,
        );
        if (!record || record.deleted) throw new SyncError('NOT_FOUND', 'record not found');
        const collection = await ctx.collections.get(principal.tenant, request.params.collection);
        const visible = readableRecord(principal, collection, record);
        if (!visible) throw new SyncError('NOT_FOUND', 'record not found');
        const etag = `"${record.version}"`;
        reply.header('ETag', etag);
        if (request.headers['if-none-match'] === etag) return (reply as FastifyReply).status(304).send();
        return visible;
      },
    );

    app.put(
      '/v1/records/:collection/:id',
      {
        schema: {
          tags: ['records'],
          summary: 'Create or replace a record; If-Match gives the base version',
          params: RecordParams,
          headers: WriteHeaders,
          body: RecordBody,
          response: writeResponses,
        },
      },
      async (request, reply) => writeRecord(ctx, request, reply, request.params, 'put', request.body),
    );

    app.patch(
      '/v1/records/:collection/:id',
      {
        schema: {
          tags: ['records'],
          summary: 'Change a record with a JSON merge patch (RFC 7396)',
          params: RecordParams,
          headers: WriteHeaders,
          body: RecordBody,
          response: writeResponses,
        },
      },
      async (request, reply) => writeRecord(ctx, request, reply, request.params, 'patch', request.body),
    );

    app.delete(
      '/v1/records/:collection/:id',
      {
        schema: {
          tags: ['records'],
          summary: 'Delete a record (it stays as a tombstone with deleted: true)',
          params: RecordParams,
          headers: WriteHeaders,
          response: writeResponses,
        },
      },
      async (request, reply) => writeRecord(ctx, request, reply, request.params, 'delete'),
    );

    app.get(
      '/v1/records/:collection/:id/history',
      {
        schema: {
          tags: ['records'],
          summary: 'The versions of a record kept so far, oldest first',
          params: RecordParams,
          querystring: Type.Object({
            limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000, default: 100 })),
            after: Type.Optional(
              Type.Integer({
                minimum: 0,
                maximum: Number.MAX_SAFE_INTEGER,
                description: 'seq to continue after (paging)',
              }),
            ),
          }),
          response: { 200: HistoryResponse, 401: ErrorResponse, 404: ErrorResponse },
        },
      },
      async (request) => {
        const principal = await ctx.auth.principal(request);
        const { collection, id } = request.params;
        const after = request.query.after ?? 0;
        // `changes` compare each version with the one before it on this page (empty for a page's first
        // entry when its predecessor is on an earlier page).
        const limit = request.query.limit ?? 100;
        const ruled = await ctx.collections.get(principal.tenant, collection);
        // Only the versions the caller may read (each judged on its own data); none: as if missing.
        const read = (from: number, size: number) =>
          ctx.records.readEvents(principal.tenant, {
            afterSeq: from,
            limit: size,
            kind: 'record',
            collection,
            recordId: id,
          });
        const events = readIsRuled(principal, ruled)
          ? (
              await fillPage({
                limit,
                start: after,
                read,
                cursorOf: (e) => e.seq,
                keep: (es) => es.flatMap((e) => readableVersion(principal, ruled, e) ?? []),
              })
            ).items
          : await read(after, limit);
        if (events.length === 0 && after === 0) throw new SyncError('NOT_FOUND', 'record not found');
        let previous: Record<string, unknown> | null = null;
        return {
          versions: events.map((e) => {
            const data = e.op === 'delete' ? null : (e.data ?? null);
            const changes =
              previous === null && e.version !== 1 ? [] : diffRecords(previous ?? {}, data ?? {});
            previous = data ?? {};
            return {
              version: e.version!,
              seq: e.seq,
              op: e.op!,
              data,
              hlc: e.hlc,
              actor: e.actor,
              ...(e.device ? { device: e.device } : {}),
              ts: e.ts,
              changes,
            };
          }),
        };
      },
    );

    app.get(
      '/v1/records/:collection/:id/versions/:version',
      {
        schema: {
          tags: ['records'],
          summary: 'The record as it was at one of its kept versions',
          params: Type.Object({
            collection: CollectionRef,
            id: RecordId,
            version: Type.Integer({ minimum: 1, maximum: Number.MAX_SAFE_INTEGER }),
          }),
          response: { 200: RecordVersionResponse, 401: ErrorResponse, 404: ErrorResponse },
        },
      },
      async (request) => {
        const principal = await ctx.auth.principal(request);
        const { collection, id, version } = request.params;
        return keptVersion(ctx, principal, collection, id, version);
      },
    );

    app.post(
      '/v1/mutations',
      {
        schema: {
          tags: ['records'],
          summary: 'Apply a batch of mutations in order (offline queues); one result per mutation',
          body: MutationsRequest,
          response: { 200: MutationsResponse, 400: ErrorResponse, 401: ErrorResponse },
        },
      },
      async (request) => {
        const principal = await ctx.auth.principal(request);
        return { results: await ctx.writer.mutate(principal, request.body.mutations) };
      },
    );
  };

/**
 * One kept version of a record (GET …/versions/{v} and GET …?version=): one lookup on the record's
 * index, rebuilt by the store when its history was compacted; NOT_FOUND when it is not kept or the
 * caller may not read it.
 */
async function keptVersion(
  ctx: HttpContext,
  principal: Principal,
  collection: string,
  id: string,
  version: number,
): Promise<Static<typeof RecordVersionResponse>> {
  const kept = await ctx.versions.readVersion(principal.tenant, collection, id, version);
  const found =
    kept && readableVersion(principal, await ctx.collections.get(principal.tenant, collection), kept);
  if (found) {
    return {
      collection,
      id,
      version,
      seq: found.seq,
      op: found.op!,
      data: found.op === 'delete' ? null : (found.data ?? null),
      actor: found.actor,
      ts: found.ts,
    };
  }
  throw new SyncError('NOT_FOUND', `version ${version} of this record is not kept`);
}
