/**
 * The WebSocket protocol (`GET /v1/realtime`): JSON text frames, one message per frame,
 * a discriminated union on `type`. Client messages have runtime schemas; the server validates
 * every frame against them before acting on it.
 */
import { type Static, Type } from '@sinclair/typebox';
import { DeviceInfo, type DevicePending } from './devices.ts';
import type { ErrorCode } from './errors.ts';
import {
  type Conflict,
  type LogEvent,
  Mutation,
  type MutationResult,
  NewDomainEvent,
  type SyncRecord,
} from './model.ts';
import { MAX_TOKEN_LENGTH } from './version.ts';
import type { PlatformHealth } from './webhooks.ts';

const Rid = Type.Optional(
  Type.Union([
    Type.String({ maxLength: 128 }),
    Type.Integer({ minimum: -Number.MAX_SAFE_INTEGER, maximum: Number.MAX_SAFE_INTEGER }),
  ]),
);
const Channel = Type.String({ minLength: 1, maxLength: 512 });

export const HelloMessage = Type.Object({
  type: Type.Literal('hello'),
  rid: Rid,
  token: Type.String({ minLength: 1, maxLength: MAX_TOKEN_LENGTH }),
  deviceId: Type.Optional(Type.String({ minLength: 1, maxLength: 128 })),
  protocol: Type.Optional(Type.Integer({ minimum: 1, maximum: Number.MAX_SAFE_INTEGER })),
  /** Registers (or updates) the device named by `deviceId`; needs `deviceId`. */
  device: Type.Optional(DeviceInfo),
  /** Wire features this client understands (see WIRE_CAPABILITIES); unknown names are ignored. */
  capabilities: Type.Optional(Type.Array(Type.String({ minLength: 1, maxLength: 64 }), { maxItems: 32 })),
});
export const SubscribeMessage = Type.Object({
  type: Type.Literal('subscribe'),
  rid: Rid,
  channel: Channel,
  since: Type.Optional(Type.Integer({ minimum: 0, maximum: Number.MAX_SAFE_INTEGER })),
  snapshot: Type.Optional(Type.Boolean()),
});
export const UnsubscribeMessage = Type.Object({
  type: Type.Literal('unsubscribe'),
  rid: Rid,
  channel: Channel,
});
export const MutateMessage = Type.Object({
  type: Type.Literal('mutate'),
  rid: Rid,
  mutations: Type.Array(Mutation, { minItems: 1, maxItems: 1000 }),
});
export const PublishMessage = Type.Object({
  type: Type.Literal('publish'),
  rid: Rid,
  event: NewDomainEvent,
});
export const ResolveMessage = Type.Object({
  type: Type.Literal('resolve'),
  rid: Rid,
  conflictId: Type.String({ minLength: 1, maxLength: 128 }),
  resolution: Type.Union([
    Type.Literal('accept_local'),
    Type.Literal('accept_server'),
    Type.Literal('merge'),
  ]),
  data: Type.Optional(Type.Record(Type.String(), Type.Unknown())),
});
export const AckMessage = Type.Object({
  type: Type.Literal('ack'),
  rid: Rid,
  seq: Type.Integer({ minimum: 0, maximum: Number.MAX_SAFE_INTEGER }),
});
export const PingMessage = Type.Object({
  type: Type.Literal('ping'),
  rid: Rid,
});

export const CLIENT_MESSAGE_SCHEMAS = {
  hello: HelloMessage,
  subscribe: SubscribeMessage,
  unsubscribe: UnsubscribeMessage,
  mutate: MutateMessage,
  publish: PublishMessage,
  resolve: ResolveMessage,
  ack: AckMessage,
  ping: PingMessage,
} as const;

export type ClientMessageType = keyof typeof CLIENT_MESSAGE_SCHEMAS;
export type ClientMessage = {
  [K in ClientMessageType]: Static<(typeof CLIENT_MESSAGE_SCHEMAS)[K]>;
}[ClientMessageType];
export type ClientMessageOf<K extends ClientMessageType> = Static<(typeof CLIENT_MESSAGE_SCHEMAS)[K]>;

export type Rid = string | number;

export interface WelcomeMessage {
  type: 'welcome';
  rid?: Rid;
  connectionId: string;
  tenant: string;
  user: string;
  roles: string[];
  serverTime: string;
  heartbeatMs: number;
  protocol: number;
  /** The last seq this device acknowledged, when the connection named a device. */
  cursor?: number;
}
export interface SubscribedMessage {
  type: 'subscribed';
  rid?: Rid;
  channel: string;
  /** The tenant's head seq when the subscription started; the backlog runs up to it, live events follow. */
  cursor: number;
}
export interface UnsubscribedMessage {
  type: 'unsubscribed';
  rid?: Rid;
  channel: string;
  /** Set when the server ended the subscription on its own (the device's categories changed). */
  reason?: string;
}
/** A log event on a channel. A domain event's `type` travels as `eventType`: `type` is always "event". */
export type EventMessage = { type: 'event'; channel: string; eventType?: string } & Omit<LogEvent, 'type'>;
/** One event of an `events` batch: an `event` frame without `type` and `channel`. */
export type BatchedEvent = Omit<EventMessage, 'type' | 'channel'>;
/**
 * Several events of one channel in one frame, in seq order: sent instead of single `event` frames to a
 * connection whose `hello` named the capability `batch`, when more than one is ready at once.
 */
export interface EventsMessage {
  type: 'events';
  channel: string;
  events: BatchedEvent[];
}
export interface SnapshotMessage {
  type: 'snapshot';
  channel: string;
  records: SyncRecord[];
  cursor: number;
  done: boolean;
}
export interface ResultsMessage {
  type: 'results';
  rid?: Rid;
  results: MutationResult[];
}
export interface OkMessage {
  type: 'ok';
  rid?: Rid;
  seq: number;
  eventId: string;
  duplicate?: boolean;
}
export interface PongMessage {
  type: 'pong';
  rid?: Rid;
  serverTime: string;
}
/** Per-platform sync health, pushed to tenant admins and platform tokens on connect and on change. */
export interface HealthMessage {
  type: 'health';
  platforms: PlatformHealth[];
}
export interface ResetMessage {
  type: 'reset';
  channel: string;
  reason: string;
}
/** A write of this connection's user was stored as a conflict (also sent to the tenant's admins). */
export interface ConflictMessage {
  type: 'conflict';
  conflict: Conflict;
}
/** Sent after `welcome` to a connection that named a device: what waits for it after its cursor. */
export type PendingMessage = { type: 'pending'; deviceId: string } & DevicePending;
/** One value of a topic's symbol (a market tick). `seq` counts within the topic, not the tenant's log. */
export interface Tick {
  symbol: string;
  /** Position in its topic: 1, 2, 3... (a conflated subscriber sees gaps). */
  seq: number;
  /** Milliseconds since the epoch. */
  ts: number;
  price?: number;
  volume?: number;
  /** Further fields of the feed (open, high, bid...), as the connector parsed them. */
  data?: Record<string, unknown>;
}
/** One price level of an order book: [price, quantity]. */
export type DepthLevel = [number, number];
/** A symbol's order book depth; shares the topic's `seq` with its ticks. */
export interface Depth {
  symbol: string;
  seq: number;
  ts: number;
  bids: DepthLevel[];
  asks: DepthLevel[];
}
/** A live tick on a `topic:` channel. */
export type TickMessage = { type: 'tick'; channel: string } & Tick;
/** A live depth update on a `topic:` channel. */
export type DepthMessage = { type: 'depth'; channel: string } & Depth;
/**
 * Latest values of several symbols at once: after `subscribed` (`snapshot: true`: each symbol's latest
 * tick and depth, in frames of at most 500 values), and when a slow subscriber has drained
 * (`conflated`: how many ticks were replaced by newer ones while it was behind).
 */
export interface TicksMessage {
  type: 'ticks';
  channel: string;
  snapshot?: boolean;
  conflated?: number;
  ticks: Tick[];
  depth: Depth[];
}
/**
 * Sent before the events of a conflated catch-up window (a device with `conflate: true`): of the
 * channel's backlog after `after` up to and including `through`, only the latest change of each record
 * follows; `skipped` earlier changes were left out. The channel's cursor after the window is `through`.
 */
export interface ConflatedMessage {
  type: 'conflated';
  channel: string;
  after: number;
  through: number;
  skipped: number;
}
export interface ErrorMessage {
  type: 'error';
  rid?: Rid;
  code: ErrorCode;
  message: string;
  details?: unknown;
}

export type ServerMessage =
  | WelcomeMessage
  | SubscribedMessage
  | UnsubscribedMessage
  | EventMessage
  | EventsMessage
  | SnapshotMessage
  | ResultsMessage
  | OkMessage
  | PongMessage
  | ResetMessage
  | HealthMessage
  | ConflictMessage
  | PendingMessage
  | TickMessage
  | DepthMessage
  | TicksMessage
  | ConflatedMessage
  | ErrorMessage;
