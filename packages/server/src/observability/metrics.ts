/**
 * Prometheus metrics (prom-client), one registry per server instance so tests can run several servers
 * in one process. Collected lazily from the parts that own the numbers.
 */
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';

export class MetricsRegistry {
  readonly registry = new Registry();
  readonly mutations = new Counter({
    name: 'syncbridge_mutations_total',
    help: 'Mutations by outcome',
    labelNames: ['status'] as const,
    registers: [this.registry],
  });
  readonly events = new Counter({
    name: 'syncbridge_log_events_total',
    help: 'Events appended to tenant logs',
    labelNames: ['kind'] as const,
    registers: [this.registry],
  });
  readonly commitSeconds = new Histogram({
    name: 'syncbridge_commit_duration_seconds',
    help: 'Duration of a group-commit transaction',
    buckets: [0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1],
    registers: [this.registry],
  });
  readonly batchSize = new Histogram({
    name: 'syncbridge_commit_batch_size',
    help: 'Mutations and events per group-commit transaction',
    buckets: [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000],
    registers: [this.registry],
  });

  readonly webhookAttempts = new Counter({
    name: 'syncbridge_webhook_attempts_total',
    help: 'Outbound webhook delivery attempts made by this node, by outcome',
    labelNames: ['outcome'] as const,
    registers: [this.registry],
  });

  constructor(sources: { connections: () => number; subscriptions: () => number; deliveries: () => number }) {
    collectDefaultMetrics({ register: this.registry, prefix: 'syncbridge_process_' });
    new Gauge({
      name: 'syncbridge_connections',
      help: 'Open WebSocket connections',
      registers: [this.registry],
      collect() {
        this.set(sources.connections());
      },
    });
    new Gauge({
      name: 'syncbridge_subscriptions',
      help: 'Active channel subscriptions',
      registers: [this.registry],
      collect() {
        this.set(sources.subscriptions());
      },
    });
    new Gauge({
      name: 'syncbridge_fanout_deliveries',
      help: 'Event frames delivered to subscribers since start',
      registers: [this.registry],
      collect() {
        this.set(sources.deliveries());
      },
    });
  }

  get contentType(): string {
    return this.registry.contentType;
  }

  render(): Promise<string> {
    return this.registry.metrics();
  }
}
