/**
 * Channel subscriptions that survive reconnects. Each channel is subscribed once on the server however
 * many listeners share it, remembers the last seq it delivered, and after any reconnect is resumed with
 * `since: lastSeq` (a records channel seen for the first time asks for a snapshot instead). Events at
 * or below `lastSeq` are dropped, so a listener never sees one twice. A `reset` (the server cannot
 * resume from our seq) is followed by an authoritative snapshot, after which `lastSeq` may go down.
 * Processed seqs are acknowledged to the server, debounced.
 *
 * With a replica, nothing is subscribed before it is loaded (`ready`), and a channel the replica knows
 * resumes from its stored cursor: a records channel then asks for the backlog only, no snapshot.
 */
import {
  type ClientMessage,
  type DepthMessage,
  type EventMessage,
  parseChannel,
  type ServerMessage,
  type SyncRecord,
  type TickMessage,
  type TicksMessage,
} from '@syncbridge/protocol';
import { SyncClientError } from './errors.ts';
import type { RequestTracker } from './requests.ts';

export interface SnapshotInfo {
  cursor: number;
  /** True after a `reset`: the snapshot replaces what the client knew, even newer-looking versions. */
  authoritative: boolean;
}

export interface ChannelListener {
  onEvent?(event: EventMessage): void;
  /** A complete snapshot (all chunks) of a records channel. */
  onSnapshot?(records: SyncRecord[], info: SnapshotInfo): void;
  /** The channel is confirmed by the server (and its snapshot, if any, delivered). */
  onSynced?(): void;
  /** A frame of a `topic:` channel (outside the log: no seq to resume from, never acknowledged). */
  onTopic?(message: TickMessage | DepthMessage | TicksMessage): void;
}

export interface SubscriptionManagerOptions {
  requests: RequestTracker;
  send: (message: ClientMessage) => boolean;
  isConnected: () => boolean;
  onReset: (channel: string, reason: string) => void;
  onError: (err: SyncClientError) => void;
  /** Debounce of `ack` messages. Default 200 ms. */
  ackDelayMs?: number;
  /** Subscribing waits for this (the replica and the queue loaded from storage). */
  ready?: Promise<unknown>;
  /** The cursor a channel was stored with by an earlier run, or null. */
  storedCursor?: (channel: string) => number | null;
  /** A channel's last seq moved (its records are applied to the cache by then). */
  onCursor?: (channel: string) => void;
  /** A channel got its first listener. */
  onAcquire?: (channel: string) => void;
}

/** A channel that can be resumed, and where from. */
export interface ResumePoint {
  channel: string;
  kind: 'records' | 'events';
  lastSeq: number;
}

class ChannelSubscription {
  lastSeq: number | null = null;
  readonly listeners = new Set<ChannelListener>();
  synced = false;
  /** Snapshot chunks received so far, while a snapshot is streaming. */
  snapshotChunks: SyncRecord[] | null = null;
  authoritativeSnapshot = false;
  subscribedCursor = 0;
  private waiters: Array<() => void> = [];

  constructor(
    readonly channel: string,
    readonly kind: 'records' | 'events' | 'topic',
    readonly initialSince: number | undefined,
  ) {}

  whenSynced(): Promise<void> {
    if (this.synced) return Promise.resolve();
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  markSynced(): void {
    this.synced = true;
    const waiters = this.waiters;
    this.waiters = [];
    for (const resolve of waiters) resolve();
    for (const listener of [...this.listeners]) listener.onSynced?.();
  }

  /** Lets `whenSynced` waiters go when the subscription is given up or fails. */
  abandon(): void {
    const waiters = this.waiters;
    this.waiters = [];
    for (const resolve of waiters) resolve();
  }
}

export class SubscriptionManager {
  private readonly subs = new Map<string, ChannelSubscription>();
  private ackTimer: ReturnType<typeof setTimeout> | null = null;
  private lastAcked = 0;

  constructor(private readonly options: SubscriptionManagerOptions) {}

  /**
   * Adds a listener to a channel, subscribing on the server when it is the first; returns the function
   * that removes it (and unsubscribes when it was the last). `since` replays an events channel from a
   * seq; it only counts for the listener that opens the channel.
   */
  acquire(channel: string, listener: ChannelListener, options: { since?: number } = {}): () => void {
    const spec = parseChannel(channel);
    if ('error' in spec) throw new SyncClientError('BAD_REQUEST', spec.error);
    let sub = this.subs.get(channel);
    const isNew = !sub;
    if (!sub) {
      sub = new ChannelSubscription(channel, spec.kind, options.since);
      this.subs.set(channel, sub);
    }
    sub.listeners.add(listener);
    if (isNew) {
      this.options.onAcquire?.(channel);
      if (this.options.isConnected()) void this.subscribe(sub);
    } else if (sub.synced) listener.onSynced?.();
    const owned = sub;
    return () => this.release(owned, listener);
  }

  /** The last seq delivered on a channel (null before its first snapshot or event). */
  lastSeq(channel: string): number | null {
    return this.subs.get(channel)?.lastSeq ?? null;
  }

  /** Every subscribed records or events channel that has a last seq. */
  resumePoints(): ResumePoint[] {
    const points: ResumePoint[] = [];
    for (const sub of this.subs.values()) {
      if (sub.kind === 'topic' || sub.lastSeq === null) continue;
      points.push({ channel: sub.channel, kind: sub.kind, lastSeq: sub.lastSeq });
    }
    return points;
  }

  /** Re-subscribes every channel on a fresh connection; resolves when all are confirmed (or failed). */
  async resumeAll(): Promise<void> {
    const subs = [...this.subs.values()];
    for (const sub of subs) {
      sub.synced = false;
      sub.snapshotChunks = null;
    }
    await Promise.all(subs.map((sub) => this.subscribe(sub)));
  }

  /** Routes an `event`, `snapshot`, `subscribed`, `reset` or topic frame; returns false for other messages. */
  handle(message: ServerMessage): boolean {
    switch (message.type) {
      case 'tick':
      case 'depth':
      case 'ticks': {
        const sub = this.subs.get(message.channel);
        if (sub) for (const listener of [...sub.listeners]) listener.onTopic?.(message);
        return true;
      }
      case 'event':
        this.deliverEvent(message);
        return true;
      case 'snapshot':
        this.receiveSnapshot(message.channel, message.records, message.cursor, message.done);
        return true;
      case 'subscribed': {
        const sub = this.subs.get(message.channel);
        if (sub) sub.subscribedCursor = message.cursor;
        return false;
      }
      case 'unsubscribed': {
        // Without a rid it is the server ending a subscription on its own (the device's categories changed).
        if (message.rid !== undefined) return false;
        const sub = this.subs.get(message.channel);
        if (!sub) return true;
        this.subs.delete(sub.channel);
        sub.abandon();
        this.options.onError(
          new SyncClientError(
            'FORBIDDEN',
            `${sub.channel} ended by the server: ${message.reason ?? 'no reason given'}`,
          ),
        );
        return true;
      }
      case 'reset': {
        const sub = this.subs.get(message.channel);
        if (!sub) return true;
        if (sub.kind === 'records') {
          sub.authoritativeSnapshot = true;
          sub.synced = false;
        } else {
          // Events in between are gone for good; carry on from the server's head.
          sub.lastSeq = sub.subscribedCursor;
          this.options.onCursor?.(sub.channel);
        }
        this.options.onReset(message.channel, message.reason);
        return true;
      }
      default:
        return false;
    }
  }

  /** Sends the debounced `ack` now (before going offline, so the server keeps the device's cursor). */
  flushAck(): void {
    if (this.ackTimer) clearTimeout(this.ackTimer);
    this.ackTimer = null;
    this.sendAck();
  }

  /** Forgets every subscription (the client is closing). */
  clear(): void {
    if (this.ackTimer) clearTimeout(this.ackTimer);
    this.ackTimer = null;
    for (const sub of this.subs.values()) sub.abandon();
    this.subs.clear();
  }

  private async subscribe(sub: ChannelSubscription): Promise<void> {
    if (this.options.ready) {
      await this.options.ready.catch(() => undefined);
      if (this.subs.get(sub.channel) !== sub || !this.options.isConnected()) return;
    }
    if (
      sub.lastSeq === null &&
      sub.kind !== 'topic' &&
      !(sub.kind === 'events' && sub.initialSince !== undefined)
    ) {
      sub.lastSeq = this.options.storedCursor?.(sub.channel) ?? null;
    }
    const message: { type: 'subscribe'; channel: string; since?: number; snapshot?: boolean } = {
      type: 'subscribe',
      channel: sub.channel,
    };
    const wantsSnapshot = sub.kind === 'records' && sub.lastSeq === null;
    if (sub.kind === 'topic') {
      // A topic has no resume: every (re)join brings a fresh snapshot of the latest values.
    } else if (wantsSnapshot) {
      message.snapshot = true;
      sub.authoritativeSnapshot = false;
    } else if (sub.lastSeq !== null) message.since = sub.lastSeq;
    else if (sub.initialSince !== undefined) message.since = sub.initialSince;
    const synced = sub.whenSynced();
    try {
      await this.options.requests.request(message);
    } catch (err) {
      const error = err as SyncClientError;
      if (error.code === 'DISCONNECTED' || error.code === 'CLOSED') return;
      // The server refused the channel: tell the application and stop trying it.
      this.subs.delete(sub.channel);
      sub.abandon();
      this.options.onError(new SyncClientError(error.code, `subscribe ${sub.channel}: ${error.message}`));
      return;
    }
    if (this.subs.get(sub.channel) !== sub) return;
    if (sub.lastSeq === null && sub.kind === 'events') {
      // Live from the head: nothing at or below the cursor is ours to deliver.
      sub.lastSeq = message.since ?? sub.subscribedCursor;
      this.options.onCursor?.(sub.channel);
    }
    if (!wantsSnapshot && !sub.authoritativeSnapshot) sub.markSynced();
    await synced;
  }

  private release(sub: ChannelSubscription, listener: ChannelListener): void {
    sub.listeners.delete(listener);
    if (sub.listeners.size > 0 || this.subs.get(sub.channel) !== sub) return;
    this.subs.delete(sub.channel);
    sub.abandon();
    if (this.options.isConnected()) {
      this.options.requests.request({ type: 'unsubscribe', channel: sub.channel }).catch(() => undefined);
    }
  }

  private deliverEvent(event: EventMessage): void {
    const sub = this.subs.get(event.channel);
    if (!sub || sub.snapshotChunks !== null) return;
    if (sub.lastSeq !== null && event.seq <= sub.lastSeq) return;
    sub.lastSeq = event.seq;
    for (const listener of [...sub.listeners]) listener.onEvent?.(event);
    this.options.onCursor?.(sub.channel);
    this.scheduleAck();
  }

  private receiveSnapshot(channel: string, records: SyncRecord[], cursor: number, done: boolean): void {
    const sub = this.subs.get(channel);
    if (!sub) return;
    sub.snapshotChunks = (sub.snapshotChunks ?? []).concat(records);
    if (!done) return;
    const all = sub.snapshotChunks;
    const info: SnapshotInfo = { cursor, authoritative: sub.authoritativeSnapshot };
    sub.snapshotChunks = null;
    sub.authoritativeSnapshot = false;
    sub.lastSeq = info.authoritative ? cursor : Math.max(sub.lastSeq ?? 0, cursor);
    for (const listener of [...sub.listeners]) listener.onSnapshot?.(all, info);
    this.options.onCursor?.(sub.channel);
    sub.markSynced();
    this.scheduleAck();
  }

  private scheduleAck(): void {
    if (this.ackTimer) return;
    this.ackTimer = setTimeout(() => {
      this.ackTimer = null;
      this.sendAck();
    }, this.options.ackDelayMs ?? 200);
  }

  /** Acknowledges the lowest seq every channel has processed up to. */
  private sendAck(): void {
    let seq: number | null = null;
    for (const sub of this.subs.values()) {
      if (sub.lastSeq === null) continue;
      seq = seq === null ? sub.lastSeq : Math.min(seq, sub.lastSeq);
    }
    if (seq === null || seq <= this.lastAcked) return;
    if (this.options.send({ type: 'ack', seq })) this.lastAcked = seq;
  }
}
