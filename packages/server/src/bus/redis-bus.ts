/**
 * Redis pub/sub bus (ioredis): one connection publishes, one subscribes to a single channel. Redis
 * pub/sub drops messages while a node is disconnected; on reconnect the node resyncs from the store.
 */
import { Redis } from 'ioredis';
import type { Logger } from 'pino';
import { type Bus, type BusHandler, type BusMessage, decodeBusMessage, encodeBusMessage } from './types.ts';

const CHANNEL = 'syncbridge:events';

export class RedisBus implements Bus {
  readonly kind = 'redis';
  private readonly pub: Redis;
  private readonly sub: Redis;
  private readonly handlers: BusHandler[] = [];
  private readonly reconnectListeners: Array<() => void> = [];
  private readyOnce = false;

  constructor(
    url: string,
    private readonly node: string,
    private readonly logger: Logger,
  ) {
    const options = { maxRetriesPerRequest: null, enableOfflineQueue: true, lazyConnect: false };
    this.pub = new Redis(url, options);
    this.sub = new Redis(url, options);
    for (const conn of [this.pub, this.sub])
      conn.on('error', (err: Error) => this.logger.warn({ err: err.message }, 'redis bus'));
    this.sub.on('message', (_channel: string, text: string) => {
      const message = decodeBusMessage(text);
      if (!message || message.node === this.node) return;
      for (const handler of this.handlers) handler(message);
    });
    this.sub.on('ready', () => {
      if (this.readyOnce) for (const listener of this.reconnectListeners) listener();
      this.readyOnce = true;
    });
  }

  /** Resolves once subscribed, so no message published after start is missed. */
  async start(): Promise<void> {
    await this.sub.subscribe(CHANNEL);
  }

  publish(message: BusMessage): void {
    this.pub.publish(CHANNEL, encodeBusMessage(message)).catch((err: unknown) => {
      // Receivers notice the gap with the next message or their periodic resync.
      this.logger.warn({ err }, 'redis bus: publish failed');
    });
  }

  subscribe(handler: BusHandler): void {
    this.handlers.push(handler);
  }

  onReconnect(listener: () => void): void {
    this.reconnectListeners.push(listener);
  }

  async ping(): Promise<boolean> {
    try {
      return (await this.pub.ping()) === 'PONG';
    } catch {
      return false;
    }
  }

  async close(): Promise<void> {
    this.sub.disconnect();
    this.pub.disconnect();
  }
}
