/**
 * The messages nodes exchange over the bus, each with its runtime schema, and their wire form (JSON
 * text). A message from the wire is checked against its schema before any part of the server sees it:
 * a malformed or unknown message is dropped, never half-handled. Imports nothing of the server.
 */

import { type Static, type TSchema, Type } from '@sinclair/typebox';
import { TypeCompiler } from '@sinclair/typebox/compiler';
import type { Depth, LogEvent, Tick } from '@syncbridge/protocol';
import { LogEvent as LogEventSchema } from '@syncbridge/protocol';

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

export type EventsMessage = Static<typeof EventsMessageSchema>;
export type HeartbeatMessage = Static<typeof HeartbeatMessageSchema>;
export type PresenceRequestMessage = Static<typeof PresenceRequestMessageSchema>;
export type PresenceMessage = Static<typeof PresenceMessageSchema>;
export type TopicValuesMessage = Static<typeof TopicValuesMessageSchema>;
export type TopicSyncRequestMessage = Static<typeof TopicSyncRequestMessageSchema>;
export type ConnectorsChangedMessage = Static<typeof ConnectorsChangedMessageSchema>;

export type BusMessage =
  | EventsMessage
  | HeartbeatMessage
  | PresenceRequestMessage
  | PresenceMessage
  | TopicValuesMessage
  | TopicSyncRequestMessage
  | ConnectorsChangedMessage;

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
  ].map((schema) => [schema.properties.type.const, TypeCompiler.Compile<TSchema>(schema)]),
);

/** Messages larger than this carry no events, only `upTo`: receivers read them from the store. */
export const MAX_CARRIED_BYTES = 256 * 1024;

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
  const check = checks.get(String((value as { type?: unknown }).type));
  return check?.Check(value) ? (value as BusMessage) : null;
}
