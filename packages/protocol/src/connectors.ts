/**
 * Connectors over REST (`/v1/connectors`): a connector's status and health, a feed's ticks, depth,
 * symbols and subscriptions, and the body that defines a connector, as TypeBox schemas shared by the
 * server and its clients (the dashboard). A definition's own options are the kind's (docs/connectors.md).
 */
import { type Static, Type } from '@sinclair/typebox';

/** A connector's, connection's or subscription's name in a path. */
export const CONNECTOR_NAME = { pattern: '^[A-Za-z0-9_.\\-]{1,128}$' };
export const ConnectorNameParams = Type.Object({ name: Type.String(CONNECTOR_NAME) });
export const ConnectorSymbolParams = Type.Object({
  name: Type.String(CONNECTOR_NAME),
  symbol: Type.String({ minLength: 1, maxLength: 128 }),
});
export const FeedSubscriptionParams = Type.Object({
  name: Type.String(CONNECTOR_NAME),
  id: Type.String({ minLength: 1, maxLength: 64 }),
});

export const ConnectorTick = Type.Object(
  {
    symbol: Type.String(),
    seq: Type.Integer(),
    ts: Type.Number({ description: 'milliseconds since the epoch' }),
    price: Type.Optional(Type.Number()),
    volume: Type.Optional(Type.Number()),
    data: Type.Optional(Type.Record(Type.String(), Type.Unknown())),
  },
  { additionalProperties: false },
);
const Level = Type.Tuple([Type.Number(), Type.Number()], { description: '[price, quantity]' });
export const ConnectorDepth = Type.Object({
  symbol: Type.String(),
  seq: Type.Integer(),
  ts: Type.Number(),
  bids: Type.Array(Level),
  asks: Type.Array(Level),
});
export const ConnectorStatus = Type.Object(
  {
    name: Type.String(),
    tenant: Type.String(),
    kind: Type.String(),
    origin: Type.Union([Type.Literal('config'), Type.Literal('api'), Type.Literal('code')]),
    enabled: Type.Boolean(),
    state: Type.String({ description: 'starting, running, backing_off, circuit_open, stopped or failed' }),
    lastSuccessAt: Type.Union([Type.String(), Type.Null()]),
    lastError: Type.Union([Type.String(), Type.Null()]),
    stalenessMs: Type.Union([Type.Number(), Type.Null()]),
    stale: Type.Boolean(),
    topic: Type.Optional(Type.String()),
    metrics: Type.Record(Type.String(), Type.Number()),
    details: Type.Optional(Type.Record(Type.String(), Type.Unknown())),
    spec: Type.Optional(Type.Record(Type.String(), Type.Unknown())),
    startError: Type.Optional(Type.String()),
    role: Type.Union([Type.Literal('leader'), Type.Literal('standby')], {
      description:
        'leader: it runs on this node; standby: another node of the cluster runs it (holds its lease), and this one takes over if that node stops',
    }),
    triggerable: Type.Boolean({
      description:
        'it can be run now (POST /v1/connectors/{name}/trigger); streaming kinds (ws-feed, pg-cdc) cannot',
    }),
  },
  { additionalProperties: false },
);
export const FeedSubscription = Type.Object({
  id: Type.String(),
  symbols: Type.Array(Type.String()),
  createdAt: Type.String(),
  createdBy: Type.String(),
});
export const FeedSymbolStatus = Type.Object({
  symbol: Type.String(),
  /** Some subscription (or the configuration) asks for it. */
  subscribed: Type.Boolean(),
  /** Subscribed upstream on the current connection. */
  active: Type.Boolean(),
  ticks: Type.Integer({ description: 'ticks received since start' }),
  lastTickAt: Type.Union([Type.String(), Type.Null()]),
  price: Type.Optional(Type.Number()),
});
export const ConnectorBody = Type.Object(
  {
    name: Type.String(CONNECTOR_NAME),
    kind: Type.String(CONNECTOR_NAME),
    tenant: Type.Optional(Type.String(CONNECTOR_NAME)),
    enabled: Type.Optional(Type.Boolean()),
  },
  { additionalProperties: true, description: "The kind's options (see docs/connectors.md)" },
);
/** Each connector's freshness beside the platforms' delivery health (details in GET /v1/connectors). */
export const ConnectorHealth = Type.Object({
  name: Type.String(),
  kind: Type.String(),
  state: Type.String(),
  lastSuccessAt: Type.Union([Type.String(), Type.Null()]),
  lastError: Type.Union([Type.String(), Type.Null()]),
  stalenessMs: Type.Union([Type.Number(), Type.Null()]),
  stale: Type.Boolean(),
});

export type ConnectorHealth = Static<typeof ConnectorHealth>;
export type ConnectorStatus = Static<typeof ConnectorStatus>;
export type ConnectorTick = Static<typeof ConnectorTick>;
export type ConnectorDepth = Static<typeof ConnectorDepth>;
export type FeedSubscription = Static<typeof FeedSubscription>;
export type FeedSymbolStatus = Static<typeof FeedSymbolStatus>;
export type ConnectorBody = Static<typeof ConnectorBody>;
