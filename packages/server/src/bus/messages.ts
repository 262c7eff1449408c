/**
 * The messages nodes exchange over the bus, each with its runtime schema, and their wire form (JSON
 * text). A message from the wire is checked against its schema before any part of the server sees it:
 * a malformed or unknown message is dropped, never half-handled. Imports nothing of the server.
 */

import { type Static, type TSchema, Type } from '@sinclair/typebox';
import { TypeCompiler } from '@sinclair/typebox/compiler';
import type { Depth, LogEvent, Tick } from '@syncbridge/protocol';
import { ERROR_CODES, LogEvent as LogEventSchema } from '@syncbridge/protocol';

/** Committed events of a tenant. */
const EventsMessageSchema = Type.Object({
  type: Type.Literal('events'),
  /** The node that committed the events. */
  node: Type.String(),
  tenant: Type.String(),
  /** The committed events in seq order; empty when they were too large to carry (then read the store). */
  events: Type.Array(Type.Unsafe<LogEvent>(LogEventSchema)),
  /** The last seq committed, so a receiver of an empty message knows how far to read. */
  upTo: Type.Number(),
  /** When the committing node published it (ms since the epoch), for the transit-time metric. */
  sentAt: Type.Optional(Type.Number()),
});

/** A node says it is alive, every few seconds (the cluster view). */
const HeartbeatMessageSchema = Type.Object({
  type: Type.Literal('heartbeat'),
  node: Type.String(),
  url: Type.String(),
  connections: Type.Number(),
  startedAt: Type.String(),
  /** The sender's wall clock when it sent the beat (ms since the epoch), to spot nodes whose clocks differ. */
  sentAt: Type.Optional(Type.Number()),
});

/** A node asks every other node for a tenant's connections; they answer with `presence`. */
const PresenceRequestMessageSchema = Type.Object({
  type: Type.Literal('presence_request'),
  node: Type.String(),
  requestId: Type.String(),
  tenant: Type.String(),
});

const PresenceMessageSchema = Type.Object({
  type: Type.Literal('presence'),
  node: Type.String(),
  requestId: Type.String(),
  connections: Type.Array(Type.Unknown()),
});

const TickSchema = Type.Unsafe<Tick>(
  Type.Object({ symbol: Type.String(), seq: Type.Number(), ts: Type.Number() }),
);
const DepthSchema = Type.Unsafe<Depth>(
  Type.Object({
    symbol: Type.String(),
    seq: Type.Number(),
    ts: Type.Number(),
    bids: Type.Array(Type.Tuple([Type.Number(), Type.Number()])),
    asks: Type.Array(Type.Tuple([Type.Number(), Type.Number()])),
  }),
);

/**
 * Values of a topic published on the node that runs its feed, for the other nodes' subscribers (a
 * batch, in the order published). Ticks are outside the log: a lost message is a gap in the topic's
 * seq, which the next value of each symbol covers, as conflation does.
 */
const TopicValuesMessageSchema = Type.Object({
  type: Type.Literal('topic'),
  node: Type.String(),
  tenant: Type.String(),
  topic: Type.String(),
  ticks: Type.Array(TickSchema),
  depth: Type.Array(DepthSchema),
});

/** A node asks for a topic's latest values (it started, or it stood by); the feed's node answers. */
const TopicSyncRequestMessageSchema = Type.Object({
  type: Type.Literal('topic_sync'),
  node: Type.String(),
  tenant: Type.String(),
  topic: Type.String(),
});

/** A node made, changed or removed a REST connector definition: the others read the definitions now. */
const ConnectorsChangedMessageSchema = Type.Object({
  type: Type.Literal('connectors_changed'),
  node: Type.String(),
});

const Bounded = (max = 256) => Type.String({ maxLength: max });

/** What a node asks of the node running a connector (the REST trigger and feed-subscription routes). */
const ConnectorCallSchema = Type.Union([
  Type.Object({
    action: Type.Literal('trigger'),
    connection: Type.Optional(Bounded()),
    reconcile: Type.Optional(Type.Boolean()),
    reason: Type.Optional(Bounded(200)),
    wait: Type.Boolean(),
  }),
  Type.Object({
    action: Type.Literal('subscribe'),
    symbols: Type.Array(Type.String({ minLength: 1, maxLength: 128 }), { minItems: 1, maxItems: 10_000 }),
    /** The user the subscription is made for (shown as its `createdBy`). */
    user: Bounded(),
  }),
  Type.Object({ action: Type.Literal('unsubscribe'), id: Bounded() }),
  Type.Object({ action: Type.Literal('subscriptions') }),
  Type.Object({ action: Type.Literal('subscription'), id: Bounded() }),
  Type.Object({ action: Type.Literal('symbols') }),
]);

/**
 * A node stands by for a connector another node runs, and forwards a REST call to it: the node holding
 * the connector's lease performs it and answers with `connector_answer`. The caller already checked the
 * caller's rights; `timeoutMs` is how long it waits, from when it sent the call.
 */
const ConnectorCallMessageSchema = Type.Object({
  type: Type.Literal('connector_call'),
  node: Bounded(),
  requestId: Type.String({ minLength: 1, maxLength: 64 }),
  tenant: Bounded(),
  connector: Bounded(),
  timeoutMs: Type.Integer({ minimum: 1, maximum: 600_000 }),
  call: ConnectorCallSchema,
});

/**
 * The running node's answer to a `connector_call`, for the node `to`: `working` at once and every second
 * while it performs the call (so the caller tells a slow call from a dead node), then `done` with the
 * HTTP status and body, or the typed error.
 */
const ConnectorAnswerMessageSchema = Type.Object({
  type: Type.Literal('connector_answer'),
  node: Bounded(),
  requestId: Type.String({ minLength: 1, maxLength: 64 }),
  to: Bounded(),
  phase: Type.Union([Type.Literal('working'), Type.Literal('done')]),
  status: Type.Optional(Type.Integer({ minimum: 200, maximum: 299 })),
  body: Type.Optional(Type.Unknown()),
  error: Type.Optional(
    Type.Object({
      code: Type.Union(ERROR_CODES.map((c) => Type.Literal(c))),
      message: Bounded(2000),
      details: Type.Optional(Type.Unknown()),
    }),
  ),
});

export type EventsMessage = Static<typeof EventsMessageSchema>;
export type HeartbeatMessage = Static<typeof HeartbeatMessageSchema>;
export type PresenceRequestMessage = Static<typeof PresenceRequestMessageSchema>;
export type PresenceMessage = Static<typeof PresenceMessageSchema>;
export type TopicValuesMessage = Static<typeof TopicValuesMessageSchema>;
export type TopicSyncRequestMessage = Static<typeof TopicSyncRequestMessageSchema>;
export type ConnectorsChangedMessage = Static<typeof ConnectorsChangedMessageSchema>;
export type ConnectorCall = Static<typeof ConnectorCallSchema>;
export type ConnectorCallMessage = Static<typeof ConnectorCallMessageSchema>;
export type ConnectorAnswerMessage = Static<typeof ConnectorAnswerMessageSchema>;

export type BusMessage =
  | EventsMessage
  | HeartbeatMessage
  | PresenceRequestMessage
  | PresenceMessage
  | TopicValuesMessage
  | TopicSyncRequestMessage
  | ConnectorsChangedMessage
  | ConnectorCallMessage
  | ConnectorAnswerMessage;

/** One compiled check per message type, chosen by `type` (a union check would try each in turn). */
const checks = new Map<string, ReturnType<typeof TypeCompiler.Compile<TSchema>>>(
  [
    EventsMessageSchema,
    HeartbeatMessageSchema,
    PresenceRequestMessageSchema,
    PresenceMessageSchema,
    TopicValuesMessageSchema,
    TopicSyncRequestMessageSchema,
    ConnectorsChangedMessageSchema,
    ConnectorCallMessageSchema,
    ConnectorAnswerMessageSchema,
  ].map((schema) => [schema.properties.type.const, TypeCompiler.Compile<TSchema>(schema)]),
);

/** Messages larger than this carry no events, only `upTo`: receivers read them from the store. */
export const MAX_CARRIED_BYTES = 256 * 1024;

/**
 * The largest forwarded connector call or answer (wire characters): room for the largest subscription
 * a REST call may make (10,000 symbols of 128 characters). Larger ones are not sent, and dropped when
 * heard.
 */
export const MAX_CONNECTOR_CALL_CHARS = 2 * 1024 * 1024;

/** Serializes a message, leaving the events out when they are too large to carry. */
export function encodeBusMessage(message: BusMessage): string {
  const full = JSON.stringify(message);
  if (message.type !== 'events' || full.length <= MAX_CARRIED_BYTES) return full;
  return JSON.stringify({ ...message, events: [] });
}

/** Parses a message from the wire; returns null for anything malformed or of an unknown type. */
export function decodeBusMessage(text: string): BusMessage | null {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return null;
  }
  if (typeof value !== 'object' || value === null) return null;
  const type = String((value as { type?: unknown }).type);
  if ((type === 'connector_call' || type === 'connector_answer') && text.length > MAX_CONNECTOR_CALL_CHARS) {
    return null;
  }
  const check = checks.get(type);
  return check?.Check(value) ? (value as BusMessage) : null;
}
