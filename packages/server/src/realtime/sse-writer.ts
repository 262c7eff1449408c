/**
 * The outbound half of one server-sent-events stream (`GET /v1/stream`): each server message leaves as
 * one SSE event whose `data:` is the message's JSON, exactly as a WebSocket frame carries it; a log
 * event's SSE event also carries `id:`, the stream's per-channel resume position (stream-cursor.ts), so
 * a standard EventSource resumes by itself with `Last-Event-ID`. Frames leave corked until the tick ends.
 * A reader whose unsent bytes pass `maxBufferedBytes` is closed as a slow consumer with a final
 * `event: close` naming the code (4001, as on the WebSocket). It must never queue without bound.
 * A device's bandwidth budget and priorities are applied in front of it, by the stream's Pacer.
 */
import type { ServerResponse } from 'node:http';
import { CLOSE_CODES } from '@syncbridge/protocol';
import type { RealtimeContext } from './context.ts';
import type { OutboundType } from './counters.ts';
import type { ChannelPosition, SessionSink } from './session-sink.ts';
import { formatStreamCursor, type StreamCursor } from './stream-cursor.ts';
import { TickCork } from './tick-cork.ts';

const DATA = Buffer.from('data: ');
const END = Buffer.from('\n\n');
/** SSE bytes of a shared `event` frame whose id is its seq, by frame (kept only while the frame lives). */
const SHARED = new WeakMap<Buffer, Buffer>();

export class SseWriter implements SessionSink {
  /** SSE carries one message per event: no `events` batches. */
  batch = false;
  /** When something was last written (heartbeats fill silences). */
  lastWriteAt = Date.now();
  private closing = false;
  private readonly tickCork = new TickCork();
  private readonly waiting = new Set<() => void>();
  private readonly index = new Map<string, number>();

  constructor(
    private readonly res: ServerResponse,
    private readonly ctx: Pick<RealtimeContext, 'metrics' | 'config'>,
    /** The channels' normalized names in `channels=` order, and their positions (updated in place). */
    channels: readonly string[],
    readonly positions: StreamCursor,
  ) {
    for (const [i, name] of channels.entries()) this.index.set(name, i);
    res.on('close', () => {
      this.closing = true;
      for (const resolve of this.waiting) resolve();
      this.waiting.clear();
    });
  }

  get isOpen(): boolean {
    return !this.closing && !this.res.destroyed && this.res.writable;
  }

  get isClosing(): boolean {
    return this.closing;
  }

  /** Moves a channel's position (a `subscribed` cursor, a `reset`): the next id carries it. */
  setPosition(channel: string, seq: number): void {
    const i = this.index.get(channel);
    if (i !== undefined) this.positions[i] = seq;
  }

  positionOf(channel: string): number | undefined {
    const i = this.index.get(channel);
    return i === undefined ? undefined : this.positions[i];
  }

  sendEventFrame(channel: string, frame: Buffer, seq: number): boolean {
    return this.write(this.eventBytes(frame, { channel, seq }), 'event');
  }

  sendFrame(frame: Buffer, type: OutboundType = 'event'): boolean {
    return this.write(this.eventBytes(frame), type);
  }

  sendAndWait(frame: Buffer, type: OutboundType, position?: ChannelPosition): Promise<void> {
    return new Promise((resolve) => {
      if (!this.isOpen) return resolve();
      this.waiting.add(resolve);
      this.tickCork.uncork();
      this.res.write(this.eventBytes(frame, position), () => {
        this.waiting.delete(resolve);
        resolve();
      });
      this.lastWriteAt = Date.now();
      this.ctx.metrics.frameSent(type, frame.length);
      this.withinBufferLimit();
    });
  }

  /**
   * The bytes an SSE event adds around its frame: `data: ` and the blank line, and `id: <cursor>` (the
   * pacer counts them against a device's budget; the id is at most as long as the stream's cursor).
   */
  get framingBytes(): number {
    return DATA.length + END.length + 5 + formatStreamCursor(this.positions).length;
  }

  /** A comment line: keeps proxies from timing the stream out, and tells a dead peer apart. */
  heartbeat(): void {
    if (!this.isOpen) return;
    this.res.write(': hb\n\n');
    this.lastWriteAt = Date.now();
  }

  outboundBytes(): number {
    return this.res.writableLength;
  }

  /** Ends the stream with a final `event: close` carrying the code and reason (as a WebSocket close). */
  close(code: number, reason: string): void {
    if (this.closing) return;
    this.closing = true;
    this.tickCork.uncork();
    if (!this.res.destroyed) this.res.end(`event: close\ndata: ${JSON.stringify({ code, reason })}\n\n`);
  }

  terminate(): void {
    this.closing = true;
    this.res.destroy();
  }

  private eventBytes(frame: Buffer, position?: ChannelPosition): Buffer {
    if (!position) return Buffer.concat([DATA, frame, END]);
    const i = this.index.get(position.channel);
    if (i !== undefined && (this.positions[i] ?? -1) < position.seq) this.positions[i] = position.seq;
    const id = formatStreamCursor(this.positions);
    // Where the id is the event's own seq (one channel, or all at one seq), every stream sends the same
    // bytes for the hub's shared frame: they are built once per frame, not once per subscriber.
    const plain = id === String(position.seq);
    if (plain) {
      const shared = SHARED.get(frame);
      if (shared) return shared;
    }
    const bytes = Buffer.concat([Buffer.from(`id: ${id}\n`), DATA, frame, END]);
    if (plain) SHARED.set(frame, bytes);
    return bytes;
  }

  private write(bytes: Buffer, type: OutboundType): boolean {
    if (!this.isOpen) return false;
    this.tickCork.cork(this.res.socket);
    this.res.write(bytes);
    this.lastWriteAt = Date.now();
    this.ctx.metrics.frameSent(type, bytes.length);
    this.tickCork.flushIfFull();
    return this.withinBufferLimit();
  }

  private withinBufferLimit(): boolean {
    if (this.outboundBytes() <= this.ctx.config.maxBufferedBytes) return true;
    this.ctx.metrics.slowConsumers += 1;
    this.close(CLOSE_CODES.SLOW_CONSUMER, 'slow consumer: reconnect and resume from your last seq');
    return false;
  }
}
