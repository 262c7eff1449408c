/**
 * Prometheus metrics (prom-client), one registry per server instance so tests can run several servers
 * in one process. Collected lazily from the parts that own the numbers: this module holds the write
 * path (mutations, group commits, append latency, conflicts), webhooks, store reads and the node's
 * identity; realtime-metrics.ts and bus-metrics.ts hold the rest, connectors/metrics.ts the connectors'.
 * Every metric is listed in docs/metrics.md.
 */
import type { MutationResult } from '@syncbridge/protocol';
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';
import type { StaleWrite } from '../log/tenant-writer.ts';
import type { AttemptObservation } from '../webhooks/dispatcher.ts';
import { LATENCY_BUCKETS } from './realtime-metrics.ts';

export interface MetricsSources {
  connections: () => number;
  subscriptions: () => number;
  deliveries: () => number;
  /** Open manual conflicts by tenant (read at scrape time). */
  openConflicts?: () => Promise<{ tenant: string; count: number }[]>;
  /** This node's identity, for `syncbridge_node_info`. */
  node?: { id: string; store: string; bus: string };
}

/** A webhook attempt's outcome label. */
function attemptOutcome(statusCode: number | null): string {
  if (statusCode === null) return 'no_response';
  if (statusCode >= 200 && statusCode < 300) return 'success';
  if (statusCode === 429 || statusCode === 503) return 'throttled';
  return 'http_error';
}

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
  readonly appendSeconds = new Histogram({
    name: 'syncbridge_append_duration_seconds',
    help: 'From a write reaching the log writer to its acknowledgement after commit, by kind (mutations, event, resolve)',
    labelNames: ['kind'] as const,
    buckets: LATENCY_BUCKETS,
    registers: [this.registry],
  });
  readonly conflictsDetected = new Counter({
    name: 'syncbridge_conflicts_detected_total',
    help: "Mutations based on a version that was not the record's current one, by collection strategy and outcome",
    labelNames: ['strategy', 'outcome'] as const,
    registers: [this.registry],
  });
  readonly conflictsResolved = new Counter({
    name: 'syncbridge_conflicts_resolved_total',
    help: 'Stored (manual) conflicts resolved, by resolution',
    labelNames: ['resolution'] as const,
    registers: [this.registry],
  });

  readonly webhookAttempts = new Counter({
    name: 'syncbridge_webhook_attempts_total',
    help: 'Outbound webhook delivery attempts made by this node, by outcome (success, http_error, throttled, no_response)',
    labelNames: ['outcome'] as const,
    registers: [this.registry],
  });
  readonly webhookAttemptSeconds = new Histogram({
    name: 'syncbridge_webhook_attempt_duration_seconds',
    help: 'Duration of one webhook POST, answered or not',
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
    registers: [this.registry],
  });
  readonly webhookLagSeconds = new Histogram({
    name: 'syncbridge_webhook_delivery_lag_seconds',
    help: "From an event's commit to its successful webhook delivery, by platform",
    labelNames: ['platform'] as const,
    buckets: [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600],
    registers: [this.registry],
  });
  readonly webhookDeadLetters = new Counter({
    name: 'syncbridge_webhook_dead_letters_total',
    help: 'Webhook deliveries that failed their last try',
    registers: [this.registry],
  });
  readonly retentionPruned = new Counter({
    name: 'syncbridge_retention_pruned_total',
    help: 'Rows the retention job deleted, by table (webhook_dead_letters: failed deliveries)',
    labelNames: ['table'] as const,
    registers: [this.registry],
  });
  readonly storeReadSeconds = new Histogram({
    name: 'syncbridge_store_read_duration_seconds',
    help: 'Store reads outside the write transaction (backlogs, snapshots, heads, record reads), by operation',
    labelNames: ['operation'] as const,
    buckets: LATENCY_BUCKETS,
    registers: [this.registry],
  });

  constructor(sources: MetricsSources) {
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
      help: 'Event frames delivered to subscribers since start (also as the counter syncbridge_events_delivered_total)',
      registers: [this.registry],
      collect() {
        this.set(sources.deliveries());
      },
    });
    const { openConflicts, node } = sources;
    if (openConflicts) {
      new Gauge({
        name: 'syncbridge_conflicts_open',
        help: 'Manual conflicts waiting for a resolution, by tenant (tenants with none are left out)',
        labelNames: ['tenant'] as const,
        registers: [this.registry],
        async collect() {
          const counts = await openConflicts();
          this.reset();
          for (const { tenant, count } of counts) this.set({ tenant }, count);
        },
      });
    }
    if (node) {
      new Gauge({
        name: 'syncbridge_node_info',
        help: 'This node (value 1): its id and the kinds of its store and bus; join on it to tell nodes apart',
        labelNames: ['node', 'store', 'bus'] as const,
        registers: [this.registry],
      }).set({ node: node.id, store: node.store, bus: node.bus }, 1);
    }
  }

  /** A group commit: its duration and size, each mutation's outcome, and the stale ones' strategies. */
  committed(
    writes: number,
    seconds: number,
    statuses: readonly MutationResult['status'][],
    stale: readonly StaleWrite[],
  ): void {
    this.commitSeconds.observe(seconds);
    this.batchSize.observe(writes);
    // One increment per status, not per mutation: a group commit of 50 puts is one `applied` += 50.
    const counts = new Map<MutationResult['status'], number>();
    for (const status of statuses) counts.set(status, (counts.get(status) ?? 0) + 1);
    for (const [status, n] of counts) this.mutations.inc({ status }, n);
    for (const { strategy, status } of stale) this.conflictsDetected.inc({ strategy, outcome: status });
  }

  /** One webhook attempt of this node. */
  attempted(attempt: AttemptObservation): void {
    this.webhookAttempts.inc({ outcome: attemptOutcome(attempt.statusCode) });
    this.webhookAttemptSeconds.observe(attempt.durationMs / 1000);
    if (attempt.success) {
      this.webhookLagSeconds.observe({ platform: attempt.platform ?? '' }, attempt.sinceCommitMs / 1000);
    }
    if (attempt.deadLetter) this.webhookDeadLetters.inc();
  }

  get contentType(): string {
    return this.registry.contentType;
  }

  render(): Promise<string> {
    return this.registry.metrics();
  }
}

/** A sample line carrying a `tenant` label (label values are escaped, so `"` after `tenant=` is the label's). */
const TENANT_SERIES = /^[a-zA-Z_:][a-zA-Z0-9_:]*\{(?:[^}]*,)?tenant="/;

/**
 * The exposition without any series labelled by tenant: what GET /metrics shows a scraper without the
 * metrics token, so that tenants' names (and their activity) stay private to operators.
 */
export function withoutTenantSeries(text: string): string {
  return text
    .split('\n')
    .filter((line) => !TENANT_SERIES.test(line))
    .join('\n');
}
