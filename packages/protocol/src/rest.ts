/**
 * REST request and response bodies (`/v1`), as TypeBox schemas. The server validates requests with
 * them and generates its OpenAPI document from them, so the two never drift apart.
 */
import { type Static, Type } from '@sinclair/typebox';
import { ERROR_CODES } from './errors.ts';
import {
  CollectionSettings,
  Conflict,
  LogEvent,
  Mutation,
  MutationResult,
  NewDomainEvent,
  Resolution,
  SyncRecord,
} from './model.ts';
import { COLLECTION_REF_MAX_LENGTH } from './names.ts';

export const ErrorResponse = Type.Object({
  error: Type.Object({
    code: Type.Union(ERROR_CODES.map((c) => Type.Literal(c))),
    message: Type.String(),
    details: Type.Optional(Type.Unknown()),
  }),
});

export const MutationsRequest = Type.Object(
  { mutations: Type.Array(Mutation, { minItems: 1, maxItems: 1000 }) },
  { additionalProperties: false },
);
export type MutationsRequest = Static<typeof MutationsRequest>;
export const MutationsResponse = Type.Object({ results: Type.Array(MutationResult) });

export const PublishRequest = NewDomainEvent;
export const PublishResponse = Type.Object({
  seq: Type.Integer(),
  eventId: Type.String(),
  duplicate: Type.Optional(Type.Boolean()),
});

export const EventsQuery = Type.Object({
  after: Type.Optional(Type.Integer({ minimum: 0, maximum: Number.MAX_SAFE_INTEGER, default: 0 })),
  limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000, default: 100 })),
  type: Type.Optional(Type.String({ maxLength: 128 })),
  kind: Type.Optional(Type.Union([Type.Literal('record'), Type.Literal('event')])),
  actor: Type.Optional(Type.String({ maxLength: 256, description: 'audit: entries written by this user' })),
  collection: Type.Optional(
    Type.String({ maxLength: COLLECTION_REF_MAX_LENGTH, description: 'a collection, or `<c>@<branch>`' }),
  ),
  id: Type.Optional(Type.String({ maxLength: 256, description: 'audit: entries of this record id' })),
  from: Type.Optional(
    Type.String({ format: 'date-time', description: 'audit: entries at or after this time' }),
  ),
  to: Type.Optional(Type.String({ format: 'date-time', description: 'audit: entries before this time' })),
});
export const EventsResponse = Type.Object({ events: Type.Array(LogEvent), head: Type.Integer() });

export const RecordsQuery = Type.Object(
  {
    limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000, default: 100 })),
    after: Type.Optional(Type.String({ maxLength: 256, description: 'id to continue after (paging)' })),
    includeDeleted: Type.Optional(Type.Boolean({ default: false })),
  },
  { additionalProperties: Type.String({ maxLength: 1024 }) },
);
export const RecordsResponse = Type.Object({
  records: Type.Array(SyncRecord),
  next: Type.Optional(Type.String({ description: 'pass as `after` for the next page' })),
});
export const RecordBody = Type.Record(Type.String(), Type.Unknown());
export const HistoryResponse = Type.Object({
  versions: Type.Array(
    Type.Object({
      version: Type.Integer(),
      seq: Type.Integer(),
      op: Type.String(),
      data: Type.Union([Type.Record(Type.String(), Type.Unknown()), Type.Null()]),
      hlc: Type.Optional(Type.String()),
      actor: Type.String(),
      device: Type.Optional(Type.String()),
      ts: Type.String(),
      changes: Type.Array(
        Type.Object({
          path: Type.String(),
          from: Type.Optional(Type.Unknown()),
          to: Type.Optional(Type.Unknown()),
        }),
        { description: 'what changed from the previous kept version, by dotted path' },
      ),
    }),
  ),
});
export const RecordVersionResponse = Type.Object({
  collection: Type.String(),
  id: Type.String(),
  version: Type.Integer(),
  seq: Type.Integer(),
  op: Type.String(),
  data: Type.Union([Type.Record(Type.String(), Type.Unknown()), Type.Null()]),
  actor: Type.String(),
  ts: Type.String(),
});

export const CollectionResponse = Type.Object({
  name: Type.String(),
  settings: CollectionSettings,
});
export const CollectionsResponse = Type.Object({ collections: Type.Array(CollectionResponse) });

/** GET /v1/collections/{c}/sealed-backfill: the stored progress of the pass sealing the collection's data. */
export const SealedBackfillResponse = Type.Object({
  name: Type.String(),
  /** Null: no backfill of this collection ever ran. */
  backfill: Type.Union([
    Type.Object({
      fields: Type.Array(Type.String()),
      keyId: Type.String(),
      stage: Type.String(),
      done: Type.Boolean(),
      /** Runs on this node now, or waits its turn; null: neither (done, or resumes at the next start). */
      activity: Type.Union([Type.Literal('running'), Type.Literal('queued'), Type.Null()]),
      scanned: Type.Integer(),
      rewritten: Type.Integer(),
      startedAt: Type.String(),
      updatedAt: Type.String(),
      tenantRows: Type.Optional(
        Type.Object({
          done: Type.Boolean(),
          stage: Type.String(),
          scanned: Type.Integer(),
          rewritten: Type.Integer(),
          updatedAt: Type.String(),
        }),
      ),
    }),
    Type.Null(),
  ]),
});

export const TokenRequest = Type.Object(
  {
    tenant: Type.String({ minLength: 1, maxLength: 128, pattern: '^[A-Za-z0-9_.\\-]+$' }),
    user: Type.String({ minLength: 1, maxLength: 256 }),
    roles: Type.Optional(Type.Array(Type.String({ minLength: 1, maxLength: 64 }), { maxItems: 32 })),
    ttlSeconds: Type.Optional(Type.Integer({ minimum: 1, maximum: 31_536_000 })),
    claims: Type.Optional(
      Type.Record(Type.String({ minLength: 1, maxLength: 128 }), Type.Unknown(), {
        maxProperties: 64,
        description:
          'what access rules read as auth.claims, e.g. {"locations":["wh-1"]} (at most 8 KiB of JSON)',
      }),
    ),
  },
  { additionalProperties: false },
);
export type TokenRequest = Static<typeof TokenRequest>;
export const TokenResponse = Type.Object({ token: Type.String(), expiresAt: Type.String() });

export const ApiKeyRequest = Type.Object(
  { label: Type.Optional(Type.String({ maxLength: 200 })) },
  { additionalProperties: false },
);
export const ApiKeyResponse = Type.Object({
  id: Type.String(),
  tenant: Type.String(),
  key: Type.String({ description: 'shown once; only its hash is stored' }),
});

export const ConnectionsResponse = Type.Object({
  connections: Type.Array(
    Type.Object({
      connectionId: Type.String(),
      user: Type.String(),
      deviceId: Type.Optional(Type.String()),
      connectedAt: Type.String(),
      channels: Type.Array(Type.String()),
      remoteAddress: Type.Optional(Type.String()),
      node: Type.Optional(Type.String({ description: 'the node the connection is on' })),
    }),
  ),
});

export const HealthResponse = Type.Object({ status: Type.String(), uptimeSeconds: Type.Number() });
export const ReadyResponse = Type.Object({
  status: Type.String(),
  store: Type.Object({ kind: Type.String(), ok: Type.Boolean(), latencyMs: Type.Optional(Type.Number()) }),
  bus: Type.Object({ kind: Type.String(), ok: Type.Boolean() }),
  nodes: Type.Array(
    Type.Object({
      node: Type.String(),
      url: Type.String(),
      connections: Type.Integer(),
      startedAt: Type.String(),
      lastSeen: Type.String(),
      self: Type.Boolean(),
    }),
    { description: 'the live nodes of the cluster (this one first)' },
  ),
});

export const ConflictsQuery = Type.Object({
  status: Type.Optional(
    Type.Union([Type.Literal('open'), Type.Literal('resolved'), Type.Literal('all')], { default: 'open' }),
  ),
  collection: Type.Optional(Type.String({ maxLength: 128 })),
  limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 500, default: 100 })),
});
export const ConflictsResponse = Type.Object({ conflicts: Type.Array(Conflict) });
export const ResolveRequest = Type.Object(
  { resolution: Resolution, data: Type.Optional(Type.Record(Type.String(), Type.Unknown())) },
  { additionalProperties: false },
);
export type ResolveRequest = Static<typeof ResolveRequest>;
export const ResolveResponse = Type.Object({ result: MutationResult, conflict: Conflict });
