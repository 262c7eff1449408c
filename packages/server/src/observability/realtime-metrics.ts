/**
 * Realtime metrics: WebSocket traffic by message type, fan-out latency, and how far behind subscribers
 * are. Traffic is counted in plain numbers on the hot path (realtime/counters.ts) and copied into the
 * Prometheus counters when scraped; positions and socket buffers are read at scrape time too, and
 * reported as distributions over subscriptions and connections, never as a series per connection.
 */
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import { INBOUND_TYPES, OUTBOUND_TYPES, type RealtimeCounters } from '../realtime/counters.ts';
import type { Subscription } from '../realtime/subscription.ts';

/** Bucket bounds (events behind) of the subscription lag distribution. */
const LAG_BUCKETS = [0, 1, 10, 100, 1_000, 10_000, 100_000];
/** Bucket bounds (bytes) of the unsent-bytes distribution. */
const UNSENT_BUCKETS = [0, 1024, 16 * 1024, 64 * 1024, 256 * 1024, 1024 * 1024, 4 * 1024 * 1024];

export const LATENCY_BUCKETS = [
  0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5,
];

export interface RealtimeSources {
  counters: RealtimeCounters;
  /** Event frames handed to subscribers since start. */
  deliveries: () => number;
  subscriptions: () => Iterable<Subscription>;
  /** The tenant's highest seq handed to this node's hub (null: unknown). */
  head: (tenant: string) => number | null;
  /** Unsent bytes of each open connection. */
  unsentBytes: () => number[];
}

export interface RealtimeMetrics {
  /** A commit's events reached the sockets `seconds` after this node heard of it. */
  fannedOut(origin: 'local' | 'bus', seconds: number): void;
}

/**
 * Sets a gauge-histogram: for each bound, how many values are at or under it (`le`), plus `+Inf`.
 * Prometheus' `histogram_quantile` reads it like a histogram's buckets.
 */
function setBuckets(gauge: Gauge<'le'>, bounds: number[], values: number[]): void {
  const counts = new Array<number>(bounds.length).fill(0);
  for (const value of values) {
    for (let i = 0; i < bounds.length; i++) {
      if (value <= bounds[i]!) {
        counts[i]! += 1;
        break;
      }
    }
  }
  let cumulative = 0;
  for (let i = 0; i < bounds.length; i++) {
    cumulative += counts[i]!;
    gauge.set({ le: String(bounds[i]) }, cumulative);
  }
  gauge.set({ le: '+Inf' }, values.length);
}

export function registerRealtimeMetrics(registry: Registry, source: RealtimeSources): RealtimeMetrics {
  const registers = [registry];
  const { counters } = source;
  new Counter({
    name: 'syncbridge_ws_messages_received_total',
    help: 'WebSocket messages received, by type (invalid: not JSON, unknown type, too large or binary)',
    labelNames: ['type'] as const,
    registers,
    collect() {
      this.reset();
      for (const type of INBOUND_TYPES) this.inc({ type }, counters.messagesIn[type]);
    },
  });
  new Counter({
    name: 'syncbridge_ws_messages_sent_total',
    help: 'WebSocket frames sent, by message type (an events batch is one frame)',
    labelNames: ['type'] as const,
    registers,
    collect() {
      this.reset();
      for (const type of OUTBOUND_TYPES) this.inc({ type }, counters.framesSent(type));
    },
  });
  new Counter({
    name: 'syncbridge_ws_received_bytes_total',
    help: 'Payload bytes of the WebSocket frames received',
    registers,
    collect() {
      this.reset();
      this.inc(counters.bytesIn);
    },
  });
  new Counter({
    name: 'syncbridge_ws_sent_bytes_total',
    help: 'Payload bytes of the WebSocket frames sent (before permessage-deflate)',
    registers,
    collect() {
      this.reset();
      this.inc(counters.bytesOut);
    },
  });
  new Counter({
    name: 'syncbridge_slow_consumers_total',
    help: 'Connections closed because they fell further behind than maxBufferedBytes',
    registers,
    collect() {
      this.reset();
      this.inc(counters.slowConsumers);
    },
  });
  new Counter({
    name: 'syncbridge_frames_rate_limited_total',
    help: 'Client frames refused RATE_LIMITED (dropped unread; only the first few of a flood are answered)',
    registers,
    collect() {
      this.reset();
      this.inc(counters.rateLimited);
    },
  });
  new Counter({
    name: 'syncbridge_flood_disconnects_total',
    help: 'Connections closed (4008) for more than floodCloseAfter rate-limited frames in 10 s',
    registers,
    collect() {
      this.reset();
      this.inc(counters.floodClosed);
    },
  });
  new Counter({
    name: 'syncbridge_upgrades_over_capacity_total',
    help: 'WebSocket upgrades answered 503 because the node had maxConnections connections',
    registers,
    collect() {
      this.reset();
      this.inc(counters.overCapacity);
    },
  });
  new Counter({
    name: 'syncbridge_events_delivered_total',
    help: 'Live event frames handed to subscriptions by the fan-out (one per subscription and event)',
    registers,
    collect() {
      this.reset();
      this.inc(source.deliveries());
    },
  });
  const fanout = new Histogram({
    name: 'syncbridge_fanout_latency_seconds',
    help: 'From this node hearing of a commit (local: its writer; bus: the bus message) to its event frames written to the sockets',
    labelNames: ['origin'] as const,
    buckets: LATENCY_BUCKETS,
    registers,
  });

  // Positions are read once per scrape, for the three metrics below.
  let scraped: { live: number; catchingUp: number; lags: number[] } | null = null;
  const positions = () => {
    if (scraped) return scraped;
    const lags: number[] = [];
    let live = 0;
    let catchingUp = 0;
    for (const sub of source.subscriptions()) {
      if (sub.state === 'live') live += 1;
      else if (sub.state === 'catching_up') catchingUp += 1;
      else continue;
      const head = source.head(sub.tenant);
      // A live subscription has been offered every event its node has: what it still lacks waits in the
      // socket (see the unsent bytes). One catching up still has the store's backlog to read.
      lags.push(sub.state === 'live' || head === null ? 0 : Math.max(0, head - sub.lastSeq));
    }
    scraped = { live, catchingUp, lags };
    queueMicrotask(() => {
      scraped = null;
    });
    return scraped;
  };
  new Gauge({
    name: 'syncbridge_subscriptions_by_state',
    help: 'Channel subscriptions reading their backlog from the store (catching_up) or receiving live events',
    labelNames: ['state'] as const,
    registers,
    collect() {
      const p = positions();
      this.set({ state: 'live' }, p.live);
      this.set({ state: 'catching_up' }, p.catchingUp);
    },
  });
  new Gauge({
    name: 'syncbridge_subscription_lag_events_bucket',
    help: "Subscriptions at most `le` events behind their tenant's head on this node, at scrape time (a gauge histogram)",
    labelNames: ['le'] as const,
    registers,
    collect() {
      setBuckets(this, LAG_BUCKETS, positions().lags);
    },
  });
  new Gauge({
    name: 'syncbridge_subscription_lag_max_events',
    help: "The furthest any subscription is behind its tenant's head on this node, at scrape time",
    registers,
    collect() {
      let max = 0;
      for (const lag of positions().lags) if (lag > max) max = lag;
      this.set(max);
    },
  });
  new Gauge({
    name: 'syncbridge_connection_unsent_bytes_bucket',
    help: 'Connections with at most `le` bytes sent and not yet taken by the network, at scrape time (a gauge histogram)',
    labelNames: ['le'] as const,
    registers,
    collect() {
      setBuckets(this, UNSENT_BUCKETS, source.unsentBytes());
    },
  });
  new Gauge({
    name: 'syncbridge_unsent_bytes',
    help: 'Bytes sent to all connections and not yet taken by the network (outbound buffers), at scrape time',
    registers,
    collect() {
      let sum = 0;
      for (const n of source.unsentBytes()) sum += n;
      this.set(sum);
    },
  });
  const local = fanout.labels('local');
  const bus = fanout.labels('bus');
  return {
    fannedOut(origin, seconds) {
      (origin === 'local' ? local : bus).observe(seconds);
    },
  };
}
