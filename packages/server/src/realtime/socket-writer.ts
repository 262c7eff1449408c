/**
 * The outbound half of one WebSocket: frames leave corked until the tick ends, `event` frames of a
 * client that speaks `batch` are collected into `events` frames, and a reader whose unsent bytes pass
 * `maxBufferedBytes` is closed as a slow consumer (4009: resume from your last seq).
 * It must never queue without bound on behalf of a slow reader, and never parse or judge what it sends.
 */
import type { Duplex } from 'node:stream';
import { CLOSE_CODES } from '@syncbridge/protocol';
import type { WebSocket } from 'ws';
import { EventBatcher } from './batch.ts';
import type { RealtimeContext } from './context.ts';
import type { OutboundType } from './counters.ts';
import type { SessionSink } from './session-sink.ts';
import { TickCork } from './tick-cork.ts';

/** How long a close waits for the peer's closing frame before the socket is dropped. */
export const CLOSE_HANDSHAKE_MS = 2_000;

export class SocketWriter implements SessionSink {
  /** The client speaks `events` batches (capability `batch`). */
  batch = false;
  private batcher: EventBatcher | null = null;
  private readonly tickCork = new TickCork();
  private closing = false;
  /**
   * permessage-deflate was negotiated: fixed once the upgrade completed, before this writer exists
   * (ws builds the `extensions` text anew on every read, and it is read for every frame sent).
   */
  private readonly deflate: boolean;

  constructor(
    private readonly ws: WebSocket,
    private readonly ctx: Pick<RealtimeContext, 'metrics' | 'config'>,
  ) {
    this.deflate = ws.extensions.includes('permessage-deflate');
  }

  get isOpen(): boolean {
    return !this.closing && this.ws.readyState === 1;
  }

  /** `close` was called (the socket may still be open while the close handshake runs). */
  get isClosing(): boolean {
    return this.closing;
  }

  /**
   * An `event` frame of `channel` from the fan-out: sent at once, or (capability `batch`) collected until
   * the tick ends and sent with the channel's other events of this tick as one `events` frame.
   */
  sendEventFrame(channel: string, frame: Buffer): boolean {
    if (!this.batch) return this.sendFrame(frame);
    if (!this.isOpen) return false;
    if (!this.batcher) {
      this.batcher = new EventBatcher();
      process.nextTick(() => this.flushBatches());
    }
    this.batcher.add(channel, frame);
    if (this.batcher.full) return this.flushBatches();
    return true;
  }

  /** Sends the batched events collected so far; returns false when the connection can take no more. */
  private flushBatches(): boolean {
    const batcher = this.batcher;
    if (!batcher) return this.isOpen;
    this.batcher = null;
    let ok = true;
    for (const { frame, type } of batcher.take()) ok = this.writeFrame(frame, type) && ok;
    return ok;
  }

  /** Sends a prepared frame of the given type (the type is counted for metrics, never checked). */
  sendFrame(frame: Buffer, type: OutboundType = 'event'): boolean {
    // Anything else sent keeps its place after the events batched before it.
    if (this.batcher) this.flushBatches();
    return this.writeFrame(frame, type);
  }

  private writeFrame(frame: Buffer, type: OutboundType): boolean {
    if (!this.isOpen) return false;
    // ws keeps its net.Socket in `_socket`; the cork/uncork pair inside ws.send only counts down.
    this.tickCork.cork((this.ws as unknown as { _socket?: Duplex })._socket);
    this.ws.send(frame, { binary: false });
    this.ctx.metrics.frameSent(type, frame.length);
    this.tickCork.flushIfFull();
    return this.withinBufferLimit();
  }

  /** Closes a reader that fell too far behind; false when it did. */
  private withinBufferLimit(): boolean {
    if (this.outboundBytes() <= this.ctx.config.maxBufferedBytes) return true;
    this.ctx.metrics.slowConsumers += 1;
    this.close(CLOSE_CODES.SLOW_CONSUMER, 'slow consumer: reconnect and resume from your last seq');
    return false;
  }

  /** Sends a frame and resolves once it has been handed to the kernel, for flow control of backlogs. */
  sendAndWait(frame: Buffer, type: OutboundType): Promise<void> {
    return new Promise((resolve) => {
      if (!this.isOpen) return resolve();
      this.ws.send(frame, { binary: false }, () => resolve());
      this.ctx.metrics.frameSent(type, frame.length);
      this.withinBufferLimit();
    });
  }

  /**
   * Bytes sent but not yet taken by the network. With permessage-deflate, frames still waiting for
   * their turn at the compressor are left out: they leave at zlib's pace whatever the reader does, and
   * one large frame would otherwise look like a slow reader. What compression has produced and the
   * reader has not taken is counted as usual.
   */
  outboundBytes(): number {
    if (!this.deflate) return this.ws.bufferedAmount;
    return (this.ws as unknown as { _socket?: Duplex })._socket?.writableLength ?? 0;
  }

  close(code: number, reason: string): void {
    if (this.closing) return;
    this.closing = true;
    this.ws.close(code, reason);
    // ws waits 30 s for the peer's closing frame: a peer that never answers (half-open, or one that
    // stopped reading) would hold the socket that long after the server is done with it.
    const timer = setTimeout(() => this.ws.terminate(), CLOSE_HANDSHAKE_MS);
    timer.unref();
    this.ws.once('close', () => clearTimeout(timer));
  }

  /** Stops reading the socket (TCP pushes back on the client) until `resume`. */
  pause(): void {
    this.ws.pause();
  }

  resume(): void {
    this.ws.resume();
  }

  ping(): void {
    if (this.isOpen) this.ws.ping();
  }

  terminate(): void {
    this.ws.terminate();
  }
}
