/**
 * Cluster metrics: the bus between nodes (publish time, transit time, messages received, reconnects)
 * and the sequencer's gap fills (events the bus lost or reordered, read back from the store). How long a
 * received commit takes to reach this node's sockets is `syncbridge_fanout_latency_seconds{origin="bus"}`.
 */
import { Counter, Histogram, type Registry } from 'prom-client';
import type { BusMessage } from '../bus/types.ts';
import { LATENCY_BUCKETS } from './realtime-metrics.ts';

export interface BusMetrics {
  /** One `publish` call took `seconds` (encoding and handing the message to the broker's client). */
  published(seconds: number): void;
  /** A message from another node arrived. */
  received(message: BusMessage): void;
  reconnected(): void;
}

export function registerBusMetrics(
  registry: Registry,
  source: { kind: string; gapFills: () => number },
): BusMetrics {
  const registers = [registry];
  const labels = { bus: source.kind };
  const publish = new Histogram({
    name: 'syncbridge_bus_publish_duration_seconds',
    help: 'Time to encode a bus message and hand it to the broker client',
    labelNames: ['bus'] as const,
    buckets: LATENCY_BUCKETS,
    registers,
  }).labels(labels);
  const transit = new Histogram({
    name: 'syncbridge_bus_transit_seconds',
    help: "From a commit's announcement on its node to its arrival here (wall clocks of two hosts: skew adds in)",
    labelNames: ['bus'] as const,
    buckets: LATENCY_BUCKETS,
    registers,
  }).labels(labels);
  const received = new Counter({
    name: 'syncbridge_bus_messages_received_total',
    help: 'Bus messages received from other nodes, by type',
    labelNames: ['bus', 'type'] as const,
    registers,
  });
  const reconnects = new Counter({
    name: 'syncbridge_bus_reconnects_total',
    help: 'Reconnections to the broker (messages sent meanwhile are read back from the store)',
    labelNames: ['bus'] as const,
    registers,
  });
  reconnects.inc(labels, 0);
  new Counter({
    name: 'syncbridge_sequencer_gap_fills_total',
    help: 'Gaps in a tenant log found by the sequencer (a lost, late or oversized bus message) and read from the store',
    registers,
    collect() {
      this.reset();
      this.inc(source.gapFills());
    },
  });
  const byType = new Map<string, ReturnType<typeof received.labels>>();
  return {
    published(seconds) {
      publish.observe(seconds);
    },
    received(message) {
      let counter = byType.get(message.type);
      if (!counter) {
        counter = received.labels({ ...labels, type: message.type });
        byType.set(message.type, counter);
      }
      counter.inc();
      if (message.type === 'events' && message.sentAt !== undefined) {
        transit.observe(Math.max(0, Date.now() - message.sentAt) / 1000);
      }
    },
    reconnected() {
      reconnects.inc(labels);
    },
  };
}
