/**
 * The data model shared by REST and WebSocket: records, mutations, results and log events,
 * as TypeBox schemas (validated at runtime) with their static types.
 */
import { type Static, Type } from '@sinclair/typebox';
import {
  BRANCH_NAME_MAX_LENGTH,
  BRANCH_NAME_PATTERN,
  COLLECTION_REF_MAX_LENGTH,
  COLLECTION_REF_PATTERN,
  NAME_MAX_LENGTH,
  NAME_PATTERN,
  RECORD_ID_MAX_LENGTH,
  RECORD_ID_PATTERN,
} from './names.ts';

/** Names of collections, record ids, event types and platforms: printable, bounded, no separators we parse. */
export const Name = Type.String({ minLength: 1, maxLength: NAME_MAX_LENGTH, pattern: NAME_PATTERN });
/** A collection or one of its branches, `<collection>@<branch>` (records, history, mutations, channels). */
export const CollectionRef = Type.String({
  minLength: 1,
  maxLength: COLLECTION_REF_MAX_LENGTH,
  pattern: COLLECTION_REF_PATTERN,
});
export const BranchName = Type.String({
  minLength: 1,
  maxLength: BRANCH_NAME_MAX_LENGTH,
  pattern: BRANCH_NAME_PATTERN,
});
export const RecordId = Type.String({
  minLength: 1,
  maxLength: RECORD_ID_MAX_LENGTH,
  pattern: RECORD_ID_PATTERN,
});
export const JsonObject = Type.Record(Type.String(), Type.Unknown());

export const MutationOp = Type.Union([
  Type.Literal('put'),
  Type.Literal('patch'),
  Type.Literal('increment'),
  Type.Literal('delete'),
]);
export type MutationOp = Static<typeof MutationOp>;

export const Mutation = Type.Object(
  {
    mid: Type.String({ minLength: 1, maxLength: 128 }),
    collection: CollectionRef,
    id: RecordId,
    op: MutationOp,
    data: Type.Optional(JsonObject),
    baseVersion: Type.Optional(Type.Integer({ minimum: 0, maximum: Number.MAX_SAFE_INTEGER })),
    hlc: Type.Optional(Type.String({ minLength: 1, maxLength: 64 })),
  },
  { additionalProperties: false },
);
export type Mutation = Static<typeof Mutation>;

export const MutationStatus = Type.Union([
  Type.Literal('applied'),
  Type.Literal('merged'),
  Type.Literal('conflict'),
  Type.Literal('rejected'),
  Type.Literal('duplicate'),
]);
export type MutationStatus = Static<typeof MutationStatus>;

export const SyncRecord = Type.Object({
  collection: Type.String(),
  id: Type.String(),
  data: JsonObject,
  version: Type.Integer(),
  hlc: Type.String(),
  updatedAt: Type.String({ description: 'ISO 8601 time of the last change' }),
  updatedBy: Type.String(),
  deleted: Type.Boolean(),
});
export type SyncRecord = Static<typeof SyncRecord>;

export const ResultError = Type.Object({
  code: Type.String(),
  message: Type.String(),
  details: Type.Optional(Type.Unknown()),
});

export const MutationResult = Type.Object({
  mid: Type.String(),
  status: MutationStatus,
  /** For `duplicate`: the status the first delivery of this mid got. */
  originalStatus: Type.Optional(MutationStatus),
  version: Type.Optional(Type.Integer()),
  seq: Type.Optional(Type.Integer()),
  eventId: Type.Optional(Type.String()),
  record: Type.Optional(SyncRecord),
  conflictId: Type.Optional(Type.String()),
  error: Type.Optional(ResultError),
});
export type MutationResult = Static<typeof MutationResult>;

export const Priority = Type.Integer({
  minimum: 0,
  maximum: 9,
  description: '0 (lowest) to 9 (most urgent)',
});

export const NewDomainEvent = Type.Object(
  {
    type: Name,
    payload: Type.Optional(Type.Unknown()),
    source: Type.Optional(Name),
    target: Type.Optional(Name),
    priority: Type.Optional(Priority),
    idempotencyKey: Type.Optional(Type.String({ minLength: 1, maxLength: 200 })),
  },
  { additionalProperties: false },
);
export type NewDomainEvent = Static<typeof NewDomainEvent>;

/** One entry of a tenant's log as clients see it (without the `channel` the WS `event` frame adds). */
export const LogEvent = Type.Object({
  seq: Type.Integer(),
  eventId: Type.String(),
  kind: Type.Union([Type.Literal('record'), Type.Literal('event')]),
  collection: Type.Optional(Type.String()),
  id: Type.Optional(Type.String()),
  op: Type.Optional(MutationOp),
  version: Type.Optional(Type.Integer()),
  data: Type.Optional(Type.Union([JsonObject, Type.Null()])),
  type: Type.Optional(Type.String()),
  payload: Type.Optional(Type.Unknown()),
  source: Type.Optional(Type.String()),
  target: Type.Optional(Type.String()),
  priority: Type.Optional(Type.Integer()),
  hlc: Type.Optional(Type.String()),
  actor: Type.String(),
  /** The device the change came from, when the writer named one. */
  device: Type.Optional(Type.String()),
  /**
   * Record changes: the values the changed fields had before, by dotted path (absent: the field was
   * new). Lets a filtered channel see a record leave it (e.g. stock moved from wh-1 to wh-2).
   */
  previous: Type.Optional(JsonObject),
  ts: Type.String(),
});
export type LogEvent = Static<typeof LogEvent>;

export const STRATEGIES = ['lww', 'server_wins', 'client_wins', 'merge', 'manual', 'custom'] as const;
export const Strategy = Type.Union(
  STRATEGIES.map((s) => Type.Literal(s)),
  { description: "what happens when a mutation's baseVersion is not the record's current version" },
);
export type Strategy = (typeof STRATEGIES)[number];

/** A CEL expression of an access rule (docs/access-rules.md); compiled when set, refused if it does not compile. */
export const RuleExpression = Type.String({ minLength: 1, maxLength: 4096 });

/**
 * Who may read and write a collection's records, as CEL expressions over `auth` (user, roles, claims),
 * `record` (the stored data) and `next` (the data after a write). No rules: every user of the tenant.
 */
export const CollectionRules = Type.Object(
  {
    read: Type.Optional(RuleExpression),
    write: Type.Optional(RuleExpression),
    create: Type.Optional(RuleExpression),
    update: Type.Optional(RuleExpression),
    delete: Type.Optional(RuleExpression),
    hide: Type.Optional(
      Type.Record(
        Type.String({ minLength: 1, maxLength: 256, pattern: '^[^.]+(\\.[^.]+)*$' }),
        RuleExpression,
        {
          maxProperties: 64,
          description: 'field path → rule: the field is removed for readers for whom the rule is true',
        },
      ),
    ),
  },
  { additionalProperties: false },
);
export type CollectionRules = Static<typeof CollectionRules>;

export const CollectionSettings = Type.Object(
  {
    strategy: Type.Optional(Strategy),
    mergeFallback: Type.Optional(
      Type.Union([Type.Literal('lww'), Type.Literal('manual')], {
        description: 'merge: how a field changed on both sides is settled (default lww)',
      }),
    ),
    textFields: Type.Optional(
      Type.Array(Type.String({ minLength: 1, maxLength: 256 }), {
        maxItems: 64,
        description: 'merge: dotted paths of string fields merged character-wise',
      }),
    ),
    resolver: Type.Optional(
      Type.String({
        minLength: 1,
        maxLength: 128,
        description: 'custom: the name of a resolver registered in code',
      }),
    ),
    schema: Type.Optional(JsonObject),
    rules: Type.Optional(CollectionRules),
    sealedFields: Type.Optional(
      Type.Array(Type.String({ minLength: 1, maxLength: 128, pattern: '^[A-Za-z0-9_-]+$' }), {
        maxItems: 64,
        uniqueItems: true,
        description:
          'top-level data fields kept encrypted at rest (needs SYNCBRIDGE_SECRETS_KEY); they cannot be filtered on',
      }),
    ),
    retention: Type.Optional(
      Type.Object(
        {
          maxVersions: Type.Optional(Type.Integer({ minimum: 1, maximum: Number.MAX_SAFE_INTEGER })),
          maxAgeDays: Type.Optional(Type.Number({ exclusiveMinimum: 0 })),
        },
        { additionalProperties: false },
      ),
    ),
  },
  { additionalProperties: false },
);
export type CollectionSettings = Static<typeof CollectionSettings>;

export const Resolution = Type.Union([
  Type.Literal('accept_local'),
  Type.Literal('accept_server'),
  Type.Literal('merge'),
]);
export type Resolution = Static<typeof Resolution>;

/** A stored conflict of the manual queue: the three versions, and how (and whether) it was resolved. */
export const Conflict = Type.Object({
  id: Type.String(),
  collection: Type.String(),
  recordId: Type.String(),
  status: Type.Union([Type.Literal('open'), Type.Literal('resolved')]),
  strategy: Type.String(),
  reason: Type.String(),
  mid: Type.String(),
  op: MutationOp,
  baseVersion: Type.Integer(),
  /** The record's data at baseVersion (null when that version is no longer kept). */
  base: Type.Union([JsonObject, Type.Null()]),
  serverVersion: Type.Integer(),
  server: JsonObject,
  /** What the writer meant to end with (null for a delete). */
  client: Type.Union([JsonObject, Type.Null()]),
  actor: Type.String(),
  deviceId: Type.Optional(Type.String()),
  createdAt: Type.String(),
  resolution: Type.Optional(Resolution),
  resolvedBy: Type.Optional(Type.String()),
  resolvedAt: Type.Optional(Type.String()),
  resolvedSeq: Type.Optional(Type.Integer()),
});
export type Conflict = Static<typeof Conflict>;
