/**
 * Redis pub/sub bus (ioredis): one connection publishes, one subscribes to the deployment's channel. Redis
 * pub/sub drops messages while a node is disconnected; on reconnect the node resyncs from the store.
 * ioredis reconnects with its own backoff; an outage is logged once when it starts and once when it
 * ends, never once per attempt.
 */
import { Redis } from 'ioredis';
import type { Logger } from 'pino';
import { BaseBus } from './base-bus.ts';

export class RedisBus extends BaseBus {
  readonly kind = 'redis';
  private readonly pub: Redis;
  private readonly sub: Redis;
  private readyOnce = false;
  /** The last connection error, and whether this outage was logged already. */
  private lastError: Error | null = null;
  private outageLogged = false;

  constructor(
    url: string,
    node: string,
    private readonly log: Logger,
    /** The pub/sub channel: one per database schema (startup/open-bus.ts, busTopic). */
    private readonly channel = 'syncbridge:events',
  ) {
    super(node, log);
    const options = { maxRetriesPerRequest: null, enableOfflineQueue: true, lazyConnect: false };
    this.pub = new Redis(url, options);
    this.sub = new Redis(url, options);
    for (const conn of [this.pub, this.sub]) {
      conn.on('error', (err: Error) => {
        this.lastError = err;
        // One line per outage (the first connection's included), not one per attempt.
        if (this.outageLogged) return;
        this.outageLogged = true;
        this.log.warn(
          { err: err.message },
          this.readyOnce ? 'redis bus: connection lost; reconnecting' : 'redis bus: unreachable; retrying',
        );
      });
    }
    this.sub.on('message', (_channel: string, text: string) => this.receive(text));
    this.sub.on('ready', () => {
      if (this.readyOnce) {
        if (this.outageLogged) this.log.info('redis bus: reconnected');
        this.reconnected();
      }
      this.outageLogged = false;
      this.readyOnce = true;
    });
  }

  /**
   * Resolves once subscribed, so no message published after start is missed. Rejects with the last
   * connection error when Redis could not be reached within `timeoutMs` (the caller closes the bus).
   */
  async start(timeoutMs = Number.POSITIVE_INFINITY): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    const gaveUp = new Promise<never>((_, reject) => {
      if (!Number.isFinite(timeoutMs)) return;
      timer = setTimeout(
        () => reject(this.lastError ?? new Error(`no answer within ${timeoutMs} ms`)),
        timeoutMs,
      );
    });
    try {
      await Promise.race([this.sub.subscribe(this.channel), gaveUp]);
    } finally {
      clearTimeout(timer);
    }
  }

  protected async send(wire: string): Promise<void> {
    await this.pub.publish(this.channel, wire);
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
