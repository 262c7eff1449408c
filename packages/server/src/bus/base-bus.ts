/**
 * What every bus does the same way, written once: the size rule and encoding of outgoing messages,
 * schema checks of incoming ones, dropping this node's own echoes, handing messages to subscribers,
 * telling listeners of a reconnect, and logging a failed publish. A backend (memory, Redis, NATS,
 * PostgreSQL) gives only its primitives: `send` one wire message to every node, call `receive` for
 * each wire message the broker delivers and `reconnected` after an outage, `ping` and `close`.
 * A bus never imports the store or any other part of the server: it carries notifications only.
 */
import type { Logger } from 'pino';
import { type BusMessage, decodeBusMessage, encodeBusMessage } from './messages.ts';
import type { Bus, BusHandler } from './types.ts';

export abstract class BaseBus implements Bus {
  abstract readonly kind: string;
  private readonly handlers: BusHandler[] = [];
  private readonly reconnectListeners: Array<() => void> = [];

  constructor(
    /** This node's id: messages it published come back from some brokers and are dropped. */
    readonly nodeId: string,
    protected readonly logger?: Logger,
  ) {}

  /** Backend primitive: sends one wire message towards every node (this one may hear it back). */
  protected abstract send(wire: string): void | Promise<void>;
  abstract ping(): Promise<boolean>;
  abstract close(): Promise<void>;

  publish(message: BusMessage): void {
    const wire = encodeBusMessage(message);
    try {
      const sending = this.send(wire);
      if (sending) sending.catch((err: unknown) => this.publishFailed(err));
    } catch (err) {
      this.publishFailed(err);
    }
  }

  subscribe(handler: BusHandler): void {
    this.handlers.push(handler);
  }

  onReconnect(listener: () => void): void {
    this.reconnectListeners.push(listener);
  }

  /** Backend: a wire message arrived. Malformed ones and this node's own are dropped. */
  protected receive(wire: string): void {
    const message = decodeBusMessage(wire);
    if (!message || message.node === this.nodeId) return;
    for (const handler of this.handlers) handler(message);
  }

  /** Backend: the broker connection came back; messages may have been lost meanwhile. */
  protected reconnected(): void {
    for (const listener of this.reconnectListeners) listener();
  }

  /** Backend: drops every subscriber (on close). */
  protected forgetSubscribers(): void {
    this.handlers.length = 0;
    this.reconnectListeners.length = 0;
  }

  private publishFailed(err: unknown): void {
    // Receivers notice the gap with the next message or their periodic resync.
    this.logger?.warn({ err }, `${this.kind} bus: publish failed`);
  }
}
