/**
 * Connector metrics in the server's Prometheus registry, read from the connectors, the topic hub and the
 * tick writer when scraped: state, last success and staleness per connector; ticks, ticks/s and
 * reconnects per feed; the tick buffer, flush time and rows stored; values dropped by conflation; the
 * circuit of each provider; calls forwarded to the node running a connector, by how they ended; and
 * every number a connector's `metrics()` reports.
 */
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import type { TopicHub } from '../realtime/topic-hub.ts';
import type { ConnectorManager } from './manager.ts';
import type { TickWriter } from './tick-writer.ts';

const CIRCUIT_VALUE: Record<string, number> = { closed: 0, half_open: 1, open: 2 };

export interface ConnectorMetrics {
  /** Observes one tick flush. */
  flushed(rows: number, seconds: number): void;
  /** Counts ticks deleted by the retention pass. */
  pruned(rows: number): void;
  /** Counts a call this node forwarded to the node running a connector, by how it ended. */
  forwarded(outcome: string): void;
}

export function registerConnectorMetrics(
  registry: Registry,
  source: { manager: () => ConnectorManager | null; topics: TopicHub; ticks: () => TickWriter | null },
): ConnectorMetrics {
  const registers = [registry];
  const all = () => source.manager()?.all() ?? [];
  new Gauge({
    name: 'syncbridge_connector_up',
    help: 'Connectors running and connected or healthy (1), or not (0)',
    labelNames: ['tenant', 'connector', 'kind'] as const,
    registers,
    collect() {
      this.reset();
      for (const c of all())
        this.set({ tenant: c.tenant, connector: c.name, kind: c.kind }, c.state === 'running' ? 1 : 0);
    },
  });
  new Gauge({
    name: 'syncbridge_connector_state',
    help: 'The state of each connector (1 for its current state)',
    labelNames: ['tenant', 'connector', 'state'] as const,
    registers,
    collect() {
      this.reset();
      for (const c of all()) this.set({ tenant: c.tenant, connector: c.name, state: c.state }, 1);
    },
  });
  new Gauge({
    name: 'syncbridge_connector_last_success_timestamp_seconds',
    help: 'When each connector last got good data from upstream',
    labelNames: ['tenant', 'connector'] as const,
    registers,
    collect() {
      this.reset();
      for (const c of all()) {
        if (c.lastSuccessAt)
          this.set({ tenant: c.tenant, connector: c.name }, Date.parse(c.lastSuccessAt) / 1000);
      }
    },
  });
  new Gauge({
    name: 'syncbridge_connector_staleness_seconds',
    help: 'Age of the oldest data of each connector',
    labelNames: ['tenant', 'connector'] as const,
    registers,
    collect() {
      this.reset();
      for (const c of all()) {
        if (c.stalenessMs !== null) this.set({ tenant: c.tenant, connector: c.name }, c.stalenessMs / 1000);
      }
    },
  });
  new Gauge({
    name: 'syncbridge_connector_stale',
    help: 'Connectors with data older than their staleness limit (a health alert)',
    labelNames: ['tenant', 'connector'] as const,
    registers,
    collect() {
      this.reset();
      for (const c of all()) this.set({ tenant: c.tenant, connector: c.name }, c.stale ? 1 : 0);
    },
  });
  new Gauge({
    name: 'syncbridge_connector_metric',
    help: 'Numbers each connector reports (its metrics(); names ending in _total are counters)',
    labelNames: ['tenant', 'connector', 'metric'] as const,
    registers,
    collect() {
      this.reset();
      for (const c of all()) {
        for (const [metric, value] of Object.entries(c.metrics)) {
          if (Number.isFinite(value)) this.set({ tenant: c.tenant, connector: c.name, metric }, value);
        }
      }
    },
  });
  new Counter({
    name: 'syncbridge_feed_ticks_total',
    help: 'Ticks received from each upstream feed',
    labelNames: ['tenant', 'connector'] as const,
    registers,
    collect() {
      this.reset();
      for (const c of all()) {
        const n = c.metrics.ticks_total;
        if (c.kind === 'ws-feed' && n !== undefined) this.inc({ tenant: c.tenant, connector: c.name }, n);
      }
    },
  });
  new Gauge({
    name: 'syncbridge_feed_ticks_per_second',
    help: 'Ticks per second from each upstream feed, over the last 5 s',
    labelNames: ['tenant', 'connector'] as const,
    registers,
    collect() {
      this.reset();
      for (const c of all()) {
        const n = c.metrics.ticks_per_second;
        if (c.kind === 'ws-feed' && n !== undefined) this.set({ tenant: c.tenant, connector: c.name }, n);
      }
    },
  });
  new Counter({
    name: 'syncbridge_feed_reconnects_total',
    help: 'Reconnections to each upstream feed',
    labelNames: ['tenant', 'connector'] as const,
    registers,
    collect() {
      this.reset();
      for (const c of all()) {
        const n = c.metrics.reconnects_total;
        if (c.kind === 'ws-feed' && n !== undefined) this.inc({ tenant: c.tenant, connector: c.name }, n);
      }
    },
  });
  new Gauge({
    name: 'syncbridge_tick_buffer_rows',
    help: 'Ticks waiting to be stored',
    registers,
    collect() {
      this.set(source.ticks()?.size ?? 0);
    },
  });
  const stored = new Counter({
    name: 'syncbridge_ticks_stored_total',
    help: 'Ticks written to the store',
    registers,
  });
  new Counter({
    name: 'syncbridge_ticks_dropped_total',
    help: 'Ticks dropped unstored because the store stayed unreachable past the buffer limit',
    registers,
    collect() {
      this.reset();
      this.inc(source.ticks()?.dropped ?? 0);
    },
  });
  const pruned = new Counter({
    name: 'syncbridge_ticks_pruned_total',
    help: 'Stored ticks deleted for being older than the tick retention',
    registers,
  });
  const flushSeconds = new Histogram({
    name: 'syncbridge_tick_flush_duration_seconds',
    help: 'Duration of one batch write of ticks',
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
    registers,
  });
  new Counter({
    name: 'syncbridge_topic_conflated_total',
    help: 'Topic values never sent because a newer one of their symbol replaced them (slow subscribers)',
    registers,
    collect() {
      this.reset();
      this.inc(source.topics.dropped);
    },
  });
  new Gauge({
    name: 'syncbridge_topic_subscribers',
    help: 'Subscriptions to topic channels',
    registers,
    collect() {
      this.set(source.topics.subscriberCount());
    },
  });
  new Gauge({
    name: 'syncbridge_provider_circuit_state',
    help: 'Circuit breaker of each pull provider: 0 closed, 1 half-open, 2 open',
    labelNames: ['tenant', 'provider'] as const,
    registers,
    collect() {
      this.reset();
      for (const c of source.manager()?.circuits() ?? []) {
        this.set({ tenant: c.tenant, provider: c.provider }, CIRCUIT_VALUE[c.state] ?? 0);
      }
    },
  });
  const forwarded = new Counter({
    name: 'syncbridge_connector_calls_forwarded_total',
    help: 'Trigger and feed-subscription calls forwarded to the node running the connector, by outcome',
    labelNames: ['outcome'] as const,
    registers,
  });
  return {
    forwarded(outcome) {
      forwarded.inc({ outcome });
    },
    flushed(rows, seconds) {
      stored.inc(rows);
      flushSeconds.observe(seconds);
    },
    pruned(rows) {
      pruned.inc(rows);
    },
  };
}
