/**
 * Paced sync: holds what one connection is sent to its device's bandwidth budget (bytes per second) and
 * sends channel backlogs in the order of the device's collection priorities. It wraps the transport's
 * sink and passes everything straight through while no budget is set.
 *
 * A token bucket with a small burst (1/32 of a second's budget): a frame leaves while the bucket is not
 * in debt, and its bytes are taken from it (so one frame may put it in debt). Frames other than backlog
 * pages (live events, replies, `subscribed`, …) keep their order in one queue, which goes before any
 * backlog page; backlog pages and snapshot chunks (`sendAndWait`) wait by priority of their channel's
 * collection, and while a higher priority backlog is being read and sent, lower ones wait for it. Within
 * one priority pages leave in the order they were handed in, so a channel's events stay in seq order.
 * The live queue is bounded as the socket is: past `maxBufferedBytes` waiting, the reader is a slow
 * consumer (closed SLOW_CONSUMER) as today. Both transports are paced alike: the
 * WebSocket connection and the SSE stream each put one in front of their writer.
 */
import { CLOSE_CODES, parseChannel } from '@syncbridge/protocol';
import { mainCollection } from '../core/branches.ts';
import type { OutboundType } from './counters.ts';
import type { ChannelPosition, SessionSink } from './session-sink.ts';

/** The part of a device's registration the pacer follows. */
export interface PaceSettings {
  bandwidth?: { bytesPerSecond: number } | null;
  priorities?: Record<string, number> | null;
  conflate?: boolean;
}

/** The transport under the pacer: a session sink that can also close the connection. */
export interface PacedTransport extends SessionSink {
  close(code: number, reason: string): void;
  /**
   * Bytes the transport adds around each frame on the wire (an SSE event's `id:`, `data: ` and blank
   * line), counted against the budget with the frame; a WebSocket's few header bytes are left out.
   */
  readonly framingBytes?: number;
}

type LiveItem =
  | { kind: 'frame'; frame: Buffer; type: OutboundType }
  | { kind: 'event'; channel: string; frame: Buffer; seq: number };

interface BacklogWaiter {
  frame: Buffer;
  type: OutboundType;
  position: ChannelPosition | undefined;
  priority: number;
  order: number;
  resolve: () => void;
}

/** The burst, as a fraction of a second's budget; also the largest backlog frame the session builds. */
const BURST_FRACTION = 1 / 32;
/** Never wait less than this between two sends (timers are not finer). */
const MIN_WAIT_MS = 4;

export class Pacer implements SessionSink {
  private rate = 0;
  private burst = 0;
  private tokens = 0;
  private refilledAt = 0;
  private priorities: Record<string, number> = {};
  /** The device allows conflated catch-ups (read by the channel session). */
  conflate = false;
  private readonly live: LiveItem[] = [];
  private liveBytes = 0;
  private readonly waiters: BacklogWaiter[] = [];
  private nextOrder = 0;
  /** Backlogs being read and sent, by priority: lower priorities wait while a higher one is here. */
  private readonly active = new Map<number, number>();
  private timer: NodeJS.Timeout | null = null;

  constructor(
    private readonly inner: PacedTransport,
    private readonly maxBufferedBytes: number,
  ) {}

  /** Applies a device's settings (a registration in `hello`, or the stored device). */
  configure(settings: PaceSettings | null): void {
    const rate = settings?.bandwidth?.bytesPerSecond ?? 0;
    this.priorities = { ...(settings?.priorities ?? {}) };
    this.conflate = settings?.conflate === true;
    if (rate === this.rate) return;
    this.rate = rate;
    this.burst = Math.max(256, Math.floor(rate * BURST_FRACTION));
    this.tokens = this.burst;
    this.refilledAt = performance.now();
    this.drain();
  }

  get paced(): boolean {
    return this.rate > 0;
  }

  get batch(): boolean {
    return this.inner.batch;
  }

  set batch(value: boolean) {
    this.inner.batch = value;
  }

  get isOpen(): boolean {
    return this.inner.isOpen;
  }

  get isClosing(): boolean {
    return this.inner.isClosing;
  }

  /** The largest backlog frame worth building: a burst's worth of bytes when paced. */
  get maxFrameBytes(): number | undefined {
    return this.paced ? this.burst : undefined;
  }

  /** The priority of a channel: its collection's, 0 when unnamed (and for events channels). */
  priorityOf(channel: string): number {
    const spec = parseChannel(channel);
    if ('error' in spec || spec.kind !== 'records') return 0;
    return this.priorities[mainCollection(spec.collection)] ?? 0;
  }

  /**
   * Marks a backlog of `channel` as being read and sent until the returned function is called: backlogs
   * of lower priorities wait for it.
   */
  holdBacklog(channel: string): () => void {
    const priority = this.priorityOf(channel);
    this.active.set(priority, (this.active.get(priority) ?? 0) + 1);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const count = (this.active.get(priority) ?? 1) - 1;
      if (count <= 0) this.active.delete(priority);
      else this.active.set(priority, count);
      this.drain();
    };
  }

  outboundBytes(): number {
    return this.inner.outboundBytes() + this.liveBytes;
  }

  sendFrame(frame: Buffer, type: OutboundType = 'event'): boolean {
    if (!this.paced || (this.live.length === 0 && this.take(this.cost(frame))))
      return this.inner.sendFrame(frame, type);
    return this.enqueue({ kind: 'frame', frame, type });
  }

  sendEventFrame(channel: string, frame: Buffer, seq: number): boolean {
    if (!this.paced || (this.live.length === 0 && this.take(this.cost(frame)))) {
      return this.inner.sendEventFrame(channel, frame, seq);
    }
    return this.enqueue({ kind: 'event', channel, frame, seq });
  }

  sendAndWait(frame: Buffer, type: OutboundType, position?: ChannelPosition): Promise<void> {
    if (!this.paced) return this.inner.sendAndWait(frame, type, position);
    return new Promise((resolve) => {
      if (!this.isOpen) return resolve();
      const priority = position ? this.priorityOf(position.channel) : 0;
      this.waiters.push({ frame, type, position, priority, order: this.nextOrder++, resolve });
      this.drain();
    });
  }

  /** Drops what waits (the connection has closed); backlog senders are let go. */
  dispose(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    this.live.length = 0;
    this.liveBytes = 0;
    for (const waiter of this.waiters.splice(0)) waiter.resolve();
  }

  private enqueue(item: LiveItem): boolean {
    if (!this.isOpen) return false;
    this.live.push(item);
    this.liveBytes += item.frame.length;
    if (this.outboundBytes() > this.maxBufferedBytes) {
      this.dispose();
      this.inner.close(CLOSE_CODES.SLOW_CONSUMER, 'slow consumer: reconnect and resume from your last seq');
      return false;
    }
    this.schedule();
    return true;
  }

  /** The bytes a frame takes on the wire. */
  private cost(frame: Buffer): number {
    return frame.length + (this.inner.framingBytes ?? 0);
  }

  /** Refills the bucket and takes `bytes` from it when it is not in debt. */
  private take(bytes: number): boolean {
    const now = performance.now();
    this.tokens = Math.min(this.burst, this.tokens + ((now - this.refilledAt) * this.rate) / 1000);
    this.refilledAt = now;
    if (this.tokens < 0) return false;
    this.tokens -= bytes;
    return true;
  }

  /** Sends what the bucket allows: the live queue first, then backlog pages by priority. */
  private drain(): void {
    if (!this.paced) {
      for (const item of this.live.splice(0)) this.sendLive(item);
      this.liveBytes = 0;
      for (const w of this.waiters.splice(0))
        void this.inner.sendAndWait(w.frame, w.type, w.position).then(w.resolve);
      return;
    }
    if (!this.isOpen) {
      this.dispose();
      return;
    }
    for (;;) {
      const item = this.live[0];
      if (item) {
        if (!this.take(this.cost(item.frame))) break;
        this.live.shift();
        this.liveBytes -= item.frame.length;
        if (!this.sendLive(item)) return;
        continue;
      }
      const index = this.nextWaiter();
      if (index < 0) break;
      if (!this.take(this.cost(this.waiters[index]!.frame))) break;
      const [w] = this.waiters.splice(index, 1);
      void this.inner.sendAndWait(w!.frame, w!.type, w!.position).then(w!.resolve);
    }
    this.schedule();
  }

  private sendLive(item: LiveItem): boolean {
    return item.kind === 'frame'
      ? this.inner.sendFrame(item.frame, item.type)
      : this.inner.sendEventFrame(item.channel, item.frame, item.seq);
  }

  /** The backlog page to send next: highest priority, then first handed in; -1 while none may go. */
  private nextWaiter(): number {
    let best = -1;
    for (let i = 0; i < this.waiters.length; i++) {
      const w = this.waiters[i]!;
      const b = best >= 0 ? this.waiters[best]! : null;
      if (!b || w.priority > b.priority || (w.priority === b.priority && w.order < b.order)) best = i;
    }
    if (best < 0) return -1;
    const priority = this.waiters[best]!.priority;
    for (const p of this.active.keys()) if (p > priority) return -1;
    return best;
  }

  /** Wakes `drain` once the bucket has paid its debt, while anything waits. */
  private schedule(): void {
    if (this.timer || (this.live.length === 0 && this.nextWaiter() < 0)) return;
    const wait = Math.max(MIN_WAIT_MS, (-this.tokens * 1000) / this.rate);
    this.timer = setTimeout(() => {
      this.timer = null;
      this.drain();
    }, wait);
    this.timer.unref?.();
  }
}
