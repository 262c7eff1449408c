/**
 * Topic channels (`topic:<name>`, `topic:<name>?symbols=A,B`): high-rate feeds such as market ticks,
 * outside the tenant's log. Per topic and symbol the hub keeps the latest tick and order book depth
 * (sent to a subscriber when it joins) and a bounded in-memory history.
 *
 * Slow subscribers are conflated, never queued: while a subscriber's socket holds more than
 * `conflateAboveBytes` unsent, its ticks are not written but kept as the latest one per symbol
 * (replacing any older one, which counts as dropped); once the socket has drained to half that, it
 * gets one `ticks` frame with those latest values and goes back to live frames. So a stalled screen
 * costs one value per symbol, not a growing backlog, and the others keep the full rate.
 *
 * Every call is synchronous: a join's snapshot and the ticks published around it cannot interleave,
 * so a subscriber sees each symbol's latest value once, then everything after it.
 */

import type { Depth, Tick } from '@syncbridge/protocol';
import { SyncError } from '../core/errors.ts';
import type { DepthInput, TickInput } from './topic-inputs.ts';

export interface TopicSink {
  /** Sends a prepared frame; `type` is the frame's message type (counted by the connection's metrics). */
  sendFrame(frame: Buffer, type: 'tick' | 'depth' | 'ticks' | 'subscribed'): boolean;
  /** Bytes written to the connection and not yet taken by the network. */
  bufferedBytes(): number;
  isOpen(): boolean;
}

export interface TopicHubOptions {
  /** Ticks kept in memory per symbol. */
  historySize: number;
  /** A subscriber with more than this many bytes unsent is conflated. */
  conflateAboveBytes: number;
  /** How often conflated subscribers are checked for a drained socket. */
  drainCheckMs?: number;
}

/** At most this many symbols' values in one `ticks` frame. */
const FRAME_SYMBOLS = 500;

class Ring<T> {
  private items: T[] = [];
  private start = 0;
  constructor(private readonly capacity: number) {}
  push(item: T): void {
    if (this.capacity <= 0) return;
    if (this.items.length < this.capacity) this.items.push(item);
    else {
      this.items[this.start] = item;
      this.start = (this.start + 1) % this.capacity;
    }
  }
  /** Oldest first. */
  toArray(): T[] {
    return [...this.items.slice(this.start), ...this.items.slice(0, this.start)];
  }
}

interface SymbolState {
  tick: Tick | null;
  /** The tick's JSON members without braces, shared by every frame that carries it (made when needed). */
  tickBody: string | null;
  depth: Depth | null;
  depthBody: string | null;
  ticks: number;
  history: Ring<Tick>;
}

class Topic {
  seq = 0;
  published = 0;
  readonly symbols = new Map<string, SymbolState>();
  readonly subscribers = new Set<TopicSubscription>();
  constructor(readonly name: string) {}
}

function members(value: object): string {
  return JSON.stringify(value).slice(1, -1);
}

/** Parses `topic:<name>[?symbols=A,B | ?symbol=A]`. */
export function parseTopicChannel(channel: string): { topic: string; symbols: Set<string> | null } {
  const rest = channel.slice('topic:'.length);
  const q = rest.indexOf('?');
  const topic = q < 0 ? rest : rest.slice(0, q);
  if (!/^[A-Za-z0-9_.-]{1,128}$/.test(topic))
    throw new SyncError('BAD_REQUEST', `"${topic}" is not a valid topic name`);
  if (q < 0) return { topic, symbols: null };
  const symbols = new Set<string>();
  for (const [key, value] of new URLSearchParams(rest.slice(q + 1))) {
    if (key !== 'symbols' && key !== 'symbol') {
      throw new SyncError('BAD_REQUEST', `topic channels filter by symbols only, not ${key}`);
    }
    for (const s of value.split(',')) if (s.trim()) symbols.add(s.trim());
  }
  if (symbols.size === 0) throw new SyncError('BAD_REQUEST', 'symbols= names no symbol');
  return { topic, symbols };
}

/** One connection's subscription to one topic channel. */
export class TopicSubscription {
  conflating = false;
  closed = false;
  /** Frames sent live (not counting join and conflation frames). */
  delivered = 0;
  /** Values replaced by a newer one of their symbol while conflated: never sent. */
  dropped = 0;
  private readonly pendingTicks = new Map<string, string>();
  private readonly pendingDepth = new Map<string, string>();
  private droppedSinceFlush = 0;

  constructor(
    readonly topic: Topic,
    readonly key: string,
    readonly channel: string,
    readonly symbols: Set<string> | null,
    readonly sink: TopicSink,
    private readonly hub: TopicHub,
  ) {}

  matches(symbol: string): boolean {
    return this.symbols === null || this.symbols.has(symbol);
  }

  /** Sends a live value, or keeps it as its symbol's latest while the socket is backed up. */
  offer(kind: 'tick' | 'depth', symbol: string, body: string, frame: () => Buffer): void {
    if (this.closed) return;
    if (!this.conflating && this.sink.bufferedBytes() > this.hub.conflateAboveBytes) {
      this.conflating = true;
      this.hub.watchDrain(this);
    }
    if (this.conflating) {
      const pending = kind === 'tick' ? this.pendingTicks : this.pendingDepth;
      if (pending.has(symbol)) {
        this.dropped += 1;
        this.droppedSinceFlush += 1;
        this.hub.dropped += 1;
      }
      pending.set(symbol, body);
      return;
    }
    this.delivered += 1;
    this.sink.sendFrame(frame(), kind);
  }

  /** Sends the values kept while conflated, as `ticks` frames, and goes back to live frames. */
  flushPending(): void {
    const ticks = [...this.pendingTicks.values()];
    const depth = [...this.pendingDepth.values()];
    this.pendingTicks.clear();
    this.pendingDepth.clear();
    const conflated = this.droppedSinceFlush;
    this.droppedSinceFlush = 0;
    this.conflating = false;
    this.hub.sendValues(this, ticks, depth, { conflated });
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.hub.remove(this);
  }
}

export class TopicHub {
  private readonly topics = new Map<string, Topic>();
  private readonly draining = new Set<TopicSubscription>();
  private drainTimer: NodeJS.Timeout | null = null;
  readonly conflateAboveBytes: number;
  /** Values dropped by conflation since start, over every subscriber. */
  dropped = 0;

  constructor(private readonly options: TopicHubOptions) {
    this.conflateAboveBytes = options.conflateAboveBytes;
  }

  private key(tenant: string, topic: string): string {
    return `${tenant}\u0000${topic}`;
  }

  private topic(tenant: string, name: string): Topic {
    const key = this.key(tenant, name);
    let topic = this.topics.get(key);
    if (!topic) {
      topic = new Topic(name);
      this.topics.set(key, topic);
    }
    return topic;
  }

  /** Makes a topic known; its sequence continues after `lastSeq` (the highest one persisted). */
  declare(tenant: string, name: string, lastSeq = 0): void {
    const topic = this.topic(tenant, name);
    topic.seq = Math.max(topic.seq, lastSeq);
  }

  has(tenant: string, name: string): boolean {
    return this.topics.has(this.key(tenant, name));
  }

  names(tenant: string): string[] {
    const prefix = `${tenant}\u0000`;
    return [...this.topics.keys()].filter((k) => k.startsWith(prefix)).map((k) => k.slice(prefix.length));
  }

  private symbol(topic: Topic, symbol: string): SymbolState {
    let state = topic.symbols.get(symbol);
    if (!state) {
      state = {
        tick: null,
        tickBody: null,
        depth: null,
        depthBody: null,
        ticks: 0,
        history: new Ring(this.options.historySize),
      };
      topic.symbols.set(symbol, state);
    }
    return state;
  }

  tick(tenant: string, topicName: string, input: TickInput): Tick {
    const topic = this.topic(tenant, topicName);
    // Whole milliseconds: what both stores keep (PostgreSQL's bigint refuses a fraction).
    const tick: Tick = { symbol: input.symbol, seq: ++topic.seq, ts: Math.round(input.ts ?? Date.now()) };
    if (input.price !== undefined) tick.price = input.price;
    if (input.volume !== undefined) tick.volume = input.volume;
    if (input.data !== undefined) tick.data = input.data;
    const state = this.symbol(topic, tick.symbol);
    state.tick = tick;
    state.tickBody = null;
    state.ticks += 1;
    state.history.push(tick);
    topic.published += 1;
    if (topic.subscribers.size > 0) {
      state.tickBody = members(tick);
      this.fanOut(topic, 'tick', tick.symbol, state.tickBody);
    }
    return tick;
  }

  depth(tenant: string, topicName: string, input: DepthInput): Depth {
    const topic = this.topic(tenant, topicName);
    const depth: Depth = {
      symbol: input.symbol,
      seq: ++topic.seq,
      ts: Math.round(input.ts ?? Date.now()),
      bids: input.bids,
      asks: input.asks,
    };
    const body = members(depth);
    const state = this.symbol(topic, depth.symbol);
    state.depth = depth;
    state.depthBody = body;
    this.fanOut(topic, 'depth', depth.symbol, body);
    return depth;
  }

  /**
   * A tick published on another node (relayed over the bus), with its seq: it becomes the symbol's
   * latest value and reaches this node's subscribers, unless this node already has a later one. The
   * topic's seq moves up to it, so a node that takes the feed over continues after it.
   */
  applyTick(tenant: string, topicName: string, tick: Tick): void {
    const topic = this.topic(tenant, topicName);
    topic.seq = Math.max(topic.seq, tick.seq);
    const state = this.symbol(topic, tick.symbol);
    if (state.tick && state.tick.seq >= tick.seq) return;
    state.tick = tick;
    state.tickBody = null;
    state.ticks += 1;
    state.history.push(tick);
    topic.published += 1;
    if (topic.subscribers.size > 0) {
      state.tickBody = members(tick);
      this.fanOut(topic, 'tick', tick.symbol, state.tickBody);
    }
  }

  /** Order book depth published on another node (see `applyTick`). */
  applyDepth(tenant: string, topicName: string, depth: Depth): void {
    const topic = this.topic(tenant, topicName);
    topic.seq = Math.max(topic.seq, depth.seq);
    const state = this.symbol(topic, depth.symbol);
    if (state.depth && state.depth.seq >= depth.seq) return;
    state.depth = depth;
    state.depthBody = members(depth);
    this.fanOut(topic, 'depth', depth.symbol, state.depthBody);
  }

  private fanOut(topic: Topic, kind: 'tick' | 'depth', symbol: string, body: string): void {
    if (topic.subscribers.size === 0) return;
    let frames: Map<string, Buffer> | undefined;
    for (const sub of topic.subscribers) {
      if (!sub.matches(symbol)) continue;
      sub.offer(kind, symbol, body, () => {
        frames ??= new Map();
        let frame = frames.get(sub.channel);
        if (!frame) {
          frame = Buffer.from(`{"type":"${kind}","channel":${JSON.stringify(sub.channel)},${body}}`);
          frames.set(sub.channel, frame);
        }
        return frame;
      });
    }
  }

  /**
   * Joins a connection to a topic channel: `subscribed` (its cursor is the topic's last seq), then one
   * `ticks` frame (`snapshot: true`) with the latest tick and depth of each symbol, then live frames.
   */
  subscribe(tenant: string, channel: string, sink: TopicSink, rid?: string | number): TopicSubscription {
    const { topic: name, symbols } = parseTopicChannel(channel);
    const topic = this.topics.get(this.key(tenant, name));
    if (!topic) {
      const known = this.names(tenant);
      throw new SyncError(
        'NOT_FOUND',
        `no topic ${name}${known.length ? ` (topics: ${known.join(', ')})` : ' (no feed publishes topics here)'}`,
      );
    }
    const sub = new TopicSubscription(topic, this.key(tenant, name), channel, symbols, sink, this);
    const subscribed: Record<string, unknown> = { type: 'subscribed', channel, cursor: topic.seq };
    if (rid !== undefined) subscribed.rid = rid;
    sink.sendFrame(Buffer.from(JSON.stringify(subscribed)), 'subscribed');
    const ticks: string[] = [];
    const depth: string[] = [];
    for (const [symbol, state] of topic.symbols) {
      if (!sub.matches(symbol)) continue;
      if (state.tick) {
        state.tickBody ??= members(state.tick);
        ticks.push(state.tickBody);
      }
      if (state.depthBody) depth.push(state.depthBody);
    }
    this.sendValues(sub, ticks, depth, { snapshot: true });
    topic.subscribers.add(sub);
    return sub;
  }

  /** Sends values as `ticks` frames of at most FRAME_SYMBOLS each (always at least one). */
  sendValues(
    sub: TopicSubscription,
    ticks: string[],
    depth: string[],
    extra: { snapshot?: boolean; conflated?: number },
  ): void {
    const head = `{"type":"ticks","channel":${JSON.stringify(sub.channel)}${
      extra.snapshot ? ',"snapshot":true' : ''
    }${extra.conflated !== undefined ? `,"conflated":${extra.conflated}` : ''}`;
    let t = 0;
    let d = 0;
    do {
      const tickPart = ticks.slice(t, t + FRAME_SYMBOLS);
      t += tickPart.length;
      const depthPart =
        tickPart.length < FRAME_SYMBOLS ? depth.slice(d, d + FRAME_SYMBOLS - tickPart.length) : [];
      d += depthPart.length;
      const list = (items: string[]) => items.map((b) => `{${b}}`).join(',');
      sub.sink.sendFrame(
        Buffer.from(`${head},"ticks":[${list(tickPart)}],"depth":[${list(depthPart)}]}`),
        'ticks',
      );
    } while (t < ticks.length || d < depth.length);
  }

  /** Starts checking a conflated subscriber for a drained socket. */
  watchDrain(sub: TopicSubscription): void {
    this.draining.add(sub);
    if (this.drainTimer) return;
    this.drainTimer = setInterval(() => this.checkDrained(), this.options.drainCheckMs ?? 20);
    this.drainTimer.unref();
  }

  private checkDrained(): void {
    for (const sub of this.draining) {
      if (sub.closed || !sub.sink.isOpen()) {
        this.draining.delete(sub);
        continue;
      }
      if (sub.sink.bufferedBytes() > this.conflateAboveBytes / 2) continue;
      this.draining.delete(sub);
      sub.flushPending();
    }
    if (this.draining.size === 0 && this.drainTimer) {
      clearInterval(this.drainTimer);
      this.drainTimer = null;
    }
  }

  remove(sub: TopicSubscription): void {
    sub.topic.subscribers.delete(sub);
    this.draining.delete(sub);
  }

  latest(tenant: string, topic: string, symbol: string): { tick: Tick | null; depth: Depth | null } | null {
    const state = this.topics.get(this.key(tenant, topic))?.symbols.get(symbol);
    return state ? { tick: state.tick, depth: state.depth } : null;
  }

  /** Every symbol of a topic with its latest tick and depth and how many ticks it had. */
  symbols(
    tenant: string,
    topic: string,
  ): Array<{ symbol: string; tick: Tick | null; depth: Depth | null; ticks: number }> {
    const t = this.topics.get(this.key(tenant, topic));
    if (!t) return [];
    return [...t.symbols].map(([symbol, s]) => ({ symbol, tick: s.tick, depth: s.depth, ticks: s.ticks }));
  }

  /** The ticks of a symbol kept in memory, oldest first. */
  recent(tenant: string, topic: string, symbol: string): Tick[] {
    return this.topics.get(this.key(tenant, topic))?.symbols.get(symbol)?.history.toArray() ?? [];
  }

  stats(
    tenant: string,
    topic: string,
  ): { seq: number; published: number; subscribers: number; conflating: number } {
    const t = this.topics.get(this.key(tenant, topic));
    if (!t) return { seq: 0, published: 0, subscribers: 0, conflating: 0 };
    let conflating = 0;
    for (const sub of t.subscribers) if (sub.conflating) conflating += 1;
    return { seq: t.seq, published: t.published, subscribers: t.subscribers.size, conflating };
  }

  subscriberCount(): number {
    let n = 0;
    for (const t of this.topics.values()) n += t.subscribers.size;
    return n;
  }

  close(): void {
    if (this.drainTimer) clearInterval(this.drainTimer);
    this.drainTimer = null;
    this.draining.clear();
  }
}
