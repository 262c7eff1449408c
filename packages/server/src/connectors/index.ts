/**
 * Connectors, wired in one call by the composition root: the connector store (ticks, state, REST
 * definitions, sealed connector secrets), the topic hub behind `topic:` channels, the tick writer, the manager and its metrics.
 */
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import type { Bus } from '../bus/types.ts';
import type { ServerConfig } from '../config/config.ts';
import type { LogWriter } from '../log/log-writer.ts';
import type { RecordReader } from '../log/ports.ts';
import { TopicHub } from '../realtime/topic-hub.ts';
import type { SecretBox } from '../store/secret-box.ts';
import { connectorsSettings } from './config.ts';
import { ConnectorCalls } from './connector-calls.ts';
import { DefinitionNotices } from './definition-notices.ts';
import { LeaderCalls } from './leader-calls.ts';
import type { ConnectorLeases } from './leases.ts';
import { ConnectorManager } from './manager.ts';
import { registerConnectorMetrics } from './metrics.ts';
import { ConnectorSecrets } from './secrets.ts';
import type { ConnectorStore } from './store.ts';
import { TickRetention } from './tick-retention.ts';
import { TickWriter } from './tick-writer.ts';
import { TopicRelay } from './topic-relay.ts';
import type { Connector, ConnectorFactory } from './types.ts';

export { TopicHub } from '../realtime/topic-hub.ts';
export { type CallAnswer, type ConnectorCall, ConnectorCalls } from './connector-calls.ts';
export { FeedSubscriptions } from './feed-subscriptions.ts';
export type { ConnectorStatus } from './manager.ts';
export { ConnectorManager } from './manager.ts';
export { PullConnector } from './pull.ts';
export { HttpPullProvider, ProviderError, type PullProvider } from './pull-http.ts';
export * from './types.ts';
export { WsFeedConnector, type WsFeedHooks } from './ws-feed.ts';

export interface ConnectorSystem {
  topics: TopicHub;
  manager: ConnectorManager;
  /** The trigger and feed-subscription calls, answered here or by the node running the connector. */
  calls: ConnectorCalls;
  start(): Promise<void>;
  close(): Promise<void>;
}

export async function createConnectorSystem(deps: {
  config: ServerConfig;
  /** The log's records, which pulls read (reconcile). */
  store: RecordReader;
  writer: LogWriter;
  /** The connector store and leases, opened with the rest of storage (startup/storage.ts). */
  connectorStore: ConnectorStore;
  leases: ConnectorLeases;
  logger: Logger;
  registry: Registry;
  kinds?: Record<string, ConnectorFactory>;
  instances?: Connector[];
  /** The cluster's bus, when there are other nodes: topic values are relayed over it. */
  bus?: Bus | null;
  /** Seals the tenants' connector secrets (none can be stored without one). */
  secretBox: SecretBox | null;
}): Promise<ConnectorSystem> {
  const settings = connectorsSettings(deps.config.connectors, deps.config.maxBufferedBytes);
  const store = deps.connectorStore;
  const topics = new TopicHub({
    historySize: settings.historySize,
    conflateAboveBytes: settings.conflateAboveBytes,
  });
  let manager: ConnectorManager | null = null;
  let ticks: TickWriter | null = null;
  const metrics = registerConnectorMetrics(deps.registry, {
    manager: () => manager,
    topics,
    ticks: () => ticks,
  });
  ticks = new TickWriter(
    store,
    {
      flushMs: settings.tickFlushMs,
      flushRows: settings.tickFlushRows,
      maxBufferedRows: settings.tickMaxBufferedRows,
    },
    deps.logger,
    (rows, seconds) => metrics.flushed(rows, seconds),
  );
  const relay = deps.bus
    ? new TopicRelay(
        deps.bus,
        deps.config.nodeId,
        topics,
        (tenant, topic) => manager?.publishesHere(tenant, topic) ?? false,
        deps.logger,
      )
    : null;
  manager = new ConnectorManager({
    settings,
    store,
    records: deps.store,
    writer: deps.writer,
    topics,
    ticks,
    logger: deps.logger,
    kinds: deps.kinds,
    instances: deps.instances,
    allowPrivate: deps.config.webhookAllowPrivate,
    leases: deps.leases,
    leaseCheckMs: settings.leaseCheckMs,
    relay,
    notices: deps.bus ? new DefinitionNotices(deps.bus, deps.config.nodeId) : null,
    secrets: new ConnectorSecrets(store, deps.secretBox),
    env: deps.config.connectorEnv,
  });
  const retention = new TickRetention(
    store,
    { days: settings.tickRetentionDays, intervalMs: settings.tickPruneIntervalMs },
    deps.logger,
    (rows) => metrics.pruned(rows),
  );
  const system = manager;
  const writer = ticks;
  const calls = new ConnectorCalls(
    manager,
    deps.bus
      ? new LeaderCalls(deps.bus, deps.config.nodeId, deps.logger, {
          retryAfterMs: Math.max(1_000, settings.leaseCheckMs),
          outcome: (outcome) => metrics.forwarded(outcome),
        })
      : null,
  );
  return {
    topics,
    manager,
    calls,
    start: async () => {
      writer.start();
      await system.start();
      retention.start();
    },
    close: async () => {
      calls.close();
      await retention.close();
      await system.close();
    },
  };
}
