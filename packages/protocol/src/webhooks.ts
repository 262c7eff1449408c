/**
 * Outbound webhooks, inbound webhooks and per-platform sync health over REST (`/v1/webhooks`,
 * `/v1/inbound/{source}`, `/v1/sync/*`, `/v1/stats`), as TypeBox schemas shared by server and clients.
 */
import { type Static, Type } from '@sinclair/typebox';
import { Name } from './model.ts';

export const WEBHOOK_STATUSES = ['active', 'paused', 'disabled'] as const;
export const WebhookStatus = Type.Union(
  WEBHOOK_STATUSES.map((s) => Type.Literal(s)),
  {
    description:
      'active: delivering; paused: deliveries queue up and go out on resume; disabled: nothing is queued or sent',
  },
);
export type WebhookStatus = Static<typeof WebhookStatus>;

/** An event type, or a pattern with `*` wildcards (`trade_*`, `record.orders.*`, `*`). */
export const EventTypePattern = Type.String({
  minLength: 1,
  maxLength: 128,
  pattern: '^[A-Za-z0-9_.\\-*]+$',
});

/** A webhook secret: `whsec_<base64>` (Standard Webhooks) or 8-256 printable ASCII characters. */
export const WebhookSecret = Type.String({ minLength: 8, maxLength: 256, pattern: '^[\\x21-\\x7e]+$' });

const HeaderMap = Type.Record(
  Type.String({ pattern: "^[A-Za-z0-9!#$%&'*+.^_`|~-]{1,64}$" }),
  Type.String({ maxLength: 1024, pattern: '^[\\x20-\\x7e]*$' }),
  { description: 'extra headers sent with every delivery', maxProperties: 32 },
);

export const DeliveryMode = Type.Union([Type.Literal('parallel'), Type.Literal('ordered')], {
  description: 'ordered: one delivery at a time, in seq order; parallel: several at once',
});

const webhookSettings = {
  name: Type.String({ minLength: 1, maxLength: 200 }),
  platform: Type.Optional(Name),
  url: Type.String({
    minLength: 1,
    maxLength: 2048,
    description: 'http(s) URL the deliveries are POSTed to',
  }),
  description: Type.Optional(Type.String({ maxLength: 2000 })),
  eventTypes: Type.Array(EventTypePattern, { minItems: 1, maxItems: 100, uniqueItems: true }),
  headers: Type.Optional(HeaderMap),
  delivery: Type.Optional(DeliveryMode),
  rateLimit: Type.Optional(
    Type.Union([Type.Integer({ minimum: 1, maximum: 100_000 }), Type.Null()], {
      description: 'most deliveries per second to this endpoint (null: no limit)',
    }),
  ),
  maxConcurrency: Type.Optional(
    Type.Integer({ minimum: 1, maximum: 256, description: 'parallel deliveries in flight (parallel mode)' }),
  ),
};

export const WebhookCreateRequest = Type.Object(
  {
    ...webhookSettings,
    secret: Type.Optional(WebhookSecret),
    /** Scenario 1's name for `secret`. */
    secretKey: Type.Optional(WebhookSecret),
    status: Type.Optional(WebhookStatus),
  },
  { additionalProperties: false },
);
export type WebhookCreateRequest = Static<typeof WebhookCreateRequest>;

export const WebhookUpdateRequest = Type.Partial(
  Type.Object({
    ...webhookSettings,
    platform: Type.Union([Name, Type.Null()]),
    description: Type.Union([Type.String({ maxLength: 2000 }), Type.Null()]),
    headers: Type.Union([HeaderMap, Type.Null()]),
  }),
  { additionalProperties: false, minProperties: 1 },
);
export type WebhookUpdateRequest = Static<typeof WebhookUpdateRequest>;

export const WebhookStatusRequest = Type.Object({ status: WebhookStatus }, { additionalProperties: false });

export const RotateSecretRequest = Type.Object(
  {
    secret: Type.Optional(WebhookSecret),
    overlapSeconds: Type.Optional(
      Type.Integer({
        minimum: 0,
        maximum: 30 * 86_400,
        default: 86_400,
        description: 'how long the previous secret keeps signing too',
      }),
    ),
  },
  { additionalProperties: false },
);

export const Webhook = Type.Object({
  id: Type.String(),
  name: Type.String(),
  platform: Type.Union([Type.String(), Type.Null()]),
  url: Type.String(),
  description: Type.Union([Type.String(), Type.Null()]),
  eventTypes: Type.Array(Type.String()),
  headers: Type.Record(Type.String(), Type.String()),
  delivery: DeliveryMode,
  rateLimit: Type.Union([Type.Integer(), Type.Null()]),
  maxConcurrency: Type.Integer(),
  status: WebhookStatus,
  statusReason: Type.Union([Type.String(), Type.Null()]),
  secret: Type.String({ description: 'masked, except in the answer that created or rotated it' }),
  previousSecretExpiresAt: Type.Union([Type.String(), Type.Null()]),
  totalCalls: Type.Integer(),
  failedCalls: Type.Integer(),
  consecutiveFailures: Type.Integer(),
  lastTriggered: Type.Union([Type.String(), Type.Null()]),
  lastSuccessAt: Type.Union([Type.String(), Type.Null()]),
  lastFailureAt: Type.Union([Type.String(), Type.Null()]),
  createdAt: Type.String(),
  updatedAt: Type.String(),
});
export type Webhook = Static<typeof Webhook>;

export const WebhooksQuery = Type.Object({
  platform: Type.Optional(Name),
  status: Type.Optional(WebhookStatus),
});
export const WebhooksResponse = Type.Object({ webhooks: Type.Array(Webhook) });

export const DELIVERY_STATUSES = ['pending', 'success', 'failed'] as const;
export const DeliveryStatus = Type.Union(
  DELIVERY_STATUSES.map((s) => Type.Literal(s)),
  {
    description:
      'pending: queued or retrying; success: a 2xx answer; failed: dead letter (retries exhausted)',
  },
);
export type DeliveryStatus = Static<typeof DeliveryStatus>;

export const DeliveryAttempt = Type.Object({
  attempt: Type.Integer(),
  startedAt: Type.String(),
  durationMs: Type.Integer(),
  responseStatus: Type.Union([Type.Integer(), Type.Null()]),
  error: Type.Union([Type.String(), Type.Null()]),
  success: Type.Boolean(),
  responseBody: Type.Union([Type.String(), Type.Null()], { description: 'first 1 KiB of the answer' }),
});
export type DeliveryAttempt = Static<typeof DeliveryAttempt>;

export const Delivery = Type.Object({
  id: Type.String(),
  webhookId: Type.String(),
  eventId: Type.String({
    description: 'also the `webhook-id` and `X-Event-Id` headers, stable across retries',
  }),
  eventType: Type.String(),
  seq: Type.Integer(),
  platform: Type.Union([Type.String(), Type.Null()]),
  url: Type.String(),
  status: DeliveryStatus,
  inFlight: Type.Boolean(),
  attempts: Type.Integer(),
  retryCount: Type.Integer(),
  responseStatus: Type.Union([Type.Integer(), Type.Null()]),
  durationMs: Type.Union([Type.Integer(), Type.Null()]),
  error: Type.Union([Type.String(), Type.Null()]),
  createdAt: Type.String(),
  deliveredAt: Type.Union([Type.String(), Type.Null()]),
  nextAttemptAt: Type.Union([Type.String(), Type.Null()]),
  attemptLog: Type.Optional(Type.Array(DeliveryAttempt)),
});
export type Delivery = Static<typeof Delivery>;

export const DeliveriesQuery = Type.Object({
  status: Type.Optional(DeliveryStatus),
  limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000, default: 100 })),
  attempts: Type.Optional(Type.Boolean({ default: false, description: 'include every attempt' })),
});
export const DeliveriesResponse = Type.Object({ deliveries: Type.Array(Delivery) });

export const ReplayRequest = Type.Object(
  {
    since: Type.String({ format: 'date-time' }),
    until: Type.Optional(Type.String({ format: 'date-time' })),
    onlyFailed: Type.Optional(
      Type.Boolean({ default: false, description: 'skip events this endpoint already received' }),
    ),
  },
  { additionalProperties: false },
);
export const ReplayResponse = Type.Object({ queued: Type.Integer() });

export const PlatformHealth = Type.Object({
  platform: Type.Union([Type.String(), Type.Null()]),
  status: Type.Union([
    Type.Literal('active'),
    Type.Literal('degraded'),
    Type.Literal('paused'),
    Type.Literal('disabled'),
  ]),
  webhooks: Type.Integer(),
  pendingEvents: Type.Integer(),
  failedEvents: Type.Integer({ description: 'dead letters' }),
  inFlight: Type.Integer(),
  syncLagMs: Type.Union([Type.Integer(), Type.Null()], { description: 'p50 over the last hour' }),
  lagP50Ms: Type.Union([Type.Integer(), Type.Null()]),
  lagP95Ms: Type.Union([Type.Integer(), Type.Null()]),
  lagMaxMs: Type.Union([Type.Integer(), Type.Null()]),
  lastSyncAt: Type.Union([Type.String(), Type.Null()], { description: 'last successful delivery' }),
  oldestPendingAt: Type.Union([Type.String(), Type.Null()]),
});
export type PlatformHealth = Static<typeof PlatformHealth>;
export const SyncHealthResponse = Type.Object({ health: Type.Array(PlatformHealth) });

export const PendingQuery = Type.Object({
  platform: Type.Optional(Name),
  limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000, default: 50 })),
});
export const PendingEvent = Type.Object({
  eventId: Type.String(),
  eventType: Type.String(),
  seq: Type.Integer(),
  platform: Type.Union([Type.String(), Type.Null()]),
  webhookId: Type.String(),
  deliveryId: Type.String(),
  priority: Type.Union([Type.Integer(), Type.Null()]),
  attempts: Type.Integer(),
  createdAt: Type.String(),
  nextAttemptAt: Type.String(),
});
export const PendingResponse = Type.Object({ count: Type.Integer(), events: Type.Array(PendingEvent) });

export const TriggerRequest = Type.Object(
  { platform: Type.Optional(Name), webhookId: Type.Optional(Type.String({ maxLength: 64 })) },
  { additionalProperties: false },
);
export const TriggerResponse = Type.Object({ triggered: Type.Integer(), message: Type.String() });

export const StatsQuery = Type.Object({
  days: Type.Optional(Type.Number({ exclusiveMinimum: 0, maximum: 3650, default: 30 })),
  platform: Type.Optional(Name),
});
export const SyncStats = Type.Object({
  completedEvents: Type.Integer(),
  failedEvents: Type.Integer(),
  pendingEvents: Type.Integer(),
  avgSyncTimeMs: Type.Union([Type.Integer(), Type.Null()]),
  maxSyncTimeMs: Type.Union([Type.Integer(), Type.Null()]),
  successRate: Type.Union([Type.String(), Type.Null()], { description: 'percent with two decimals' }),
});
export const StatsResponse = Type.Object({
  days: Type.Number(),
  stats: SyncStats,
  platforms: Type.Array(
    Type.Object({ platform: Type.Union([Type.String(), Type.Null()]), stats: SyncStats }),
  ),
});

export const InboundResponse = Type.Object({
  received: Type.Boolean(),
  duplicate: Type.Boolean({ description: 'the provider sent this event id before: nothing was written' }),
  seq: Type.Optional(Type.Integer()),
  eventId: Type.Optional(Type.String()),
  ignored: Type.Optional(Type.Boolean({ description: 'the mapper chose not to record this request' })),
});
