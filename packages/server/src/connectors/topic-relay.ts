/**
 * Topic values across nodes. A feed runs on one node (the holder of its connector's lease); clients of
 * its `topic:` channel connect to any node. The relay sends what the feed publishes to the other nodes
 * over the bus, batched per event-loop turn and topic, and applies what it hears from them to this
 * node's topic hub, so every node has the same latest values and its subscribers get the live ticks.
 * A node that starts, or stands by for a feed, asks for the topic's latest values once.
 *
 * It never carries the truth of the log (ticks are outside it), and a lost batch is a gap in the
 * topic's seq: each symbol's next value covers it, as conflation does.
 */
import type { Logger } from 'pino';
import type { Bus, BusMessage } from '../bus/types.ts';
import type { TopicHub } from '../realtime/topic-hub.ts';
import type { Depth, Tick } from './types.ts';

/** Values per bus message: large batches are split. */
const BATCH = 500;

interface Pending {
  tenant: string;
  topic: string;
  ticks: Tick[];
  depth: Depth[];
}

function isValue(v: unknown): v is { symbol: string; seq: number; ts: number } {
  if (typeof v !== 'object' || v === null) return false;
  const o = v as Record<string, unknown>;
  return typeof o.symbol === 'string' && Number.isSafeInteger(o.seq) && typeof o.ts === 'number';
}

export class TopicRelay {
  private readonly pending = new Map<string, Pending>();
  private scheduled = false;

  constructor(
    private readonly bus: Bus,
    private readonly node: string,
    private readonly topics: TopicHub,
    /** True when this node runs the feed of the tenant's topic (it answers sync requests). */
    private readonly publishesHere: (tenant: string, topic: string) => boolean,
    private readonly logger: Logger,
  ) {
    bus.subscribe((message) => this.receive(message));
  }

  /** A tick this node's feed published: the other nodes get it with the next batch. */
  tick(tenant: string, topic: string, tick: Tick): void {
    this.entry(tenant, topic).ticks.push(tick);
    this.schedule();
  }

  depth(tenant: string, topic: string, depth: Depth): void {
    this.entry(tenant, topic).depth.push(depth);
    this.schedule();
  }

  /** Asks the node running the topic's feed for its latest values. */
  requestLatest(tenant: string, topic: string): void {
    this.bus.publish({ type: 'topic_sync', node: this.node, tenant, topic });
  }

  private entry(tenant: string, topic: string): Pending {
    const key = `${tenant}\u0000${topic}`;
    let p = this.pending.get(key);
    if (!p) {
      p = { tenant, topic, ticks: [], depth: [] };
      this.pending.set(key, p);
    }
    return p;
  }

  private schedule(): void {
    if (this.scheduled) return;
    this.scheduled = true;
    setImmediate(() => this.flush());
  }

  private flush(): void {
    this.scheduled = false;
    for (const p of this.pending.values()) this.send(p.tenant, p.topic, p.ticks, p.depth);
    this.pending.clear();
  }

  private send(tenant: string, topic: string, ticks: Tick[], depth: Depth[]): void {
    for (let t = 0, d = 0; t < ticks.length || d < depth.length; ) {
      const tickPart = ticks.slice(t, t + BATCH);
      t += tickPart.length;
      const depthPart = depth.slice(d, d + BATCH - tickPart.length);
      d += depthPart.length;
      this.bus.publish({ type: 'topic', node: this.node, tenant, topic, ticks: tickPart, depth: depthPart });
    }
  }

  private receive(message: BusMessage): void {
    if (message.type === 'topic') {
      const { tenant, topic } = message;
      const ticks = message.ticks.filter(isValue);
      const depth = message.depth.filter(isValue);
      if (ticks.length + depth.length < message.ticks.length + message.depth.length) {
        this.logger.warn({ node: message.node, tenant, topic }, 'malformed topic values from another node');
      }
      // Ticks and depth share the topic's seq: apply them in the order they were published.
      let d = 0;
      for (const tick of ticks) {
        while (d < depth.length && depth[d]!.seq < tick.seq)
          this.topics.applyDepth(tenant, topic, depth[d++]!);
        this.topics.applyTick(tenant, topic, tick);
      }
      while (d < depth.length) this.topics.applyDepth(tenant, topic, depth[d++]!);
    } else if (message.type === 'topic_sync') {
      const { tenant, topic } = message;
      if (!this.publishesHere(tenant, topic)) return;
      const ticks: Tick[] = [];
      const depth: Depth[] = [];
      for (const s of this.topics.symbols(tenant, topic)) {
        if (s.tick) ticks.push(s.tick);
        if (s.depth) depth.push(s.depth);
      }
      ticks.sort((a, b) => a.seq - b.seq);
      depth.sort((a, b) => a.seq - b.seq);
      this.send(tenant, topic, ticks, depth);
    }
  }
}
