/**
 * The connector API: what a connector is (start, stop, health, metrics, an optional trigger and feed
 * control), and what the server gives it (its tenant's write path, topic channels, durable state).
 * The built-in kinds (`ws-feed`, `pull`) are written against this same API, so a user's own connector
 * (registered with `startServer(config, { connectors, connectorKinds })`) gets the same REST status,
 * metrics and routes.
 */
import type {
  Depth,
  DepthLevel,
  LogEvent,
  Mutation,
  MutationResult,
  NewDomainEvent,
  SyncRecord,
  Tick,
} from '@syncbridge/protocol';
import type { Logger } from 'pino';
import type { GroupResult, PublishResult, WriteGroup } from '../log/log-writer.ts';
import type { PublishOptions } from '../log/ports.ts';
import type { DepthInput, TickInput } from '../realtime/topic-inputs.ts';

/** Where a connector is in its life. */
export type ConnectorState = 'starting' | 'running' | 'backing_off' | 'circuit_open' | 'stopped' | 'failed';

export interface ConnectorHealth {
  state: ConnectorState;
  /** Last time the connector got good data from upstream (ISO 8601), null before the first. */
  lastSuccessAt: string | null;
  /** The last failure's message, cleared by the next success. */
  lastError: string | null;
  /** Milliseconds since the last success (since the start when there was none). */
  stalenessMs: number | null;
  /** True while some of its data is older than the staleness limit (a health alert). */
  stale: boolean;
  /** Anything else worth showing in `GET /v1/connectors/{name}` (per connection, per feed...). */
  details?: Record<string, unknown>;
}

/** A price update of one symbol, and an order book update, as a connector hands them to a topic. */
export type { DepthInput, TickInput } from '../realtime/topic-inputs.ts';

/** A tick as stored and sent, a depth update, and an order book level: the protocol's types. */
export type { Depth, DepthLevel, Tick };

/** Publishing into `topic:<name>` channels of the connector's tenant. */
export interface TopicPublisher {
  /** Makes a topic known (subscribers may join it) before its first tick; resumes its sequence. */
  declare(topic: string): Promise<void>;
  tick(topic: string, tick: TickInput): Tick;
  depth(topic: string, depth: DepthInput): Depth;
}

/** Small durable values of one connector (cursors, last success times), kept across restarts. */
export interface ConnectorStateStore {
  get<T = unknown>(key: string): Promise<T | null>;
  put(key: string, value: unknown): Promise<void>;
}

/** What the server hands a connector when it starts. */
export interface ConnectorContext {
  readonly tenant: string;
  readonly name: string;
  readonly logger: Logger;
  /** Applies mutations as this connector, in one transaction (results in the order given). */
  mutate(mutations: Mutation[]): Promise<MutationResult[]>;
  /** Appends a domain event as this connector (`system` only for the server's own `syncbridge.*` alerts). */
  publish(event: NewDomainEvent, options?: PublishOptions): Promise<PublishResult>;
  /**
   * Commits groups of mutations and events as this connector, in order, in one transaction; each group
   * once per marker (an upstream position): a group given again after a crash resolves as a duplicate
   * and writes nothing.
   */
  groups(groups: WriteGroup[]): Promise<GroupResult[]>;
  /** Reads the tenant's current records (reconciliation). */
  records: {
    get(collection: string, id: string): Promise<SyncRecord | null>;
    /** Live records matching the filter, by id, all pages. */
    list(collection: string, filter?: Record<string, string>): Promise<SyncRecord[]>;
  };
  topics: TopicPublisher;
  state: ConnectorStateStore;
  /** Persists ticks in batches (history queries); a no-op when the feed does not persist. */
  persistTicks(topic: string, ticks: Tick[]): void;
}

/** A request to run now: a provider webhook, `POST /v1/connectors/{name}/trigger`. */
export interface TriggerRequest {
  /** Only this connection (pull connectors); all of them when absent. */
  connection?: string;
  /** A full reconciliation instead of a delta sync. */
  reconcile?: boolean;
  /** Why (logged and shown in the run's report), e.g. `webhook:powens`. */
  reason?: string;
}

export interface TriggerResult {
  runs: Array<Record<string, unknown> & { status: string }>;
}

/** Control of an upstream feed's symbols, which `…/subscriptions` routes drive. */
export interface FeedControl {
  /** The topic its ticks go to. */
  readonly topic: string;
  /** Symbols to receive from now on (the union of every subscription). */
  setSymbols(symbols: string[]): void;
  /** Symbols currently subscribed upstream (sent and not refused). */
  activeSymbols(): string[];
}

export interface Connector {
  readonly name: string;
  readonly tenant: string;
  readonly kind: string;
  start(ctx: ConnectorContext): Promise<void> | void;
  /** Stops every timer and connection; resolves when nothing of it runs any more. */
  stop(): Promise<void> | void;
  health(): ConnectorHealth;
  /** Numbers worth graphing (counters and gauges), exported as `syncbridge_connector_metric`. */
  metrics?(): Record<string, number>;
  trigger?(request: TriggerRequest): Promise<TriggerResult>;
  /**
   * The connector is being removed for good (REST delete), after `stop`: frees what it holds upstream
   * (a replication slot). Not called when it merely stops or moves to another node.
   */
  remove?(): Promise<void>;
  /**
   * Hears each event of its tenant's log committed on this node (record changes and domain events,
   * such as an inbound provider webhook's), after the commit.
   */
  onEvent?(event: LogEvent): void;
  readonly feed?: FeedControl;
}

/** A connector's definition as the config file and REST give it. */
export interface ConnectorSpec {
  name: string;
  tenant: string;
  kind: string;
  /** false: defined but not started. */
  enabled?: boolean;
  [option: string]: unknown;
}

/** What the server gives a factory with a definition. */
export interface ConnectorBuildContext {
  /**
   * The template values the definition may read, fresh at each call (call it before each connect or
   * request): `env.NAME` for the variables listed in `connectors.env`, only for a definition from the
   * config file; `secrets.NAME` for the connector secrets of its tenant it names. Nothing else of the
   * server's environment is ever available to a definition.
   */
  variables(): Promise<Record<string, string>>;
}

/** Makes a connector of one kind from its definition (throw a ConnectorSpecError for bad options). */
export type ConnectorFactory = (spec: ConnectorSpec, context: ConnectorBuildContext) => Connector;

export class ConnectorSpecError extends Error {
  constructor(readonly problems: string[]) {
    super(problems.join('; '));
    this.name = 'ConnectorSpecError';
  }
}
