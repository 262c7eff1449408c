/**
 * The transport-neutral outbound side a channel session writes to: the WebSocket's SocketWriter and the
 * server-sent-events stream's SseWriter both implement it, so subscribing, catching up, the handover to
 * live delivery and `reset` are written once (channel-session.ts) whatever carries the frames.
 * Every frame is one server message as JSON text; a transport must never parse or change it.
 */
import type { OutboundType } from './counters.ts';
import type { SubscriptionSink } from './subscription.ts';

/** After a frame is written, its channel has been sent everything of the log up to `seq`. */
export interface ChannelPosition {
  channel: string;
  seq: number;
}

export interface SessionSink extends SubscriptionSink {
  /** The client takes `events` batches (capability `batch`); a transport may refuse by keeping it false. */
  batch: boolean;
  readonly isOpen: boolean;
  /** `close` was called (the transport may still be flushing). */
  readonly isClosing: boolean;
  /** Bytes sent but not yet taken by the network. */
  outboundBytes(): number;
  /** Sends a prepared frame of the given type; returns false when the connection can take no more. */
  sendFrame(frame: Buffer, type?: OutboundType): boolean;
  /** Sends a prepared `event` frame of `channel` carrying the log event `seq`. */
  sendEventFrame(channel: string, frame: Buffer, seq: number): boolean;
  /**
   * Sends a frame and resolves once the network took it (backlogs and snapshots are paced by this).
   * `position`, when given, is where the frame leaves its channel (the seq of its last event, or a
   * finished snapshot's cursor).
   */
  sendAndWait(frame: Buffer, type: OutboundType, position?: ChannelPosition): Promise<void>;
  /** Paced sync (pacer.ts): the largest backlog frame to build, when smaller than the default. */
  readonly maxFrameBytes?: number;
  /** Paced sync: the device allows conflated catch-ups. */
  readonly conflate?: boolean;
  /** Paced sync: marks a channel's backlog as in progress (lower priorities wait) until released. */
  holdBacklog?(channel: string): () => void;
}
