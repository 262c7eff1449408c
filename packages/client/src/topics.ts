/**
 * Topic streams: `client.topic('prices', { symbols: ['EURUSD'] })` joins the channel
 * `topic:prices?symbols=EURUSD`, a connector's high-rate feed (market ticks) kept outside the log. The
 * stream holds each symbol's latest tick and order book depth: filled from the snapshot the server sends
 * on join, kept current by live `tick` and `depth` frames, and refilled after a reconnect (a topic has
 * no resume: the new snapshot replaces what a reconnect missed). A slow reader is conflated by the
 * server: it gets the latest value per symbol, never a backlog, and the `conflated` event says how many
 * ticks it skipped.
 */
import type { Depth, DepthMessage, Tick, TickMessage, TicksMessage } from '@syncbridge/protocol';
import { TypedEventEmitter } from './emitter.ts';
import type { SubscriptionManager } from './subscriptions.ts';

export interface TopicOptions {
  /** Only these symbols (default: every symbol of the topic). */
  symbols?: string[];
}

export interface TopicEvents {
  /** A live tick (also each symbol's latest tick from a snapshot, with `fromSnapshot`). */
  tick: Tick & { fromSnapshot?: boolean };
  depth: Depth & { fromSnapshot?: boolean };
  /** A snapshot arrived: on join and after every reconnect. */
  snapshot: { ticks: Tick[]; depth: Depth[] };
  /** The server skipped `dropped` ticks while this reader was behind; latest values are current again. */
  conflated: { dropped: number };
}

export function topicChannel(name: string, options: TopicOptions = {}): string {
  if (!options.symbols || options.symbols.length === 0) return `topic:${name}`;
  return `topic:${name}?symbols=${options.symbols.map(encodeURIComponent).join(',')}`;
}

export class TopicStream extends TypedEventEmitter<TopicEvents> {
  private readonly ticks = new Map<string, Tick>();
  private readonly books = new Map<string, Depth>();
  private readonly release: () => void;
  private readyResolve: (() => void) | null = null;
  private readonly ready: Promise<void>;
  private closed = false;

  constructor(
    readonly channel: string,
    subscriptions: SubscriptionManager,
  ) {
    super();
    this.ready = new Promise((resolve) => {
      this.readyResolve = resolve;
    });
    this.release = subscriptions.acquire(this.channel, { onTopic: (message) => this.receive(message) });
  }

  /** Resolves once the first snapshot has arrived (each symbol's latest value is then known). */
  whenReady(): Promise<void> {
    return this.ready;
  }

  /** The latest tick of a symbol, if one has been seen. */
  latest(symbol: string): Tick | undefined {
    return this.ticks.get(symbol);
  }

  /** The latest order book depth of a symbol, if one has been seen. */
  depth(symbol: string): Depth | undefined {
    return this.books.get(symbol);
  }

  /** The symbols with a known tick, sorted. */
  symbols(): string[] {
    return [...this.ticks.keys()].sort();
  }

  /** Leaves the topic (unsubscribing when no other stream of the client reads the same channel). */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.release();
    this.readyResolve?.();
    this.removeAllListeners();
  }

  private receive(message: TickMessage | DepthMessage | TicksMessage): void {
    switch (message.type) {
      case 'tick': {
        const { type: _t, channel: _c, ...tick } = message;
        this.ticks.set(tick.symbol, tick);
        this.emit('tick', tick);
        return;
      }
      case 'depth': {
        const { type: _t, channel: _c, ...depth } = message;
        this.books.set(depth.symbol, depth);
        this.emit('depth', depth);
        return;
      }
      case 'ticks': {
        for (const tick of message.ticks) {
          this.ticks.set(tick.symbol, tick);
          this.emit('tick', message.snapshot ? { ...tick, fromSnapshot: true } : tick);
        }
        for (const depth of message.depth) {
          this.books.set(depth.symbol, depth);
          this.emit('depth', message.snapshot ? { ...depth, fromSnapshot: true } : depth);
        }
        if (message.snapshot) {
          this.emit('snapshot', { ticks: message.ticks, depth: message.depth });
          this.readyResolve?.();
          this.readyResolve = null;
        }
        if (message.conflated !== undefined) this.emit('conflated', { dropped: message.conflated });
        return;
      }
    }
  }
}
